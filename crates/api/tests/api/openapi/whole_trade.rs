//! The whole-trade test: every answer of a trade through HTTP matches the documented schemas.

use std::collections::BTreeSet;
use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_projections::settlement::DispatcherConfig;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, test_settings, Placed, TestApp, User};

use super::conformance::{operation, Conformance};
use super::operators::operators_phase;
use super::served;

pub(super) async fn signed_up(app: &TestApp, check: &mut Conformance, prefix: &str) -> User {
    let username = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let response = app
        .signup_response(&json!({"username": username, "password": "correct horse battery"}))
        .await;
    let body = check.check("post", "/auth/signup", response).await;
    User {
        id: body["user_id"].as_str().unwrap().to_owned(),
        username,
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// A dispatcher that polls often: a payout the gateway declines is a dead letter at once.
async fn app_with_quick_dead_letters() -> TestApp {
    let mut settings = test_settings();
    settings.workers.dispatcher = DispatcherConfig {
        retry_base: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    spawn_app_with(settings).await
}

#[tokio::test]
async fn every_answer_of_a_whole_trade_matches_the_documented_schemas() {
    let app = app_with_quick_dead_letters().await;
    let mut check = Conformance {
        document: served(&app).await,
        seen: BTreeSet::new(),
    };
    let c = &mut check;
    let seller = signed_up(&app, c, "seller").await;
    let buyer = signed_up(&app, c, "buyer").await;
    accounts_phase(&app, c, &seller).await;
    let listed = listings_phase(&app, c, &seller, &buyer).await;
    trade_phase(&app, c, &seller, &buyer, &listed.path).await;
    second_listing_phase(&app, c, &seller, &buyer).await;
    let placed = gateway_phase(&app, c, &seller, &buyer).await;
    reads_phase(&app, c, &seller, &buyer, listed.token).await;
    operators_phase(&app, c, &buyer, &placed).await;

    // Operations and the document itself, without a token.
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        c.check("get", path, response).await;
    }

    // Every documented operation was called (the docs page has its own test).
    let mut documented = BTreeSet::new();
    for (path, item) in check.document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !path.starts_with("/docs") {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let missed: Vec<_> = documented.difference(&check.seen).collect();
    assert!(missed.is_empty(), "never called here: {missed:?}");
}

/// Accounts, and their refusals.
async fn accounts_phase(app: &TestApp, c: &mut Conformance, seller: &User) {
    let login = json!({"username": seller.username, "password": "correct horse battery"});
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    c.check("post", "/auth/login", response).await;
    let wrong = json!({"username": seller.username, "password": "wrong horse battery"});
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    c.check("post", "/auth/login", response).await;
    let taken = json!({"username": seller.username, "password": "correct horse battery"});
    c.check("post", "/auth/signup", app.signup_response(&taken).await)
        .await;
    let invalid = json!({"username": "X", "password": "short"});
    let body = c
        .check("post", "/auth/signup", app.signup_response(&invalid).await)
        .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    sessions_phase(app, c).await;
}

/// A user of their own changes their password, logs out, and logs out everywhere.
async fn sessions_phase(app: &TestApp, c: &mut Conformance) {
    let user = app.signup("sessions").await;
    let change = |current: &str| {
        let body = json!({"current_password": current, "new_password": "a brand new secret"});
        app.post(&user, "/auth/password").json(&body).send()
    };
    let response = change("not the password").await.unwrap();
    c.check("post", "/auth/password", response).await;
    let response = change("correct horse battery").await.unwrap();
    c.check("post", "/auth/password", response).await;
    let response = app.post(&user, "/auth/logout").send().await.unwrap();
    c.check("post", "/auth/logout", response).await;
    let response = app.post(&user, "/auth/logout-all").send().await.unwrap();
    c.check("post", "/auth/logout-all", response).await;
    // Closing an account: the wrong password, then the right one (erasure.rs has the rest).
    let leaver = app.signup("leaver").await;
    for password in ["not the password", "correct horse battery"] {
        let body = json!({ "password": password });
        let response = app.client.delete(app.url("/me")).bearer_auth(&leaver.token);
        c.check("delete", "/me", response.json(&body).send().await.unwrap())
            .await;
    }
}

/// The first listing, as the later phases need it.
struct Listed {
    path: String,
    token: String,
}

/// Listings.
async fn listings_phase(app: &TestApp, c: &mut Conformance, seller: &User, buyer: &User) -> Listed {
    let lamp = json!({"title": "Desk lamp", "description": "Warm light", "price": 15000,
                      "category": "furniture"});
    let response = app
        .post(seller, "/listings")
        .json(&lamp)
        .send()
        .await
        .unwrap();
    let body = c.check("post", "/listings", response).await;
    let listing = body["listing_id"].as_str().unwrap().to_owned();
    let token = body["consistency_token"].as_str().unwrap().to_owned();
    let path = format!("/listings/{listing}");
    let response = app
        .get(buyer, &path)
        .header("x-consistency-token", &token)
        .send()
        .await;
    c.check("get", &path, response.unwrap()).await;
    let response = app.get(buyer, "/listings?limit=1").send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app.get(buyer, "/listings?limit=0").send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app.client.get(app.url("/listings")).send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app
        .post(seller, "/listings")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let response = app
        .post(seller, "/listings")
        .body("title=x")
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let huge = json!({"title": "x", "description": "y".repeat(70_000), "price": 1});
    let response = app
        .post(seller, "/listings")
        .json(&huge)
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let response = app
        .patch(seller, &path)
        .json(&json!({"price": 14000}))
        .send()
        .await;
    c.check("patch", &path, response.unwrap()).await;
    let response = app
        .patch(buyer, &path)
        .json(&json!({"price": 1}))
        .send()
        .await;
    c.check("patch", &path, response.unwrap()).await;
    let response = app.patch(seller, &path).json(&json!({})).send().await;
    c.check("patch", &path, response.unwrap()).await;
    let unknown = format!("/listings/{}", uuid::Uuid::new_v4());
    c.check(
        "get",
        &unknown,
        app.get(buyer, &unknown).send().await.unwrap(),
    )
    .await;
    Listed { path, token }
}

/// A trade: request (and pay), accept, complete.
async fn trade_phase(app: &TestApp, c: &mut Conformance, seller: &User, buyer: &User, path: &str) {
    let requests = format!("{path}/requests");
    let response = app.post(seller, &requests).send().await.unwrap();
    c.check("post", &requests, response).await; // own listing
    let response = app
        .post(buyer, &requests)
        .json(&json!({"price": 14000}))
        .send()
        .await;
    let placed = c.check("post", &requests, response.unwrap()).await;
    let request_id = placed["request_id"].as_str().unwrap().to_owned();
    let payment_id = placed["payment_id"].as_str().unwrap().to_owned();
    let response = app.post(buyer, &requests).send().await.unwrap();
    c.check("post", &requests, response).await; // already open
    let request = format!("/requests/{request_id}");
    let accept = format!("{request}/accept");
    c.check(
        "post",
        &accept,
        app.post(buyer, &accept).send().await.unwrap(),
    )
    .await;
    c.check(
        "post",
        &accept,
        app.post(seller, &accept).send().await.unwrap(),
    )
    .await;
    c.check(
        "post",
        &accept,
        app.post(seller, &accept).send().await.unwrap(),
    )
    .await;
    let complete = format!("{request}/complete");
    let response = app
        .post(buyer, &complete)
        .header("idempotency-key", "complete-1")
        .send()
        .await
        .unwrap();
    c.check("post", &complete, response).await;
    app.settle().await;
    c.check(
        "get",
        &request,
        app.get(seller, &request).send().await.unwrap(),
    )
    .await;
    let payment = format!("/payments/{payment_id}");
    c.check(
        "get",
        &payment,
        app.get(buyer, &payment).send().await.unwrap(),
    )
    .await;
    let response = app
        .get(buyer, &format!("/payments/{}", uuid::Uuid::new_v4()))
        .send();
    c.check("get", &payment, response.await.unwrap()).await;
}

/// A second listing: rejected, then a third: cancelled, then withdrawn.
async fn second_listing_phase(app: &TestApp, c: &mut Conformance, seller: &User, buyer: &User) {
    let (second, _) = app.register_listing(seller, "Chair", 30_000).await;
    let second_requests = format!("/listings/{second}/requests");
    let placed = app.place_request(buyer, &second).await;
    let reject = format!("/requests/{}/reject", placed.request_id);
    let response = app
        .post(seller, &reject)
        .json(&json!({"reason": "Sold elsewhere"}))
        .send();
    c.check("post", &reject, response.await.unwrap()).await;
    let response = app
        .post(seller, &reject)
        .json(&json!({"reason": "x\u{7}"}))
        .send();
    c.check("post", &reject, response.await.unwrap()).await;
    let placed = app.place_request(buyer, &second).await;
    let cancel = format!("/requests/{}/cancel", placed.request_id);
    c.check(
        "post",
        &cancel,
        app.post(buyer, &cancel).send().await.unwrap(),
    )
    .await;
    let second_path = format!("/listings/{second}");
    let response = app.delete(buyer, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.delete(seller, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.delete(seller, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.post(buyer, &second_requests).send().await.unwrap();
    c.check("post", &second_requests, response).await; // withdrawn: not available
}

/// The gateway declines, then is down. Returns the request whose payout it then declines.
async fn gateway_phase(app: &TestApp, c: &mut Conformance, seller: &User, buyer: &User) -> Placed {
    let (third, _) = app.register_listing(seller, "Lamp", 9_000).await;
    let third_requests = format!("/listings/{third}/requests");
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.post(buyer, &third_requests).send().await.unwrap();
    let declined = c.check("post", &third_requests, response).await;
    assert_eq!(declined["status_of_request"], "payment_failed");
    app.gateway.set_profile(SimulationProfile {
        down: true,
        ..SimulationProfile::default()
    });
    let response = app.post(buyer, &third_requests).send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    c.check("post", &third_requests, response).await;

    // A payout the gateway declines becomes a dead letter.
    app.gateway.set_profile(SimulationProfile::default());
    let placed = app.place_request(buyer, &third).await;
    app.act_ok(seller, &placed.request_id, "accept", "accepted")
        .await;
    app.gateway.set_profile(SimulationProfile {
        transfer_decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    app.act_ok(buyer, &placed.request_id, "complete", "completed")
        .await;
    app.settle().await;
    placed
}

/// The reads (`token`: the first listing's consistency token).
async fn reads_phase(
    app: &TestApp,
    c: &mut Conformance,
    seller: &User,
    buyer: &User,
    token: String,
) {
    let with_token = |user: &User, path: &str| {
        app.get(user, path)
            .header("x-consistency-token", token.as_str())
    };
    for (user, path) in [
        (buyer, "/mypage"),
        (seller, "/mypage"),
        (buyer, "/mypage/purchases"),
        (seller, "/mypage/sales?limit=2"),
        (seller, "/notifications"),
        (buyer, "/notifications?limit=1"),
        (buyer, "/me/export"),
        (seller, "/me/export"),
    ] {
        c.check("get", path, with_token(user, path).send().await.unwrap())
            .await;
    }
    let response = app
        .get(buyer, "/mypage")
        .header("x-consistency-token", "nope")
        .send();
    c.check("get", "/mypage", response.await.unwrap()).await;
    let response = app
        .get(buyer, "/mypage/sales?cursor=nope")
        .send()
        .await
        .unwrap();
    c.check("get", "/mypage/sales", response).await;
    let response = app
        .get(buyer, "/notifications?cursor=nope")
        .send()
        .await
        .unwrap();
    c.check("get", "/notifications", response).await;
    let response = app
        .get(buyer, "/mypage/purchases?limit=500")
        .send()
        .await
        .unwrap();
    c.check("get", "/mypage/purchases", response).await;
    // The stream: its headers (the events are tested in reads.rs).
    let response = app
        .get(buyer, "/notifications/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (template, operation) = operation(&c.document, "get", "/notifications/stream");
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(operation["responses"]["200"]["content"][content_type].is_object());
    c.seen.insert(("get".to_owned(), template));
    drop(response);
    let response = app
        .get(buyer, "/notifications/stream")
        .header("last-event-id", "x");
    c.check(
        "get",
        "/notifications/stream",
        response.send().await.unwrap(),
    )
    .await;
}
