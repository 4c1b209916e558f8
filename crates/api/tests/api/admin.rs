//! Dead letters: a refund the gateway declines is a dead letter at once (a decline is final
//! for its key); operators see it over HTTP and the CLI; retrying it as it is changes
//! nothing, and each operator path settles it once: sent again under a new attempt, or
//! recorded as settled outside Carrot. Both are audited events in the trade's timeline.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_projections::settlement::DispatcherConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, carrot_cli, eventually, spawn_app_with, test_settings, Deal, TestApp, User,
};

/// An app whose dispatcher polls often.
async fn app_that_gives_up_fast() -> TestApp {
    let mut settings = test_settings();
    settings.workers.dispatcher = DispatcherConfig {
        retry_base: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    spawn_app_with(settings).await
}

/// A paid request the seller rejects while the gateway declines every refund: its refund
/// is a dead letter. Returns the deal, an admin, and the dead letter's id.
async fn declined_refund(app: &TestApp) -> (Deal, User, String) {
    let deal = app.pending_deal("Printer", 30_000).await;
    app.gateway.set_profile(SimulationProfile {
        transfer_decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    app.act_ok(&deal.seller, &deal.placed.request_id, "reject", "rejected")
        .await;
    let command_id = format!("refund:{}", deal.placed.payment_id);
    let admin = app.make_admin(&app.signup("ops").await).await;
    eventually("the refund to be dead-lettered", || async {
        let body: Value = app
            .get(&admin, "/admin/dead-letters")
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (!body["items"].as_array()?.is_empty()).then_some(())
    })
    .await;
    (deal, admin, command_id)
}

#[tokio::test]
async fn a_declined_refund_is_a_dead_letter_at_once_and_an_operator_retries_it_under_a_new_attempt()
{
    let app = app_that_gives_up_fast().await;
    let (deal, admin, command_id) = declined_refund(&app).await;
    let (seller, buyer, placed) = (&deal.seller, &deal.buyer, &deal.placed);
    let letters = app.read(&admin, "/admin/dead-letters").await;
    let letter = &letters["items"][0];
    assert_eq!(letter["command_id"], command_id.as_str());
    assert_eq!(letter["request_id"], placed.request_id.as_str());
    assert_eq!(letter["attempts"], 1, "a decline is final: no second try");
    let why = letter["last_error"].as_str().unwrap();
    assert!(why.contains("declined the refund (attempt 1)"), "{why}");
    assert!(
        why.contains("retry-transfer") && why.contains("settle-outside"),
        "{why}"
    );
    assert_eq!(letters["next_cursor"], Value::Null);
    let payment = app
        .read(buyer, &format!("/payments/{}", placed.payment_id))
        .await;
    assert_eq!(payment["status"], "captured", "the money is still held");
    assert!(payment["reason"]
        .as_str()
        .unwrap()
        .starts_with("refund declined"));

    // Operators only.
    let response = app.get(seller, "/admin/dead-letters").send().await.unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let retry_path = format!("/admin/payments/{}/retry-transfer", placed.payment_id);
    let response = app
        .post(seller, &retry_path)
        .json(&json!({"reason": "mine"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;

    // The CLI shows it too.
    let listed = carrot_cli(&["saga", "dead-letters"], &app.db.url);
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&command_id));

    // Retrying it as it is asks the gateway nothing new: the key's answer is the decline.
    app.gateway.set_profile(SimulationProfile::default());
    let response = app
        .post(&admin, &format!("/admin/dead-letters/{command_id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    eventually("the plain retry to be dead again", || async {
        let body = app.read(&admin, "/admin/dead-letters").await;
        (body["items"].as_array()?.len() == 1).then_some(())
    })
    .await;
    assert_eq!(app.gateway_calls("refund").len(), 1);

    // A reason is required, and bounded.
    let response = app
        .post(&admin, &retry_path)
        .json(&json!({"reason": " "}))
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // The operator sends it again under a new attempt: refunded once, with the new key.
    let response = app
        .post(&admin, &retry_path)
        .json(&json!({"reason": "the buyer re-opened their account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["attempt"], 2);
    app.wait_payment(buyer, &placed.payment_id, "refunded")
        .await;
    app.settle().await;
    assert_eq!(
        app.gateway_calls("refund"),
        [
            (format!("refund:{}", placed.payment_id), 1),
            (format!("refund:{}:2", placed.payment_id), 1)
        ]
    );
    let ledger = app.gateway.ledger();
    let moved: Vec<_> = ledger
        .iter()
        .filter(|(_, s)| s.operation == "refund" && s.outcome.is_ok())
        .collect();
    assert_eq!(moved.len(), 1, "refunded once: {moved:?}");
    let listed = carrot_cli(&["saga", "dead-letters"], &app.db.url);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("no dead letters"));
    // Audited: who and why, in the trade's timeline.
    let retried = app
        .event_payload("payment", &placed.payment_id, "PaymentTransferRetried")
        .await;
    assert_eq!(retried["reason"], "the buyer re-opened their account");
    assert_eq!(retried["attempt"], 2);
    let events = app.events_of("payment", &placed.payment_id).await;
    assert!(events.ends_with(&[
        "PaymentTransferDeclined".to_owned(),
        "PaymentTransferRetried".to_owned(),
        "PaymentRefunded".to_owned()
    ]));
    // Nothing declined now: another retry is refused.
    let response = app
        .post(&admin, &retry_path)
        .json(&json!({"reason": "again"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::CONFLICT, "payment_already_refunded").await;
}

#[tokio::test]
async fn a_declined_refund_an_operator_settled_outside_carrot_is_final_and_closes_its_dead_letter()
{
    let app = app_that_gives_up_fast().await;
    let (deal, admin, command_id) = declined_refund(&app).await;
    let (buyer, placed) = (&deal.buyer, &deal.placed);
    let path = format!("/admin/payments/{}/settle-outside", placed.payment_id);
    let response = app
        .post(&admin, &path)
        .json(&json!({"reference": "", "reason": "bank transfer"}))
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let settle = json!({"reference": "bank-2026-0042", "reason": "card closed; paid by bank"});
    let response = app.post(&admin, &path).json(&settle).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answered: Value = response.json().await.unwrap();
    assert_eq!(answered["status"], "refunded");
    // The same again is already recorded.
    let response = app.post(&admin, &path).json(&settle).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let payment = app
        .wait_payment(buyer, &placed.payment_id, "refunded")
        .await;
    assert_eq!(payment["reason"], "settled outside Carrot: bank-2026-0042");
    app.settle().await;
    let (status, outcome): (String, Option<String>) =
        sqlx::query_as("SELECT status, outcome FROM settlement.outbox WHERE command_id = $1")
            .bind(&command_id)
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "done");
    assert_eq!(
        outcome.as_deref(),
        Some("settled outside Carrot: bank-2026-0042")
    );
    assert_eq!(
        app.gateway_calls("refund").len(),
        1,
        "the gateway was asked once"
    );
    let settled = app
        .event_payload("payment", &placed.payment_id, "PaymentSettledOutside")
        .await;
    assert_eq!(settled["reference"], "bank-2026-0042");
    assert_eq!(settled["by"]["user"], admin.id.as_str());
    let detail = app
        .read(buyer, &format!("/requests/{}", placed.request_id))
        .await;
    let text = detail["timeline"].to_string();
    assert!(text.contains("PaymentTransferDeclined") && text.contains("PaymentSettledOutside"));
}

#[tokio::test]
async fn the_cli_grants_the_admin_role_and_retries_a_dead_letter() {
    let app = app_that_gives_up_fast().await;
    let user = app.signup("ops").await;
    let granted = carrot_cli(&["admin", "grant", &user.username], &app.db.url);
    assert!(granted.status.success(), "{granted:?}");
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE username = $1")
        .bind(&user.username)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    let missing = carrot_cli(&["admin", "grant", "nobody_here"], &app.db.url);
    assert!(!missing.status.success());
    let unsigned = carrot_cli(
        &["saga", "dead-letters", "--retry", "refund:nothing"],
        &app.db.url,
    );
    assert!(!unsigned.status.success(), "a decision names its operator");
    let by = ["--by", user.username.as_str()];
    let missing = carrot_cli(
        &[
            &["saga", "dead-letters", "--retry", "refund:nothing"][..],
            &by,
        ]
        .concat(),
        &app.db.url,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no dead letter"));

    // A dead letter of a trade, put back in line and then discarded from the command line:
    // both recorded as the admin's, in the trade's stream of decisions.
    let deal = app.pending_deal("Kettle", 25_000).await;
    let letter = crate::dead_letters::unreadable_letter(&app, &deal.placed.request_id).await;
    let retried = carrot_cli(
        &[&["saga", "dead-letters", "--retry", &letter][..], &by].concat(),
        &app.db.url,
    );
    assert!(retried.status.success(), "{retried:?}");
    crate::dead_letters::wait_dead(&app, &letter).await;
    let reasonless = carrot_cli(
        &[&["saga", "dead-letters", "--discard", &letter][..], &by].concat(),
        &app.db.url,
    );
    assert!(!reasonless.status.success(), "a discard needs a reason");
    let discarded = carrot_cli(
        &[
            &["saga", "dead-letters", "--discard", &letter][..],
            &["--reason", "written by a rolled-back dispatcher"],
            &by,
        ]
        .concat(),
        &app.db.url,
    );
    assert!(discarded.status.success(), "{discarded:?}");
    assert!(String::from_utf8_lossy(&discarded.stdout).contains("discarded"));
    assert_eq!(
        app.events_of("dead_letter", &letter).await,
        ["DeadLetterRetried", "DeadLetterDiscarded"]
    );
    let payload = app
        .event_payload("dead_letter", &letter, "DeadLetterDiscarded")
        .await;
    assert_eq!(payload["by"]["user"], user.id.as_str());
}
