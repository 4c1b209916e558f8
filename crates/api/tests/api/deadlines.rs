//! The saga's deadlines and repairs, with a clock the test moves: requests expire, accepted
//! ones complete themselves, and captures whose answer was lost are reconciled.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use carrot_api::payment::{SimulatedGateway, SimulationProfile};
use carrot_domain::listing::{Listing, ListingCommand};
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, PaymentGateway, Receipt, TransferOrder,
};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestCommand};
use carrot_domain::{FixedClock, RequestId, UserId};
use carrot_projections::write_side::WriteSide;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    assert_problem, spawn_app_over, spawn_app_with, test_settings, Deal, TestApp,
};

/// An app whose aggregates and saga timer read `clock`.
async fn app_at(clock: &FixedClock) -> TestApp {
    let mut settings = test_settings();
    settings.clock = Arc::new(clock.clone());
    settings.payment_timeout = Duration::from_millis(150);
    spawn_app_with(settings).await
}

fn clock() -> FixedClock {
    FixedClock::at(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

#[tokio::test]
async fn a_request_nobody_answers_for_48_hours_expires_and_is_refunded() {
    let clock = clock();
    let app = app_at(&clock).await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Kayak", 300_000).await;
    app.wait_payment(&buyer, &placed.payment_id, "captured")
        .await;

    clock.advance(chrono::Duration::hours(47));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.events_of("purchase_request", &placed.request_id).await,
        ["PurchaseRequested"],
        "not yet"
    );
    clock.advance(chrono::Duration::hours(1));
    app.wait_event(
        "purchase_request",
        &placed.request_id,
        "PurchaseRequestExpired",
    )
    .await;
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    let response = app.act(&seller, &placed.request_id, "accept").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
}

#[tokio::test]
async fn an_accepted_request_nobody_completes_in_7_days_completes_itself_and_pays_out() {
    let clock = clock();
    let app = app_at(&clock).await;
    let Deal {
        seller,
        listing,
        placed,
        ..
    } = app.pending_deal("Sofa", 120_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    // Accepted: the 48 h expiry no longer applies.
    clock.advance(chrono::Duration::hours(49));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        app.events_of("purchase_request", &placed.request_id).await,
        ["PurchaseRequested", "PurchaseRequestAccepted"]
    );
    clock.advance(chrono::Duration::days(6));
    app.wait_event(
        "purchase_request",
        &placed.request_id,
        "PurchaseRequestCompleted",
    )
    .await;
    let completed = app
        .event_payload(
            "purchase_request",
            &placed.request_id,
            "PurchaseRequestCompleted",
        )
        .await;
    assert_eq!(completed["automatic"], true);
    app.wait_payment(&seller, &placed.payment_id, "paid_out")
        .await;
    app.wait_event("listing", &listing, "ListingSold").await;
}

#[tokio::test]
async fn a_capture_whose_answer_was_lost_is_reconciled_then_abandoned_and_refunded() {
    let clock = clock();
    let app = app_at(&clock).await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Guitar", 90_000).await;
    // The gateway charges, but answers after the caller gave up.
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    app.gateway.set_profile(SimulationProfile::default());
    let payment_id = only_payment(&app).await;
    app.wait_event("payment", &payment_id, "PaymentCaptureTimedOut")
        .await;

    // The reconciler asks the gateway about the same key: the buyer was charged.
    clock.advance(chrono::Duration::seconds(11));
    app.wait_event("payment", &payment_id, "PaymentCaptured")
        .await;
    // The buyer was told it failed, and no request was recorded: the money goes back.
    clock.advance(chrono::Duration::seconds(61));
    let payment = app.wait_payment(&buyer, &payment_id, "refunded").await;
    let request_id = payment["request_id"].as_str().unwrap();
    assert_eq!(
        app.events_of("purchase_request", request_id).await,
        ["PurchaseRequestAbandoned"]
    );
    let ledger = app.gateway.ledger();
    assert_eq!(
        ledger[&format!("capture:{payment_id}")].calls,
        1,
        "never charged twice"
    );
    assert!(ledger[&format!("refund:{payment_id}")].outcome.is_ok());
}

/// A gateway whose captures never arrive: the call hangs until the caller's timeout.
struct LostCaptures(Arc<SimulatedGateway>);

#[async_trait]
impl PaymentGateway for LostCaptures {
    async fn capture(&self, _: CaptureOrder) -> Result<Receipt, GatewayError> {
        std::future::pending().await
    }
    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.0.refund(order).await
    }
    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.0.payout(order).await
    }
    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        self.0.resolve_capture(key).await
    }
}

#[tokio::test]
async fn a_capture_that_never_reached_the_gateway_is_voided_and_the_request_recorded_failed() {
    let clock = clock();
    let gateway = Arc::new(SimulatedGateway::new(SimulationProfile::default()));
    let mut settings = test_settings();
    settings.clock = Arc::new(clock.clone());
    settings.payment_timeout = Duration::from_millis(150);
    let app = spawn_app_over(
        settings,
        gateway.clone(),
        Arc::new(LostCaptures(gateway.clone())),
    )
    .await;

    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Lamp", 9_000).await;
    let response = app.request_listing(&buyer, &listing, None).await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    let payment_id = only_payment(&app).await;

    clock.advance(chrono::Duration::seconds(11));
    app.wait_event("payment", &payment_id, "PaymentDeclined")
        .await;
    clock.advance(chrono::Duration::seconds(61));
    let payment = app.wait_payment(&buyer, &payment_id, "failed").await;
    let request_id = payment["request_id"].as_str().unwrap();
    app.wait_event(
        "purchase_request",
        request_id,
        "PurchaseRequestPaymentFailed",
    )
    .await;
    // Nobody was charged, and a capture arriving late with that key would be declined.
    let ledger = gateway.ledger();
    assert_eq!(ledger[&format!("capture:{payment_id}")].operation, "void");
}

async fn only_payment(app: &TestApp) -> String {
    sqlx::query_scalar("SELECT aggregate_id FROM events WHERE aggregate_type = 'payment' LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// The write side as a flow that died half-way would have used it.
fn write_side(app: &TestApp, clock: &FixedClock) -> WriteSide {
    WriteSide::new(
        app.db.pool.clone(),
        Arc::new(clock.clone()),
        app.gateway.clone(),
    )
}

#[tokio::test]
async fn a_reservation_whose_accept_died_half_way_is_finished_by_the_saga() {
    let clock = clock();
    let app = app_at(&clock).await;
    let Deal {
        listing, placed, ..
    } = app.pending_deal("Oven", 60_000).await;
    // The accept flow reserved the listing, then died before accepting the request.
    let request_id: RequestId = placed.request_id.parse().unwrap();
    write_side(&app, &clock)
        .execute::<Listing>(
            &listing,
            ListingCommand::ReserveListing { request_id },
            Default::default(),
        )
        .await
        .unwrap();
    clock.advance(chrono::Duration::seconds(11));
    app.wait_event(
        "purchase_request",
        &placed.request_id,
        "PurchaseRequestAccepted",
    )
    .await;
    let accepted: Value = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE aggregate_id = $1 AND event_type = 'PurchaseRequestAccepted'",
    )
    .bind(&placed.request_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(accepted["actor"], "system");
}

#[tokio::test]
async fn a_listing_still_held_by_a_cancelled_request_is_released_by_the_saga() {
    let clock = clock();
    let app = app_at(&clock).await;
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Chair", 15_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    // The cancel flow cancelled the request, then died before releasing the listing.
    let buyer_id: UserId = buyer.id.parse().unwrap();
    write_side(&app, &clock)
        .execute::<PurchaseRequest>(
            &placed.request_id,
            PurchaseRequestCommand::CancelRequest { actor: buyer_id },
            Default::default(),
        )
        .await
        .unwrap();
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    assert!(!app
        .events_of("listing", &listing)
        .await
        .contains(&"ListingReleased".to_owned()));
    clock.advance(chrono::Duration::seconds(11));
    app.wait_event("listing", &listing, "ListingReleased").await;
    // Available again for the next buyer.
    let next = app.signup("next").await;
    app.place_request(&next, &listing).await;
}
