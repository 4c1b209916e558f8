//! The settlement saga's reactions, black-box: the money follows the trade. Every wait is
//! bounded (`eventually`, 15 s).

use std::sync::Arc;

use carrot_domain::payment::{Payment, PaymentCommand};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestCommand};
use carrot_domain::{ListingId, Money, PaymentId, Price, RequestId, SystemClock, Trade, UserId};
use carrot_projections::write_side::WriteSide;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, Deal, TestApp};

/// The gateway's settlement of `operation` for a payment: (recipient, amount, calls).
fn settled(app: &TestApp, operation: &str, payment_id: &str) -> (String, i64, u32) {
    let ledger = app.gateway.ledger();
    let entry = &ledger[&format!("{operation}:{payment_id}")];
    assert!(entry.outcome.is_ok(), "{entry:?}");
    (entry.party.to_string(), entry.amount.as_krw(), entry.calls)
}

#[tokio::test]
async fn a_rejected_request_is_refunded_to_the_buyer() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    let payment = app
        .wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    assert!(payment["settled_at"].is_string());
    assert_eq!(
        settled(&app, "refund", &placed.payment_id),
        (buyer.id, 50_000, 1)
    );
}

#[tokio::test]
async fn a_completed_request_is_paid_out_to_the_seller() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.wait_payment(&seller, &placed.payment_id, "paid_out")
        .await;
    assert_eq!(
        settled(&app, "payout", &placed.payment_id),
        (seller.id, 50_000, 1)
    );
    assert!(!app
        .gateway
        .ledger()
        .contains_key(&format!("refund:{}", placed.payment_id)));
}

#[tokio::test]
async fn cancelled_requests_are_refunded_whether_pending_or_accepted() {
    let app = spawn_app().await;
    let Deal {
        buyer,
        placed: pending_one,
        ..
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&buyer, &pending_one.request_id, "cancel", "cancelled")
        .await;
    app.wait_payment(&buyer, &pending_one.payment_id, "refunded")
        .await;

    let Deal {
        seller,
        buyer,
        listing,
        placed: accepted,
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&seller, &accepted.request_id, "accept", "accepted")
        .await;
    let token = app
        .act_ok(&seller, &accepted.request_id, "cancel", "cancelled")
        .await;
    app.wait_payment(&buyer, &accepted.payment_id, "refunded")
        .await;
    let view = app.listing_after(&buyer, &listing, &token).await;
    assert_eq!(view["status"], "available");
}

#[tokio::test]
async fn accepting_one_request_rejects_and_refunds_every_other_pending_one() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer: _,
        listing,
        placed: chosen,
    } = app.pending_deal("Turntable", 50_000).await;
    let mut others = Vec::new();
    for _ in 0..3 {
        let buyer = app.signup("other").await;
        let placed = app.place_request(&buyer, &listing).await;
        others.push((buyer, placed));
    }
    app.act_ok(&seller, &chosen.request_id, "accept", "accepted")
        .await;
    for (buyer, placed) in &others {
        let rejected = app.wait_rejection(&placed.request_id).await;
        assert_eq!(rejected["reason"], "listing_reserved");
        assert_eq!(rejected["by"], "system");
        app.wait_payment(buyer, &placed.payment_id, "refunded")
            .await;
    }
    // The chosen one keeps its money in escrow.
    let held = app.payment(&seller, &chosen.payment_id).await;
    assert_eq!(held.json::<Value>().await.unwrap()["status"], "captured");
}

#[tokio::test]
async fn withdrawing_a_listing_rejects_and_refunds_its_pending_requests() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Turntable", 50_000).await;
    let response = app
        .delete(&seller, &format!("/listings/{listing}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    let rejected = app.wait_rejection(&placed.request_id).await;
    assert_eq!(rejected["reason"], "listing_withdrawn");
}

#[tokio::test]
async fn every_saga_event_carries_the_trade_as_correlation_and_the_system_as_actor() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    let meta: Value = sqlx::query_scalar(
        "SELECT metadata FROM events WHERE event_type = 'PaymentRefunded' AND aggregate_id = $1",
    )
    .bind(&placed.payment_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(meta["correlation_id"], placed.request_id.as_str());
    assert_eq!(meta["actor"], "system");
    assert_eq!(meta["command_id"], format!("refund:{}", placed.payment_id));
}

/// A request recorded on a listing that another request holds already (a race the place
/// flow's availability check cannot close) is rejected and refunded by the saga.
#[tokio::test]
async fn a_request_placed_on_a_listing_already_reserved_is_rejected_and_refunded() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer: _,
        listing,
        placed: chosen,
    } = app.pending_deal("Turntable", 50_000).await;
    app.act_ok(&seller, &chosen.request_id, "accept", "accepted")
        .await;
    // The late request, written straight through the write side as a racing placement
    // would have been.
    let late_buyer = app.signup("late").await;
    let write = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let trade = Trade {
        request_id: RequestId::new(),
        listing_id: listing.parse::<ListingId>().unwrap(),
        buyer_id: late_buyer.id.parse::<UserId>().unwrap(),
        seller_id: seller.id.parse::<UserId>().unwrap(),
    };
    let payment_id = PaymentId::new();
    let start = PaymentCommand::StartCapture {
        payment_id,
        trade,
        amount: Money::krw(50_000),
    };
    let capture = PaymentCommand::CapturePayment {
        payment_id,
        first_attempt: true,
    };
    for command in [start, capture] {
        write
            .execute::<Payment>(&payment_id.to_string(), command, Default::default())
            .await
            .unwrap();
    }
    let place = PurchaseRequestCommand::PlaceRequest {
        trade,
        price: Price::parse(50_000).unwrap(),
        payment_id,
    };
    write
        .execute::<PurchaseRequest>(&trade.request_id.to_string(), place, Default::default())
        .await
        .unwrap();
    let request_id = trade.request_id.to_string();
    let rejected = app.wait_rejection(&request_id).await;
    assert_eq!(rejected["reason"], "listing_reserved");
    app.wait_payment(&late_buyer, &payment_id.to_string(), "refunded")
        .await;
}

#[tokio::test]
async fn a_payment_is_visible_to_its_buyer_and_seller_only() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Turntable", 50_000).await;
    for user in [&buyer, &seller] {
        let payment = app.wait_payment(user, &placed.payment_id, "captured").await;
        assert_eq!(payment["amount"], 50_000);
        assert_eq!(payment["request_id"], placed.request_id.as_str());
        assert_eq!(payment["listing_id"], listing.as_str());
        assert_eq!(payment["buyer_id"], buyer.id.as_str());
    }
    let stranger = app.signup("stranger").await;
    let response = app.payment(&stranger, &placed.payment_id).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    for id in [uuid::Uuid::new_v4().to_string(), "nope".to_owned()] {
        let response = app.payment(&buyer, &id).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = app
        .client
        .get(app.url(&format!("/payments/{}", placed.payment_id)))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_read_with_the_command_token_sees_the_payment_at_once() {
    let app = spawn_app().await;
    let Deal {
        seller: _,
        buyer,
        placed,
        ..
    } = app.pending_deal("Turntable", 50_000).await;
    let response = app
        .get(&buyer, &format!("/payments/{}", placed.payment_id))
        .header("x-consistency-token", placed.token.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-consistency"], "consistent");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "captured");
}
