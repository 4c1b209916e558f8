//! The frozen corpus's writer: real trades through the API, ending every way a trade can
//! end, whose stored events become `crates/domain/corpus/events.jsonl`. The
//! corpus is never regenerated: `CARROT_WRITE_CORPUS=1` writes it when it does not exist,
//! and appends a run's events of each type or version the corpus lacks, when the code
//! writes one
//! (docs/DESIGN.md, "Changing an event"). Without the variable the test only checks that
//! the trades still produce every event type of every aggregate.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_domain::payment::{CaptureOrder, PaymentGateway};
use carrot_domain::schema;
use carrot_domain::{FixedClock, Money, PaymentId, SystemClock};
use carrot_projections::settlement::{DispatcherConfig, ReconcileConfig, Reconciler};
use carrot_projections::write_side::WriteSide;
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::dead_letters::{unreadable_letter, wait_dead};
use crate::helpers::{eventually, spawn_app_with, test_settings, Deal, TestApp, User};

/// Where the corpus lives, from this crate.
const CORPUS: &str = "../domain/corpus/events.jsonl";

/// An app on a clock the test moves, whose dispatcher gives up on a declined transfer fast.
async fn app_at(clock: &FixedClock) -> TestApp {
    let mut settings = test_settings();
    settings.clock = Arc::new(clock.clone());
    settings.payment_timeout = Duration::from_millis(150);
    settings.workers.dispatcher = DispatcherConfig {
        retry_base: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    spawn_app_with(settings).await
}

/// A listing edited once, requested, accepted, completed and paid out.
async fn completed(app: &TestApp) {
    let deal = app.pending_deal("Desk lamp", 15_000).await;
    let edit = json!({"title": "Brass desk lamp", "price": 14_000});
    let path = format!("/listings/{}", deal.listing);
    let response = app.patch(&deal.seller, &path).json(&edit).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK, "edit");
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = deal;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.wait_payment(&buyer, &placed.payment_id, "paid_out")
        .await;
}

/// Rejected with a reason; cancelled while pending; cancelled once accepted (the listing is
/// released); a listing withdrawn under a pending request.
async fn refunded_ways(app: &TestApp) {
    let rejected = app.pending_deal("Bookshelf", 30_000).await;
    let body = json!({"reason": "sold to a neighbour"});
    let path = format!("/requests/{}/reject", rejected.placed.request_id);
    let response = app.post(&rejected.seller, &path).json(&body).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK, "reject");

    let pending = app.pending_deal("Rice cooker", 40_000).await;
    app.act_ok(
        &pending.buyer,
        &pending.placed.request_id,
        "cancel",
        "cancelled",
    )
    .await;

    let accepted = app.pending_deal("Road bike", 250_000).await;
    let id = &accepted.placed.request_id;
    app.act_ok(&accepted.seller, id, "accept", "accepted").await;
    app.act_ok(&accepted.buyer, id, "cancel", "cancelled").await;

    let withdrawn = app.pending_deal("Monitor", 90_000).await;
    let path = format!("/listings/{}", withdrawn.listing);
    let response = app.delete(&withdrawn.seller, &path).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::OK, "withdraw");
    for deal in [rejected, pending, accepted, withdrawn] {
        app.wait_payment(&deal.buyer, &deal.placed.payment_id, "refunded")
            .await;
    }
}

/// A request nobody answers expires; an accepted one nobody completes completes itself.
async fn deadlines(app: &TestApp, clock: &FixedClock) {
    let expiring = app.pending_deal("Kayak", 300_000).await;
    let finishing = app.pending_deal("Sofa", 120_000).await;
    let id = &finishing.placed.request_id;
    app.act_ok(&finishing.seller, id, "accept", "accepted")
        .await;
    clock.advance(chrono::Duration::hours(49));
    app.wait_payment(&expiring.buyer, &expiring.placed.payment_id, "refunded")
        .await;
    clock.advance(chrono::Duration::days(7));
    app.wait_payment(&finishing.buyer, &finishing.placed.payment_id, "paid_out")
        .await;
}

/// The payment ids of the trades placed since `known`.
async fn new_payments(app: &TestApp, known: &BTreeSet<String>) -> Vec<String> {
    let all: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_id FROM events WHERE aggregate_type = 'payment'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    all.into_iter().filter(|id| !known.contains(id)).collect()
}

async fn payment_ids(app: &TestApp) -> BTreeSet<String> {
    new_payments(app, &BTreeSet::new())
        .await
        .into_iter()
        .collect()
}

/// A declined capture; a gateway down before charging; a charge whose answer was lost,
/// reconciled, then abandoned and refunded.
async fn payment_faults(app: &TestApp, clock: &FixedClock, seller: &User, buyer: &User) {
    let (listing, _) = app.register_listing(seller, "Guitar", 90_000).await;
    let cases = [
        (
            SimulationProfile {
                decline_rate: 1.0,
                ..SimulationProfile::default()
            },
            402,
        ),
        (
            SimulationProfile {
                down: true,
                ..SimulationProfile::default()
            },
            503,
        ),
        (
            SimulationProfile {
                latency_ms: 400..=400,
                ..SimulationProfile::default()
            },
            503,
        ),
    ];
    for (profile, status) in cases {
        let before = payment_ids(app).await;
        app.gateway.set_profile(profile);
        let response = app.request_listing(buyer, &listing, None).await;
        assert_eq!(response.status().as_u16(), status);
        app.gateway.set_profile(SimulationProfile::default());
        let payment = new_payments(app, &before).await.pop().unwrap();
        eventually("the capture's outcome to be recorded", || async {
            let events = app.events_of("payment", &payment).await;
            (events.len() > 1).then_some(())
        })
        .await;
    }
    // The lost answer: the reconciler finds the charge, then nobody recorded a request.
    clock.advance(chrono::Duration::seconds(11));
    tokio::time::sleep(Duration::from_millis(500)).await;
    clock.advance(chrono::Duration::seconds(61));
    eventually("the lost charge to be refunded", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE event_type = 'PurchaseRequestAbandoned'",
        )
        .fetch_one(&app.db.pool)
        .await
        .ok()?;
        (n == 1).then_some(())
    })
    .await;
}

/// A charge at the gateway the log never heard of: found by reconciliation, refunded.
async fn discovered(app: &TestApp, buyer: &User) {
    let payment = PaymentId::new();
    let order = CaptureOrder {
        idempotency_key: format!("capture:{payment}"),
        buyer_id: buyer.id.parse().unwrap(),
        amount: Money::krw(12_000),
    };
    app.gateway.capture(order).await.unwrap();
    // The gateway lists its movements on the wall clock, as reconciliation.rs reads them.
    let write = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let config = ReconcileConfig {
        grace: chrono::Duration::zero(),
        ..ReconcileConfig::default()
    };
    let reconciler = Reconciler::new(
        app.db.pool.clone(),
        Arc::new(write),
        app.gateway.clone(),
        Arc::new(SystemClock),
        config,
    );
    reconciler
        .run_once(Utc::now() - chrono::Duration::minutes(5))
        .await
        .unwrap();
    app.wait_event("payment", &payment.to_string(), "PaymentRefunded")
        .await;
}

/// Two declined refunds: one an operator sends again, one they settle outside Carrot; and
/// a dead letter an operator retries, then discards.
async fn operators(app: &TestApp) {
    let admin = app.make_admin(&app.signup("ops").await).await;
    let retried = app.pending_deal("Printer", 30_000).await;
    let settled = app.pending_deal("Scanner", 20_000).await;
    app.gateway.set_profile(SimulationProfile {
        transfer_decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    for deal in [&retried, &settled] {
        app.act_ok(&deal.seller, &deal.placed.request_id, "reject", "rejected")
            .await;
        let id = &deal.placed.payment_id;
        app.wait_event("payment", id, "PaymentTransferDeclined")
            .await;
    }
    app.gateway.set_profile(SimulationProfile::default());
    let path = format!(
        "/admin/payments/{}/retry-transfer",
        retried.placed.payment_id
    );
    let body = json!({"reason": "the buyer re-opened their account"});
    let response = app.post(&admin, &path).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let path = format!(
        "/admin/payments/{}/settle-outside",
        settled.placed.payment_id
    );
    let body = json!({"reference": "bank-2026-0042", "reason": "card closed; paid by bank"});
    let response = app.post(&admin, &path).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for deal in [&retried, &settled] {
        app.wait_payment(&deal.buyer, &deal.placed.payment_id, "refunded")
            .await;
    }
    // A saga command stored in a form nobody reads: put back in line, dead again, discarded.
    let letter = unreadable_letter(app, &settled.placed.request_id).await;
    let path = format!("/admin/dead-letters/{letter}/retry");
    let response = app.post(&admin, &path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    wait_dead(app, &letter).await;
    let path = format!("/admin/dead-letters/{letter}/discard");
    let body = json!({"reason": "written by a dispatcher since rolled back"});
    let response = app.post(&admin, &path).json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A person closes their account.
async fn closed(app: &TestApp) {
    let leaver = app.signup("leaver").await;
    let body = json!({"password": "correct horse battery"});
    let response = app.client.delete(app.url("/me")).bearer_auth(&leaver.token);
    let response = response.json(&body).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

/// The log as JSON lines, in log order, as `carrot events` would read it.
async fn stored_events(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT jsonb_build_object(
                    'aggregate_type', aggregate_type, 'aggregate_id', aggregate_id,
                    'sequence', sequence, 'event_type', event_type,
                    'event_version', event_version, 'payload', payload,
                    'metadata', metadata, 'recorded_at', recorded_at)
           FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

fn kinds(events: &[Value], with_version: bool) -> BTreeSet<String> {
    let kind = |e: &Value| {
        let base = format!(
            "{}/{}",
            e["aggregate_type"].as_str().unwrap_or_default(),
            e["event_type"].as_str().unwrap_or_default()
        );
        match with_version {
            true => format!("{base}@{}", e["event_version"].as_str().unwrap_or_default()),
            false => base,
        }
    };
    events.iter().map(kind).collect()
}

#[tokio::test]
async fn trades_ending_every_way_write_every_event_type_of_every_aggregate() {
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap());
    let app = app_at(&clock).await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    completed(&app).await;
    refunded_ways(&app).await;
    deadlines(&app, &clock).await;
    payment_faults(&app, &clock, &seller, &buyer).await;
    discovered(&app, &buyer).await;
    operators(&app).await;
    closed(&app).await;
    app.settle().await;

    let events = stored_events(&app).await;
    let expected: BTreeSet<String> = schema::EVENTS
        .iter()
        .flat_map(|(aggregate, types)| types.iter().map(move |(t, _)| format!("{aggregate}/{t}")))
        .collect();
    assert_eq!(
        kinds(&events, false),
        expected,
        "every event type, and no other"
    );

    if std::env::var_os("CARROT_WRITE_CORPUS").is_none() {
        return;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let frozen: Vec<Value> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let known = kinds(&frozen, true);
    // Only the kinds the corpus lacks (the events of the others are sealed now, with keys
    // that end with this test's database).
    let events: Vec<Value> = events
        .into_iter()
        .filter(|e| {
            frozen.is_empty()
                || !known.contains(
                    &kinds(std::slice::from_ref(e), true)
                        .into_iter()
                        .next()
                        .unwrap_or_default(),
                )
        })
        .collect();
    if events.is_empty() {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    for event in events {
        writeln!(file, "{event}").unwrap();
    }
}
