//! Reconciliation with the gateway's own list of movements, black-box where it can be: a
//! capture the log never heard of is recorded and refunded, a refund the log missed is
//! recorded without moving money again, and what cannot be repaired is a mismatch an
//! operator sees (admin API and `/metrics`), found once however often a pass runs.

use std::sync::Arc;

use carrot_domain::payment::{
    CaptureOrder, Payment, PaymentCommand, PaymentGateway, TransferOrder,
};
use carrot_domain::{Money, PaymentId, RequestId, SystemClock, Trade, UserId};
use carrot_projections::settlement::{ReconcileConfig, Reconciler, Report};
use carrot_projections::write_side::WriteSide;
use chrono::Utc;

use crate::helpers::{spawn_app, Deal, TestApp};

/// A reconciler over the app's database and gateway that checks up to now.
fn reconciler(app: &TestApp) -> Reconciler {
    let write = Arc::new(WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    ));
    Reconciler::new(
        app.db.pool.clone(),
        write,
        app.gateway.clone(),
        Arc::new(SystemClock),
        ReconcileConfig {
            grace: chrono::Duration::zero(),
            ..ReconcileConfig::default()
        },
    )
}

async fn pass(app: &TestApp) -> Report {
    let since = Utc::now() - chrono::Duration::minutes(5);
    reconciler(app).run_once(since).await.unwrap()
}

fn refund_of(payment: &str, to: &str, krw: i64) -> TransferOrder {
    TransferOrder {
        idempotency_key: format!("refund:{payment}"),
        recipient: to.parse().unwrap(),
        amount: Money::krw(krw),
    }
}

#[tokio::test]
async fn a_clean_log_matches_every_movement() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Desk", 40_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.wait_payment(&buyer, &placed.payment_id, "paid_out")
        .await;
    app.settle().await;
    let report = pass(&app).await;
    assert_eq!(
        (report.movements, report.matched, report.mismatches),
        (2, 2, 0),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_capture_the_log_never_heard_of_is_recorded_and_refunded_to_its_buyer() {
    let app = spawn_app().await;
    let buyer = app.signup("buyer").await;
    // What a crash in an old version, or a restore from last night's backup, leaves: money
    // taken under a key of Carrot's, and nothing in the log.
    let payment = PaymentId::new();
    app.gateway
        .capture(CaptureOrder {
            idempotency_key: format!("capture:{payment}"),
            buyer_id: buyer.id.parse().unwrap(),
            amount: Money::krw(12_000),
        })
        .await
        .unwrap();
    let report = pass(&app).await;
    assert_eq!((report.repaired, report.mismatches), (1, 0), "{report:?}");
    let events = app
        .wait_event("payment", &payment.to_string(), "PaymentRefunded")
        .await;
    assert_eq!(events, ["PaymentCaptureDiscovered", "PaymentRefunded"]);
    let ledger = app.gateway.ledger();
    let refund = &ledger[&format!("refund:{payment}")];
    assert_eq!(
        (refund.party.to_string(), refund.amount.as_krw()),
        (buyer.id.clone(), 12_000)
    );
    // The buyer sees it; the next pass finds everything in order.
    let seen = app
        .wait_payment(&buyer, &payment.to_string(), "refunded")
        .await;
    assert_eq!(seen["amount"], 12_000);
    app.settle().await;
    let again = pass(&app).await;
    assert_eq!(
        (again.matched, again.repaired, again.mismatches),
        (2, 0, 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_refund_the_log_missed_is_recorded_without_moving_money_again() {
    let app = spawn_app().await;
    let Deal { buyer, placed, .. } = app.pending_deal("Chair", 30_000).await;
    app.wait_payment(&buyer, &placed.payment_id, "captured")
        .await;
    // The refund went through and its answer never reached the log.
    app.gateway
        .refund(refund_of(&placed.payment_id, &buyer.id, 30_000))
        .await
        .unwrap();
    let report = pass(&app).await;
    assert_eq!((report.repaired, report.mismatches), (1, 0), "{report:?}");
    app.wait_event("payment", &placed.payment_id, "PaymentRefunded")
        .await;
    let ledger = app.gateway.ledger();
    let refund = &ledger[&format!("refund:{}", placed.payment_id)];
    assert_eq!(refund.calls, 2, "asked again under its key");
    assert_eq!(refund.amount.as_krw(), 30_000, "and moved once");
}

#[tokio::test]
async fn what_cannot_be_repaired_is_a_mismatch_an_operator_sees_once() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Bike", 90_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    // Paid out as well, by someone else's hand: money left escrow both ways.
    app.gateway
        .payout(TransferOrder {
            idempotency_key: format!("payout:{}", placed.payment_id),
            recipient: seller.id.parse().unwrap(),
            amount: Money::krw(90_000),
        })
        .await
        .unwrap();
    // And the log holds a capture this gateway never made (another gateway's, say).
    let elsewhere = Arc::new(carrot_api::payment::SimulatedGateway::default());
    let write = WriteSide::new(app.db.pool.clone(), Arc::new(SystemClock), elsewhere);
    let stray = PaymentId::new();
    let trade = Trade {
        request_id: RequestId::new(),
        buyer_id: buyer.id.parse::<UserId>().unwrap(),
        ..Trade::default()
    };
    for command in [
        PaymentCommand::StartCapture {
            payment_id: stray,
            trade,
            amount: Money::krw(5_000),
        },
        PaymentCommand::CapturePayment {
            payment_id: stray,
            first_attempt: true,
        },
    ] {
        write
            .execute::<Payment>(&stray.to_string(), command, Default::default())
            .await
            .unwrap();
    }
    app.settle().await;
    let first = pass(&app).await;
    assert_eq!(first.mismatches, 2, "{first:?}");
    let second = pass(&app).await;
    assert_eq!(second.mismatches, 2, "found again: {second:?}");

    let admin = app.make_admin(&app.signup("operator").await).await;
    let listed = app.read(&admin, "/admin/reconciliation/mismatches").await;
    let keys: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{listed}");
    assert!(keys.contains(&format!("payout:{}", placed.payment_id).as_str()));
    assert!(keys.contains(&format!("capture:{stray}").as_str()));
    let both_ways = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "payout")
        .unwrap();
    assert!(
        both_ways["detail"].as_str().unwrap().contains("both ways"),
        "{both_ways}"
    );
    let metrics = app.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|l| l == "carrot_reconciliation_mismatches 2"),
        "{metrics}"
    );
    // Nobody else may see them.
    let response = app
        .get(&buyer, "/admin/reconciliation/mismatches")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_operator_resolves_a_mismatch_saying_how_and_only_open_ones_are_listed() {
    let app = spawn_app().await;
    let buyer = app.signup("buyer").await;
    // A refund at the gateway for a payment the log never had: nothing to repair.
    let stray = PaymentId::new();
    app.gateway
        .refund(refund_of(&stray.to_string(), &buyer.id, 7_000))
        .await
        .unwrap();
    assert_eq!(pass(&app).await.mismatches, 1);
    let admin = app.make_admin(&app.signup("operator").await).await;
    let key = format!("refund:{stray}");
    let path = format!("/admin/reconciliation/mismatches/{key}/resolve");
    let blank = app
        .post(&admin, &path)
        .json(&serde_json::json!({"resolution": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(blank.status(), 422, "an operator says what was done");
    let by_buyer = app
        .post(&buyer, &path)
        .json(&serde_json::json!({"resolution": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_buyer.status(), 403);
    let done = app
        .post(&admin, &path)
        .json(&serde_json::json!({"resolution": "a test refund made by hand, ticket 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let listed = app.read(&admin, "/admin/reconciliation/mismatches").await;
    assert_eq!(listed["items"], serde_json::json!([]));
    let again = app
        .post(&admin, &path)
        .json(&serde_json::json!({"resolution": "twice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "only an open mismatch can be resolved");
    let (by, how): (uuid::Uuid, String) = sqlx::query_as(
        "SELECT resolved_by, resolution FROM settlement.mismatches WHERE idempotency_key = $1",
    )
    .bind(&key)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(by.to_string(), admin.id);
    assert_eq!(how, "a test refund made by hand, ticket 1");
    // A later pass finds the same difference again and leaves it resolved.
    assert_eq!(pass(&app).await.mismatches, 1);
    let listed = app.read(&admin, "/admin/reconciliation/mismatches").await;
    assert_eq!(listed["items"], serde_json::json!([]));
}
