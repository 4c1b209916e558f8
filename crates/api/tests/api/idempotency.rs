//! `Idempotency-Key` on POSTs: the first response replayed, reuse with another body refused,
//! a key still in flight refused, and retries that never move money twice.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn the_same_key_and_body_replays_the_first_response_and_records_once() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let body = json!({"title": "Kettle", "description": "", "price": 12_000});
    let send = || {
        app.post(&seller, "/listings")
            .header("idempotency-key", "register-kettle-1")
            .json(&body)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"], location);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    let listings: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ListingRegistered'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(listings, 1);
}

#[tokio::test]
async fn a_replayed_purchase_request_charges_the_buyer_once() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Camera", 80_000).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let response = app
            .post(&buyer, &format!("/listings/{listing}/requests"))
            .header("idempotency-key", "buy-camera")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        answers.push(response.json::<Value>().await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    let captures = app.gateway_calls("capture");
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].1, 1, "the gateway saw one call");
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_and_keys_belong_to_one_user() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let other = app.signup("other").await;
    let post = |user, price: i64| {
        app.post(user, "/listings")
            .header("idempotency-key", "k1")
            .json(&json!({"title": "Mug", "description": "", "price": price}))
            .send()
    };
    assert_eq!(
        post(&seller, 100).await.unwrap().status(),
        StatusCode::CREATED
    );
    let reused = post(&seller, 200).await.unwrap();
    assert_problem(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    // Another user's identical key is their own: a fresh registration, not a replay.
    let theirs = post(&other, 200).await.unwrap();
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(!theirs.headers().contains_key("idempotent-replayed"));
}

#[tokio::test]
async fn a_key_whose_first_call_is_still_running_is_409() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Drone", 150_000).await;
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 800..=800,
        ..SimulationProfile::default()
    });
    let path = format!("/listings/{listing}/requests");
    let send = || {
        app.post(&buyer, &path)
            .header("idempotency-key", "slow-one")
            .send()
    };
    let (first, second) = tokio::join!(send(), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send().await
    });
    assert_eq!(first.unwrap().status(), StatusCode::CREATED);
    assert_problem(
        second.unwrap(),
        StatusCode::CONFLICT,
        "idempotency_key_in_flight",
    )
    .await;
}

#[tokio::test]
async fn a_retry_after_a_gateway_failure_runs_again_under_the_same_payment() {
    let mut settings = test_settings();
    settings.payment_timeout = Duration::from_millis(150);
    let app = spawn_app_with(settings).await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Tripod", 20_000).await;
    let path = format!("/listings/{listing}/requests");
    let send = || {
        app.post(&buyer, &path)
            .header("idempotency-key", "tripod")
            .send()
    };
    // The capture times out: its outcome is unknown, so the answer is 503 and not kept.
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    });
    let response = send().await.unwrap();
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    // The retry asks the gateway about the same payment: one charge, and the request exists.
    app.gateway.set_profile(SimulationProfile::default());
    let response = send().await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let placed: Value = response.json().await.unwrap();
    let captures = app.gateway_calls("capture");
    assert_eq!(
        captures,
        vec![(
            format!("capture:{}", placed["payment_id"].as_str().unwrap()),
            2
        )],
        "two calls with one key: one charge"
    );
    let payment = app
        .events_of("payment", placed["payment_id"].as_str().unwrap())
        .await;
    assert_eq!(
        payment,
        [
            "PaymentCaptureStarted",
            "PaymentCaptureTimedOut",
            "PaymentCaptured"
        ]
    );
}

#[tokio::test]
async fn a_key_must_be_1_to_255_characters() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    for key in ["".to_owned(), "k".repeat(256)] {
        let response = app
            .post(&seller, "/listings")
            .header("idempotency-key", key.as_str())
            .json(&json!({"title": "Mug", "description": "", "price": 100}))
            .send()
            .await
            .unwrap();
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.event_count().await, 0);
}
