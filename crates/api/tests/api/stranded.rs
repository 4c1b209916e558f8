//! Nothing leaves a payment held with nobody told (issue 14): a gateway down for half an
//! hour of simulated time, workers down for 8 days while parties act late, and two
//! dispatchers racing for one outbox row.

use std::sync::Arc;
use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_api::startup::{ServeRole, Settings};
use carrot_domain::{Clock, FixedClock, RequestId};
use carrot_projections::settlement::outbox::{self, Settlement};
use carrot_projections::settlement::{DispatcherConfig, SagaCommand};
use chrono::{TimeZone, Utc};
use reqwest::StatusCode;

use crate::helpers::{assert_problem, eventually, spawn_app_with, test_settings, Deal, TestApp};

fn clock() -> FixedClock {
    FixedClock::at(Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap())
}

fn settings_at(clock: &FixedClock) -> Settings {
    let mut settings = test_settings();
    settings.clock = Arc::new(clock.clone());
    settings.workers.dispatcher = DispatcherConfig {
        poll_interval: Duration::from_millis(50),
        alert_after: Duration::from_secs(600),
        ..DispatcherConfig::default()
    };
    settings
}

async fn dead_letters(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM settlement.outbox WHERE status = 'dead'")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gateway_down_for_30_minutes_buries_nothing_and_every_transfer_happens_once_after() {
    let clock = clock();
    let app = spawn_app_with(settings_at(&clock)).await;
    let rejected = app.pending_deal("Tent", 80_000).await;
    let cancelled = app.pending_deal("Stove", 20_000).await;
    let completed = app.pending_deal("Lamp", 15_000).await;
    app.act_ok(
        &completed.seller,
        &completed.placed.request_id,
        "accept",
        "accepted",
    )
    .await;

    // The gateway goes down, and the trades end.
    app.gateway.set_profile(SimulationProfile {
        down: true,
        ..SimulationProfile::default()
    });
    app.act_ok(
        &rejected.seller,
        &rejected.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    app.act_ok(
        &cancelled.buyer,
        &cancelled.placed.request_id,
        "cancel",
        "cancelled",
    )
    .await;
    app.act_ok(
        &completed.buyer,
        &completed.placed.request_id,
        "complete",
        "completed",
    )
    .await;

    // Thirty minutes pass, a minute at a time; the dispatcher keeps trying.
    for _ in 0..30 {
        clock.advance(chrono::Duration::minutes(1));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(dead_letters(&app).await, 0, "an outage buries nothing");
    let failing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM settlement.outbox
          WHERE (command_id LIKE 'refund:%' OR command_id LIKE 'payout:%')
            AND status = 'pending' AND failing_since IS NOT NULL",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(failing, 3, "all three wait, still pending");
    // Past the alert threshold: someone is told.
    let stuck = eventually("readiness to report the stuck transfers", || async {
        let ready = app.readiness().await;
        (ready["saga"]["stuck"].as_i64()? >= 3).then_some(ready)
    })
    .await;
    assert_eq!(stuck["saga"]["dead_letters"], 0);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("carrot_saga_commands_stuck 3"),
        "{metrics}"
    );

    // The gateway is back: with no operator action, each moves once. Simulated time goes
    // on meanwhile, ten times as fast as real time.
    app.gateway.set_profile(SimulationProfile::default());
    let ticking = clock.clone();
    let ticker = tokio::spawn(async move {
        loop {
            ticking.advance(chrono::Duration::seconds(1));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    for (deal, status) in [
        (&rejected, "refunded"),
        (&cancelled, "refunded"),
        (&completed, "paid_out"),
    ] {
        app.wait_payment(&deal.buyer, &deal.placed.payment_id, status)
            .await;
    }
    app.settle().await;
    let moved: Vec<_> = app
        .gateway
        .ledger()
        .into_iter()
        .filter(|(_, s)| s.operation != "capture" && s.outcome.is_ok())
        .map(|(key, _)| key)
        .collect();
    ticker.abort();
    assert_eq!(moved.len(), 3, "each transfer once: {moved:?}");
    assert_eq!(dead_letters(&app).await, 0);
    assert_eq!(app.readiness().await["saga"]["stuck"], 0);
}

#[tokio::test]
async fn with_the_workers_down_for_8_days_late_answers_are_refused_and_the_deadlines_decide() {
    let clock = clock();
    // The API alone: no timer, no saga, no views.
    let mut api = settings_at(&clock);
    api.role = ServeRole::Api;
    let app = spawn_app_with(api).await;
    let expired = app.pending_deal("Canoe", 250_000).await;
    let overdue = app.pending_deal("Paddle", 40_000).await;
    app.act_ok(
        &overdue.seller,
        &overdue.placed.request_id,
        "accept",
        "accepted",
    )
    .await;

    clock.advance(chrono::Duration::days(8));
    // The seller accepts a 8-day-old request; the buyer cancels a request that should have
    // completed a day ago. Neither may happen, whatever the timer did not do.
    let response = app
        .act(&expired.seller, &expired.placed.request_id, "accept")
        .await;
    assert_problem(response, StatusCode::CONFLICT, "deadline_passed").await;
    let response = app
        .act(&overdue.buyer, &overdue.placed.request_id, "cancel")
        .await;
    assert_problem(response, StatusCode::CONFLICT, "deadline_passed").await;
    assert_eq!(
        app.events_of("purchase_request", &expired.placed.request_id)
            .await,
        ["PurchaseRequested"]
    );

    // The workers come back: the deadlines say expired (refund) and completed (payout).
    let mut worker = settings_at(&clock);
    worker.role = ServeRole::Worker;
    let _worker = app.serve_also(worker).await;
    app.wait_event(
        "purchase_request",
        &expired.placed.request_id,
        "PurchaseRequestExpired",
    )
    .await;
    app.wait_event(
        "purchase_request",
        &overdue.placed.request_id,
        "PurchaseRequestCompleted",
    )
    .await;
    app.wait_event("payment", &expired.placed.payment_id, "PaymentRefunded")
        .await;
    app.wait_event("payment", &overdue.placed.payment_id, "PaymentPaidOut")
        .await;
    app.settle().await;
    for (deal, operation) in [(&expired, "refund"), (&overdue, "payout")] {
        let Deal { placed, .. } = deal;
        assert_eq!(
            app.gateway_calls(operation),
            [(format!("{operation}:{}", placed.payment_id), 1)],
            "{operation} once"
        );
    }
    assert!(app.gateway_calls("refund").len() + app.gateway_calls("payout").len() == 2);
}

#[tokio::test]
async fn a_dispatcher_whose_lease_ran_out_cannot_settle_the_row_another_now_holds() {
    let app = spawn_app_with({
        let mut s = test_settings();
        s.role = ServeRole::Api;
        s
    })
    .await;
    let command = SagaCommand::ExpireRequest {
        request_id: RequestId::new(),
    };
    let mut tx = app.db.pool.begin().await.unwrap();
    sqlx::query("SELECT set_config('search_path', 'settlement, public', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    outbox::enqueue(&mut tx, &command).await.unwrap();
    tx.commit().await.unwrap();

    let clock = clock();
    let lease = Duration::from_secs(30);
    let first = outbox::claim(&app.db.pool, clock.now(), 10, lease, SagaCommand::READABLE)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    // Its lease runs out mid-call; another dispatcher takes the row.
    clock.advance(chrono::Duration::seconds(31));
    let second = outbox::claim(&app.db.pool, clock.now(), 10, lease, SagaCommand::READABLE)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].lease, second[0].lease);
    // The first comes back late: it neither buries the row nor clears the live lease.
    let late = outbox::settle(
        &app.db.pool,
        &first[0],
        clock.now(),
        Settlement::Dead("late"),
    )
    .await
    .unwrap();
    assert!(!late, "a stale lease settles nothing");
    let held = outbox::settle(
        &app.db.pool,
        &second[0],
        clock.now(),
        Settlement::Done("applied"),
    )
    .await
    .unwrap();
    assert!(held);
    let (status, outcome): (String, Option<String>) =
        sqlx::query_as("SELECT status, outcome FROM settlement.outbox WHERE command_id = $1")
            .bind(command.id())
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), outcome.as_deref()),
        ("done", Some("applied"))
    );
}

#[tokio::test]
async fn a_command_of_a_newer_version_is_left_for_a_dispatcher_that_can_read_it() {
    let app = spawn_app_with({
        let mut s = test_settings();
        s.role = ServeRole::Api;
        s
    })
    .await;
    sqlx::query(
        "INSERT INTO settlement.outbox (command_id, request_id, command, version)
         VALUES ('future:1', gen_random_uuid(), '{\"command\": \"from_the_future\"}', $1)",
    )
    .bind(SagaCommand::READABLE + 1)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let leased = outbox::claim(
        &app.db.pool,
        clock().now(),
        10,
        Duration::from_secs(30),
        SagaCommand::READABLE,
    )
    .await
    .unwrap();
    assert!(leased.is_empty(), "left alone, not buried: {leased:?}");
    let status: String =
        sqlx::query_scalar("SELECT status FROM settlement.outbox WHERE command_id = 'future:1'")
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "pending");
}
