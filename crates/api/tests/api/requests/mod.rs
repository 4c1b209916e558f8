//! Purchase requests through HTTP: the seed's trades end to end, payment outcomes, and
//! every refusal with its status and stable code.

mod answering;
mod placing;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp, User};

/// A seller with one listing at 30,000 KRW, and a buyer.
async fn market(app: &TestApp) -> (User, User, String) {
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Road bike", 30_000).await;
    (seller, buyer, listing)
}

#[tokio::test]
async fn request_accept_complete_reserves_then_sells_the_listing_and_holds_the_money() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;

    let placed = app.place_request(&buyer, &listing).await;
    let captures = app.gateway_calls("capture");
    assert_eq!(
        captures,
        vec![(format!("capture:{}", placed.payment_id), 1)]
    );
    let view = app.listing_after(&buyer, &listing, &placed.token).await;
    assert_eq!(
        view["status"], "available",
        "a request alone does not reserve"
    );

    let token = app
        .act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let view = app.listing_after(&seller, &listing, &token).await;
    assert_eq!(view["status"], "reserved");

    let token = app
        .act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    let view = app.listing_after(&seller, &listing, &token).await;
    assert_eq!(view["status"], "sold");

    assert_eq!(
        app.events_of("purchase_request", &placed.request_id).await,
        [
            "PurchaseRequested",
            "PurchaseRequestAccepted",
            "PurchaseRequestCompleted"
        ]
    );
    assert_eq!(
        app.events_of("listing", &listing).await,
        ["ListingRegistered", "ListingReserved", "ListingSold"]
    );
    let paid = app
        .wait_payment(&seller, &placed.payment_id, "paid_out")
        .await;
    assert_eq!(paid["amount"], 30_000);
    assert_eq!(
        app.events_of("payment", &placed.payment_id).await,
        ["PaymentCaptureStarted", "PaymentCaptured", "PaymentPaidOut"]
    );
}

#[tokio::test]
async fn every_trade_event_carries_the_request_id_as_correlation_and_the_actor() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let rows: Vec<(String, Value)> = sqlx::query_as(
        "SELECT event_type, metadata FROM events WHERE aggregate_type <> 'listing'
            OR event_type <> 'ListingRegistered' ORDER BY global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(
        rows.len(),
        5,
        "capture started and made, request, reservation, acceptance: {rows:?}"
    );
    for (event, meta) in rows {
        assert_eq!(
            meta["correlation_id"],
            placed.request_id.as_str(),
            "{event}"
        );
        assert!(meta["actor"].is_string(), "{event} {meta}");
        assert!(meta["http_request_id"].is_string(), "{event} {meta}");
        assert!(meta["causation_id"].is_string(), "{event} {meta}");
    }
}

#[tokio::test]
async fn bad_input_on_request_commands_is_4xx_and_writes_nothing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    let before = app.event_count().await;
    let requests = format!("/listings/{listing}/requests");
    let reject = format!("/requests/{}/reject", placed.request_id);
    let cases: Vec<(&User, &str, &str, StatusCode, &str)> = vec![
        (
            &buyer,
            requests.as_str(),
            "{\"price\": ",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            &buyer,
            &requests,
            "{\"price\": \"cheap\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &buyer,
            &requests,
            "{\"price\": 0}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &buyer,
            &requests,
            "{\"price\": -3}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &buyer,
            &requests,
            "{\"price\": 1.5}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &buyer,
            &requests,
            "{\"price\": 99999999999999999999}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &buyer,
            &requests,
            "[1, 2]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &seller,
            &reject,
            "{\"reason\": 42}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &seller,
            &reject,
            "{\"reason\": \"bell\\u0007\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            &seller,
            &reject,
            "{\"reason\": ",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    let long_reason = json!({"reason": "x".repeat(501)}).to_string();
    let mut cases = cases;
    cases.push((
        &seller,
        &reject,
        &long_reason,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    ));
    for (user, path, body, status, code) in cases {
        let response = app
            .post(user, path)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path} {body}");
        assert_problem(response, status, code).await;
    }
    let unknown = uuid::Uuid::new_v4();
    for action in ["accept", "reject", "complete", "cancel"] {
        for id in [unknown.to_string(), "12".into(), "../listings".into()] {
            let response = app.act(&seller, &id, action).await;
            // `/requests/../listings/accept` is `/listings/accept`: a listing route that
            // takes no POST.
            let expected = if id.starts_with("..") {
                StatusCode::METHOD_NOT_ALLOWED
            } else {
                StatusCode::NOT_FOUND
            };
            assert_eq!(response.status(), expected, "{action} {id}");
        }
    }
    assert_eq!(app.event_count().await, before, "nothing was written");
    assert_eq!(app.gateway_calls("capture").len(), 1, "nothing was charged");
}
