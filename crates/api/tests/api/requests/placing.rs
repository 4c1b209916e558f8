//! Placing a request and its payment: the offer, the gateway's answers, and the refusals.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings};

use super::market;

#[tokio::test]
async fn an_offer_below_the_asking_price_is_what_gets_charged_and_above_it_is_refused() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    let response = app
        .request_listing(&buyer, &listing, Some(json!({"price": 30_001})))
        .await;
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "price");
    assert!(app.gateway.ledger().is_empty(), "nothing charged");

    let response = app
        .request_listing(&buyer, &listing, Some(json!({"price": 25_000})))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let placed: Value = response.json().await.unwrap();
    let ledger = app.gateway.ledger();
    let capture = &ledger[&format!("capture:{}", placed["payment_id"].as_str().unwrap())];
    assert_eq!(capture.amount.as_krw(), 25_000);
    assert_eq!(capture.party.to_string(), buyer.id);
}

#[tokio::test]
async fn a_declined_payment_is_402_and_records_the_request_as_payment_failed() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    let body = assert_problem(response, StatusCode::PAYMENT_REQUIRED, "payment_declined").await;
    let request_id = body["request_id"].as_str().unwrap();
    let payment_id = body["payment_id"].as_str().unwrap();
    assert_eq!(
        app.events_of("purchase_request", request_id).await,
        ["PurchaseRequestPaymentFailed"]
    );
    assert_eq!(
        app.events_of("payment", payment_id).await,
        ["PaymentCaptureStarted", "PaymentDeclined"]
    );

    // A failed request is not open: the buyer may try again.
    app.gateway.set_profile(SimulationProfile::default());
    app.place_request(&buyer, &listing).await;
}

#[tokio::test]
async fn a_failing_gateway_is_503_with_retry_after_and_records_only_the_aborted_capture() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    let before = app.event_count().await;
    app.gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    // The intent and the gateway's refusal before charging; no request.
    assert_eq!(
        app.event_count().await,
        before + 2,
        "started and aborted, nothing else"
    );
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'payment' ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(types, ["PaymentCaptureStarted", "PaymentCaptureAborted"]);

    // The buyer's slot was freed: once the gateway is back, the request goes through.
    app.gateway.set_profile(SimulationProfile::default());
    app.place_request(&buyer, &listing).await;
}

#[tokio::test]
async fn a_capture_that_times_out_is_503_and_leaves_the_payment_unknown_with_no_request() {
    let mut settings = test_settings();
    settings.payment_timeout = Duration::from_millis(100);
    let app = spawn_app_with(settings).await;
    let (_, buyer, listing) = market(&app).await;
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    let kinds: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events WHERE aggregate_type <> 'listing'")
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(kinds, ["PaymentCaptureStarted", "PaymentCaptureTimedOut"]);
}

#[tokio::test]
async fn requesting_is_refused_for_your_own_an_unavailable_or_an_unknown_listing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let response = app.request_listing(&seller, &listing, None).await;
    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "own_listing").await;

    let placed = app.place_request(&buyer, &listing).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let latecomer = app.signup("late").await;
    let response = app.request_listing(&latecomer, &listing, None).await;
    assert_problem(response, StatusCode::CONFLICT, "listing_not_available").await;

    let (withdrawn, _) = app.register_listing(&seller, "Old sofa", 1_000).await;
    let response = app
        .delete(&seller, &format!("/listings/{withdrawn}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.request_listing(&buyer, &withdrawn, None).await;
    assert_problem(response, StatusCode::CONFLICT, "listing_not_available").await;

    let unknown = uuid::Uuid::new_v4().to_string();
    for id in [unknown.as_str(), "not-a-uuid"] {
        let response = app.request_listing(&buyer, id, None).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_buyer_has_one_open_request_per_listing_and_may_request_again_once_it_closes() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    let first = app.place_request(&buyer, &listing).await;
    let response = app.request_listing(&buyer, &listing, None).await;
    assert_problem(response, StatusCode::CONFLICT, "request_already_open").await;
    app.act_ok(&buyer, &first.request_id, "cancel", "cancelled")
        .await;
    let second = app.place_request(&buyer, &listing).await;
    assert_ne!(second.request_id, first.request_id);
}
