//! The operator console over HTTP, black-box: the landing page; a signed-out visitor and a
//! non-admin are refused and never get a cookie; an admin signs in through the form (an
//! HttpOnly, SameSite=Strict cookie), finds a trade by its request id and sees every step,
//! reveals what people typed only with the session's CSRF token (and the reveal is
//! recorded), sends a declined refund again from a dead letter and sees the trade settle,
//! and signs out. (The pages in a real browser: .ci/console.py.)

use carrot_api::payment::SimulationProfile;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::Value;

use crate::helpers::{eventually, spawn_app, TestApp, User};

fn browser() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

async fn sign_in(app: &TestApp, user: &User) -> Response {
    browser()
        .post(app.url("/console/login"))
        .form(&[
            ("username", user.username.as_str()),
            ("password", "correct horse battery"),
        ])
        .send()
        .await
        .unwrap()
}

/// An admin's console cookie (`name=value`), checking its attributes.
async fn admin_cookie(app: &TestApp) -> (User, String) {
    let admin = app.make_admin(&app.signup("ops").await).await;
    let response = sign_in(app, &admin).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console");
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    (admin, set.split(';').next().unwrap().to_owned())
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = browser()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post_form(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> Response {
    browser()
        .post(app.url(path))
        .header(COOKIE, cookie)
        .form(form)
        .send()
        .await
        .unwrap()
}

/// The CSRF token a page's forms carry.
fn csrf(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_console_refuses_the_signed_out_and_non_admins_and_gives_them_no_cookie() {
    let app = spawn_app().await;
    let (status, landing) = page(&app, "", "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(landing.contains("href=\"/console\"") && landing.contains("href=\"/docs\""));

    let (status, body) = page(&app, "", "/console").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("Sign in") && !body.contains("Subscriptions"));
    let user = app.signup("plain").await;
    let response = sign_in(&app, &user).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(SET_COOKIE).is_none());
    // Even with a valid token of theirs as the cookie, a non-admin sees nothing.
    let (status, body) = page(&app, &format!("carrot_console={}", user.token), "/console").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!body.contains("Subscriptions"));
    let wrong = browser()
        .post(app.url("/console/login"))
        .form(&[("username", user.username.as_str()), ("password", "not it")]);
    assert_eq!(
        wrong.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_admin_finds_a_trade_sees_every_step_and_reveals_only_with_the_sessions_token() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Walnut desk CONSOLE-MARK", 42_000).await;
    let request = deal.placed.request_id.clone();
    app.act_ok(&deal.seller, &request, "accept", "accepted")
        .await;
    app.act_ok(&deal.buyer, &request, "complete", "completed")
        .await;
    app.settle().await;
    let (admin, cookie) = admin_cookie(&app).await;

    let (status, overview) = page(&app, &cookie, "/console").await;
    assert_eq!(status, StatusCode::OK);
    assert!(overview.contains("Subscriptions") && overview.contains("catalog"));
    let (status, trade) = page(&app, &cookie, &format!("/console/find?q={request}")).await;
    assert_eq!(status, StatusCode::OK);
    for step in [
        "PurchaseRequested",
        "PurchaseRequestAccepted",
        "PurchaseRequestCompleted",
        "PaymentCaptured",
        "PaymentPaidOut",
        "ListingReserved",
        "ListingSold",
        "payout:",
    ] {
        assert!(trade.contains(step), "{step} missing");
    }
    assert!(
        trade.contains("paid_out") && !trade.contains("CONSOLE-MARK"),
        "masked"
    );
    // Found by the listing, the payment or a username too.
    for q in [
        deal.listing.as_str(),
        deal.placed.payment_id.as_str(),
        deal.buyer.username.as_str(),
    ] {
        let (_, found) = page(&app, &cookie, &format!("/console/find?q={q}")).await;
        assert!(found.contains(&request), "{q}");
    }

    let reveal = [("request_id", request.as_str()), ("csrf", "forged")];
    let refused = post_form(&app, &cookie, "/console/reveal", &reveal).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let token = csrf(&trade);
    let reveal = [("request_id", request.as_str()), ("csrf", token.as_str())];
    let shown = post_form(&app, &cookie, "/console/reveal", &reveal).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(shown.text().await.unwrap().contains("CONSOLE-MARK"));
    let audited: (String, String) = sqlx::query_as(
        "SELECT operator_id::text, subject FROM operator_audit WHERE action = 'reveal'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, (admin.id.clone(), format!("request:{request}")));

    for path in [
        "/console/log",
        "/console/log?aggregate=payment&event=PaymentPaidOut",
        "/console/deadlines",
        "/console/dead-letters",
        &format!("/console/streams/listing/{}", deal.listing),
    ] {
        let (status, _) = page(&app, &cookie, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }

    // Signing out ends the session: the cookie opens nothing any more.
    let out = post_form(
        &app,
        &cookie,
        "/console/logout",
        &[("csrf", token.as_str())],
    )
    .await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (status, _) = page(&app, &cookie, "/console").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_declined_refund_is_sent_again_from_the_console_and_the_trade_settles() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Printer", 30_000).await;
    app.gateway.set_profile(SimulationProfile {
        transfer_decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let request = deal.placed.request_id.clone();
    app.act_ok(&deal.seller, &request, "reject", "rejected")
        .await;
    let (admin, cookie) = admin_cookie(&app).await;
    let letter = format!("refund:{}", deal.placed.payment_id);
    eventually("the refund to be a dead letter", || async {
        let (_, list) = page(&app, &cookie, "/console/dead-letters").await;
        list.contains(&letter).then_some(())
    })
    .await;
    app.gateway.set_profile(SimulationProfile::default());

    let (status, shown) = page(&app, &cookie, &format!("/console/dead-letters/{letter}")).await;
    assert_eq!(status, StatusCode::OK);
    let path = format!(
        "/console/payments/{}/retry-transfer",
        deal.placed.payment_id
    );
    let form = [
        ("reason", "card reissued"),
        ("confirm", "yes"),
        ("csrf", ""),
    ];
    let refused = post_form(&app, &cookie, &path, &form).await;
    assert_eq!(
        refused.status(),
        StatusCode::FORBIDDEN,
        "no CSRF token, no action"
    );
    let token = csrf(&shown);
    let unconfirmed = [("reason", "card reissued"), ("csrf", token.as_str())];
    let refused = post_form(&app, &cookie, &path, &unconfirmed).await;
    assert_eq!(
        refused.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "no confirmation, no action"
    );
    let form = [
        ("reason", "card reissued"),
        ("confirm", "yes"),
        ("csrf", token.as_str()),
    ];
    let sent = post_form(&app, &cookie, &path, &form).await;
    assert_eq!(sent.status(), StatusCode::SEE_OTHER);

    app.wait_payment(&deal.buyer, &deal.placed.payment_id, "refunded")
        .await;
    let retried = app
        .event_payload("payment", &deal.placed.payment_id, "PaymentTransferRetried")
        .await;
    assert_eq!(retried["by"]["user"], admin.id.as_str());
    app.settle().await;
    let (_, trade) = page(&app, &cookie, &format!("/console/find?q={request}")).await;
    assert!(trade.contains("PaymentTransferRetried") && trade.contains("PaymentRefunded"));
    let detail: Value = app.read(&deal.buyer, &format!("/requests/{request}")).await;
    assert!(
        detail["timeline"]
            .to_string()
            .contains("PaymentTransferRetried"),
        "in the trade's timeline"
    );
}

#[tokio::test]
async fn a_rebuild_started_in_the_console_reaches_the_end_and_a_verification_finds_no_difference() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Lamp", 10_000).await;
    app.act_ok(&deal.seller, &deal.placed.request_id, "accept", "accepted")
        .await;
    app.settle().await;
    let (_, cookie) = admin_cookie(&app).await;
    let (_, form) = page(&app, &cookie, "/console/rebuilds").await;
    let token = csrf(&form);
    let unconfirmed = [("view", "catalog"), ("csrf", token.as_str())];
    let refused = post_form(&app, &cookie, "/console/rebuilds", &unconfirmed).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for (verify, expected) in [
        ("", "rebuilt and swapped in"),
        ("yes", "equals the live view"),
    ] {
        let start = [
            ("view", "mypage"),
            ("verify", verify),
            ("confirm", "yes"),
            ("csrf", token.as_str()),
        ];
        let started = post_form(&app, &cookie, "/console/rebuilds", &start).await;
        assert_eq!(started.status(), StatusCode::SEE_OTHER);
        let job = started.headers()[LOCATION].to_str().unwrap().to_owned();
        let done = eventually("the rebuild to end", || async {
            let (_, shown) = page(&app, &cookie, &job).await;
            shown
                .contains("<b id=\"r-state\">done</b>")
                .then_some(shown)
        })
        .await;
        assert!(done.contains("<span id=\"r-percent\">100</span>"), "{done}");
        assert!(done.contains(expected), "{done}");
    }
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM operator_audit WHERE subject = 'view:mypage'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn a_dead_letter_discarded_from_the_console_shows_in_the_trade_with_the_operator() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Kettle", 25_000).await;
    let request = deal.placed.request_id.clone();
    let letter = crate::dead_letters::unreadable_letter(&app, &request).await;
    let (admin, cookie) = admin_cookie(&app).await;
    let (status, shown) = page(&app, &cookie, &format!("/console/dead-letters/{letter}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        shown.contains("/discard") && shown.contains("/retry"),
        "{shown}"
    );
    let token = csrf(&shown);
    let path = format!("/console/dead-letters/{letter}/discard");
    let why = "settled in person";
    let forged = [("reason", why), ("confirm", "yes"), ("csrf", "forged")];
    let refused = post_form(&app, &cookie, &path, &forged).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let reasonless = [
        ("reason", " "),
        ("confirm", "yes"),
        ("csrf", token.as_str()),
    ];
    let refused = post_form(&app, &cookie, &path, &reasonless).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(app.events_of("dead_letter", &letter).await.is_empty());

    let form = [
        ("reason", why),
        ("confirm", "yes"),
        ("csrf", token.as_str()),
    ];
    let discarded = post_form(&app, &cookie, &path, &form).await;
    assert_eq!(discarded.status(), StatusCode::SEE_OTHER);
    let payload = app
        .event_payload("dead_letter", &letter, "DeadLetterDiscarded")
        .await;
    assert_eq!(payload["by"]["user"], admin.id.as_str());
    let (_, list) = page(&app, &cookie, "/console/dead-letters").await;
    assert!(!list.contains(&letter), "no longer a dead letter");
    let (_, trade) = page(&app, &cookie, &format!("/console/find?q={request}")).await;
    assert!(trade.contains("DeadLetterDiscarded") && trade.contains(why));
}
