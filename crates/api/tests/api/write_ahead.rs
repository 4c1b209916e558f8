//! Write-ahead capture and one sale per listing, black-box: a buyer who hangs up mid-payment
//! still gets what the gateway charged for; a capture whose process died right after
//! recording its start is settled by the reconciler whether or not the gateway charged;
//! an accept whose outcome is unknown never frees the listing, and a saga deciding on a
//! stale view cannot accept a request whose listing is held for another.

use std::sync::Arc;
use std::time::Duration;

use carrot_api::startup::ServeRole;
use carrot_domain::payment::{CaptureOrder, GatewayError, Payment, PaymentCommand, PaymentGateway};
use carrot_domain::{ListingId, Money, PaymentId, RequestId, SystemClock, Trade, UserId};
use carrot_projections::settlement::commands::Failure;
use carrot_projections::settlement::{SagaCommand, SagaConfig};
use carrot_projections::write_side::WriteSide;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{eventually, spawn_app, spawn_app_with, test_settings, TestApp, User};

/// An app whose saga asks about a started capture after 1 s and gives up waiting for its
/// request 1 s after that (the defaults are 10 s and 15 s).
async fn quick_saga() -> TestApp {
    let mut settings = test_settings();
    settings.workers.saga = SagaConfig {
        reconcile_after: chrono::Duration::seconds(1),
        orphan_after: chrono::Duration::seconds(1),
        repair_after: chrono::Duration::seconds(1),
        ..SagaConfig::default()
    };
    spawn_app_with(settings).await
}

async fn listing_of(app: &TestApp, seller: &User, price: i64) -> String {
    app.register_listing(seller, "Camera", price).await.0
}

#[tokio::test]
async fn a_buyer_who_hangs_up_mid_payment_still_gets_the_request_the_gateway_charged_for() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let listing = listing_of(&app, &seller, 25_000).await;
    app.gateway
        .set_profile(carrot_api::payment::SimulationProfile {
            latency_ms: 600..=600,
            ..Default::default()
        });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url(&format!("/listings/{listing}/requests")))
        .bearer_auth(&buyer.token)
        .send()
        .await;
    assert!(
        gave_up.is_err(),
        "the app was meant to give up: {gave_up:?}"
    );

    // The flow ran to its end without anyone waiting: the charge is held for a request.
    let purchase: Value = eventually("the request to be recorded", || async {
        let page = app.read(&buyer, "/mypage/purchases").await;
        page["items"]
            .as_array()?
            .iter()
            .find(|p| p["listing_id"] == listing.as_str() && p["status"] == "requested")
            .cloned()
    })
    .await;
    assert_eq!(purchase["payment"]["status"], "captured");
    let payment = purchase["payment"]["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.events_of("payment", &payment).await,
        ["PaymentCaptureStarted", "PaymentCaptured"]
    );
    assert_eq!(app.gateway_calls("capture").len(), 1);
    assert!(app.gateway_calls("refund").is_empty());
}

/// Records a capture's start the way a process does right before it calls the gateway,
/// and nothing after: the process died there.
async fn started_then_died(app: &TestApp, buyer: &User, seller: &User) -> (PaymentId, Trade) {
    let listing = listing_of(app, seller, 18_000).await;
    let trade = Trade {
        request_id: RequestId::new(),
        listing_id: listing.parse::<ListingId>().unwrap(),
        buyer_id: buyer.id.parse::<UserId>().unwrap(),
        seller_id: seller.id.parse::<UserId>().unwrap(),
    };
    let payment_id = PaymentId::new();
    let write = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let start = PaymentCommand::StartCapture {
        payment_id,
        trade,
        amount: Money::krw(18_000),
    };
    write
        .execute::<Payment>(&payment_id.to_string(), start, Default::default())
        .await
        .unwrap();
    (payment_id, trade)
}

#[tokio::test]
async fn a_capture_whose_process_died_after_charging_is_reconciled_and_refunded() {
    let app = quick_saga().await;
    let (buyer, seller) = (app.signup("buyer").await, app.signup("seller").await);
    let (payment_id, trade) = started_then_died(&app, &buyer, &seller).await;
    // The call had left before the crash, and the gateway charged.
    app.gateway
        .capture(CaptureOrder {
            idempotency_key: format!("capture:{payment_id}"),
            buyer_id: trade.buyer_id,
            amount: Money::krw(18_000),
        })
        .await
        .unwrap();
    let events = app
        .wait_event("payment", &payment_id.to_string(), "PaymentRefunded")
        .await;
    assert_eq!(
        events,
        [
            "PaymentCaptureStarted",
            "PaymentCaptured",
            "PaymentRefunded"
        ]
    );
    let request = app
        .events_of("purchase_request", &trade.request_id.to_string())
        .await;
    assert_eq!(request, ["PurchaseRequestAbandoned"]);
    assert_eq!(app.gateway_calls("capture").len(), 1, "never charged again");
}

#[tokio::test]
async fn a_capture_whose_process_died_before_sending_is_voided_and_a_late_one_cannot_charge() {
    let app = quick_saga().await;
    let (buyer, seller) = (app.signup("buyer").await, app.signup("seller").await);
    let (payment_id, trade) = started_then_died(&app, &buyer, &seller).await;
    let events = app
        .wait_event("payment", &payment_id.to_string(), "PaymentDeclined")
        .await;
    assert_eq!(events, ["PaymentCaptureStarted", "PaymentDeclined"]);
    app.wait_event(
        "purchase_request",
        &trade.request_id.to_string(),
        "PurchaseRequestPaymentFailed",
    )
    .await;
    // The call arrives after all (a packet stuck in a queue): the key is void.
    let late = app
        .gateway
        .capture(CaptureOrder {
            idempotency_key: format!("capture:{payment_id}"),
            buyer_id: trade.buyer_id,
            amount: Money::krw(18_000),
        })
        .await;
    assert!(matches!(late, Err(GatewayError::Declined(_))), "{late:?}");
}

/// Makes every append of `event_type` fail inside the database, as a lost connection at
/// commit would, until the returned statement drops the trigger.
async fn fail_appends_of(app: &TestApp, event_type: &str) -> String {
    sqlx::query(&format!(
        "CREATE FUNCTION refuse_append() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF NEW.event_type = '{event_type}' THEN RAISE EXCEPTION 'injected fault'; END IF;
           RETURN NEW;
         END $$"
    ))
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_append BEFORE INSERT ON events
           FOR EACH ROW EXECUTE FUNCTION refuse_append()",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    "DROP TRIGGER refuse_append ON events".to_owned()
}

#[tokio::test]
async fn an_accept_whose_outcome_is_unknown_keeps_the_listing_and_the_saga_finishes_it() {
    let app = quick_saga().await;
    let deal = app.pending_deal("Piano", 300_000).await;
    let undo = fail_appends_of(&app, "PurchaseRequestAccepted").await;
    let failed = app
        .act(&deal.seller, &deal.placed.request_id, "accept")
        .await;
    assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let listing = app.events_of("listing", &deal.listing).await;
    assert_eq!(
        listing,
        ["ListingRegistered", "ListingReserved"],
        "an error that proves nothing must not give the listing back"
    );
    sqlx::query(&undo).execute(&app.db.pool).await.unwrap();
    // The saga's repair finishes the accept from what the log says.
    app.wait_event(
        "purchase_request",
        &deal.placed.request_id,
        "PurchaseRequestAccepted",
    )
    .await;
    assert_eq!(
        app.events_of("listing", &deal.listing).await,
        ["ListingRegistered", "ListingReserved"]
    );
}

#[tokio::test]
async fn a_saga_deciding_on_a_stale_view_cannot_accept_a_second_request_for_a_listing() {
    // No workers: nothing rejects the other request, as a saga far behind would not have.
    let mut settings = test_settings();
    settings.role = ServeRole::Api;
    let app = spawn_app_with(settings).await;
    let deal = app.pending_deal("Sofa", 80_000).await;
    let other = app.signup("other").await;
    let second = app.place_request(&other, &deal.listing).await;
    app.act_ok(&deal.seller, &deal.placed.request_id, "accept", "accepted")
        .await;

    let write = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let stale = SagaCommand::AcceptRequest {
        request_id: second.request_id.parse().unwrap(),
    };
    let outcome = stale.execute(&write).await;
    assert!(matches!(outcome, Err(Failure::Moot(_))), "{outcome:?}");
    assert_eq!(
        app.events_of("purchase_request", &second.request_id).await,
        ["PurchaseRequested"],
        "the second request was accepted too"
    );
    assert_eq!(
        app.events_of("listing", &deal.listing).await,
        ["ListingRegistered", "ListingReserved"]
    );
}
