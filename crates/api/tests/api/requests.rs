//! Purchase requests through HTTP: the seed's trades end to end, payment outcomes, and
//! every refusal with its status and stable code.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings, TestApp, User};

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
async fn a_rejected_request_leaves_the_listing_available() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    let response = app
        .post(&seller, &format!("/requests/{}/reject", placed.request_id))
        .json(&json!({"reason": "sold it at the flea market"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "rejected");
    let view = app
        .listing_after(
            &seller,
            &listing,
            body["consistency_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(view["status"], "available");
}

#[tokio::test]
async fn the_buyer_cancels_a_pending_request() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    app.act_ok(&buyer, &placed.request_id, "cancel", "cancelled")
        .await;
    assert_eq!(
        app.events_of("listing", &listing).await,
        ["ListingRegistered"],
        "a pending request never held the listing"
    );
}

#[tokio::test]
async fn cancelling_an_accepted_request_makes_the_listing_available_again_for_either_side() {
    let app = spawn_app().await;
    for canceller in ["buyer", "seller"] {
        let (seller, buyer, listing) = market(&app).await;
        let placed = app.place_request(&buyer, &listing).await;
        app.act_ok(&seller, &placed.request_id, "accept", "accepted")
            .await;
        let who = if canceller == "buyer" {
            &buyer
        } else {
            &seller
        };
        let token = app
            .act_ok(who, &placed.request_id, "cancel", "cancelled")
            .await;
        let view = app.listing_after(&buyer, &listing, &token).await;
        assert_eq!(view["status"], "available", "cancelled by the {canceller}");
        // The listing can be requested and accepted again.
        let other = app.signup("next").await;
        let again = app.place_request(&other, &listing).await;
        app.act_ok(&seller, &again.request_id, "accept", "accepted")
            .await;
    }
}

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

#[tokio::test]
async fn only_the_seller_answers_and_only_the_buyer_completes_and_strangers_see_nothing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let stranger = app.signup("stranger").await;
    let placed = app.place_request(&buyer, &listing).await;
    let id = placed.request_id.as_str();

    for action in ["accept", "reject"] {
        let response = app.act(&buyer, id, action).await;
        assert_problem(response, StatusCode::FORBIDDEN, "not_your_listing").await;
    }
    for action in ["accept", "reject", "complete", "cancel"] {
        let response = app.act(&stranger, id, action).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = app
            .client
            .post(app.url(&format!("/requests/{id}/{action}")))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    app.act_ok(&seller, id, "accept", "accepted").await;
    let response = app.act(&seller, id, "complete").await;
    assert_problem(response, StatusCode::FORBIDDEN, "not_your_request").await;
    assert_eq!(
        app.events_of("purchase_request", id).await,
        ["PurchaseRequested", "PurchaseRequestAccepted"],
        "no refusal wrote anything"
    );
}

#[tokio::test]
async fn transitions_not_allowed_from_the_current_status_are_409_invalid_transition() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    let id = placed.request_id.as_str();
    // Requested: it cannot be completed yet, nor cancelled by the seller.
    let response = app.act(&buyer, id, "complete").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    let response = app.act(&seller, id, "cancel").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    // Accepted: it cannot be rejected.
    app.act_ok(&seller, id, "accept", "accepted").await;
    let response = app.act(&seller, id, "reject").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    // Completed: final.
    app.act_ok(&buyer, id, "complete", "completed").await;
    for (user, action) in [(&buyer, "cancel"), (&seller, "cancel"), (&seller, "accept")] {
        let response = app.act(user, id, action).await;
        assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    }
}

#[tokio::test]
async fn a_second_request_cannot_be_accepted_while_another_holds_the_listing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let other = app.signup("other").await;
    let first = app.place_request(&buyer, &listing).await;
    let second = app.place_request(&other, &listing).await;
    app.act_ok(&seller, &first.request_id, "accept", "accepted")
        .await;
    let response = app.act(&seller, &second.request_id, "accept").await;
    // Refused because the listing is held; or, if the saga has already rejected the second
    // request (`listing_reserved`, its job), because a rejected request cannot be accepted.
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: serde_json::Value = response.json().await.unwrap();
    let events = app.events_of("purchase_request", &second.request_id).await;
    let rest: Vec<&str> = events[1..].iter().map(String::as_str).collect();
    match problem["code"].as_str() {
        Some("listing_not_available") => {
            assert!(
                rest.is_empty() || rest == ["PurchaseRequestRejected"],
                "{events:?}"
            )
        }
        Some("invalid_transition") => assert_eq!(rest, ["PurchaseRequestRejected"]),
        other => panic!("refused with {other:?}"),
    }
    assert_eq!(events[0], "PurchaseRequested");
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
