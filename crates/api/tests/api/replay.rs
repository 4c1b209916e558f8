//! Rebuilding views from the log: a rebuild equals the live view, one done while requests
//! keep arriving loses nothing, a worker that was down catches up, and the CLI reports and
//! repairs a view that went wrong.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use carrot_api::startup::ServeRole;
use carrot_api::workers;
use carrot_domain::SystemClock;
use carrot_projections::replay::{self, Progress};
use carrot_projections::write_side::WriteSide;
use carrot_projections::Shutdown;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{carrot_cli, spawn_app, spawn_app_with, test_settings, Deal, TestApp};

/// One trade through HTTP, ending one of several ways (picked by `n`).
async fn trade(app: &TestApp, n: usize) {
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Thing", 1_000 + n as i64).await;
    let id = &placed.request_id;
    match n % 7 {
        0 => {
            app.act_ok(&seller, id, "reject", "rejected").await;
        }
        1 | 2 => {
            app.act_ok(&seller, id, "accept", "accepted").await;
            app.act_ok(&buyer, id, "complete", "completed").await;
        }
        3 => {
            app.act_ok(&seller, id, "accept", "accepted").await;
            app.act_ok(&seller, id, "cancel", "cancelled").await;
        }
        4 => {
            app.act_ok(&buyer, id, "cancel", "cancelled").await;
        }
        5 => {
            let response = app
                .delete(&seller, &format!("/listings/{listing}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        _ => {
            let edit = json!({"title": "Renamed thing", "description": "now with a case"});
            let response = app
                .patch(&seller, &format!("/listings/{listing}"))
                .json(&edit)
                .send()
                .await
                .unwrap();
            // Pending requests do not stop an edit; leave this one open.
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
}

async fn trades(app: &TestApp, range: std::ops::Range<usize>) {
    join_all(range.map(|n| trade(app, n))).await;
}

/// Every view rebuilt aside and compared with the live one: the differences.
async fn differences(app: &TestApp) -> Vec<String> {
    let mut found = Vec::new();
    for view in carrot_projections::views::all() {
        let (rebuilt, differences) = replay::verify(&app.db.pool, view.as_ref(), &mut |_| {})
            .await
            .unwrap();
        assert!(rebuilt.events > 0);
        found.extend(
            differences
                .iter()
                .map(|d| format!("{} {:?} {}", d.table, d.side, d.row)),
        );
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_rebuilt_from_a_random_workload_equal_the_live_ones() {
    let app = spawn_app().await;
    trades(&app, 0..28).await;
    app.settle().await;
    assert_eq!(differences(&app).await, Vec::<String>::new());
}

/// Every index and constraint of the views' schemas: schema, name, definition.
async fn indexes(app: &TestApp) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "WITH views(name) AS (VALUES ('catalog'), ('payments'), ('mypage'), ('timeline'),
                                     ('notifications'))
         SELECT schemaname::text, indexname::text, indexdef FROM pg_indexes
          WHERE schemaname IN (SELECT name FROM views)
         UNION ALL
         SELECT n.nspname::text, k.conname::text, pg_get_constraintdef(k.oid)
           FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
          WHERE n.nspname IN (SELECT name FROM views)
          ORDER BY 1, 2, 3",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuilding_every_view_while_trades_keep_arriving_loses_nothing() {
    let app = Arc::new(spawn_app().await);
    trades(&app, 0..14).await;
    let indexed = indexes(&app).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                trades(&app, n..n + 4).await;
                n += 4;
            }
            n - 100
        })
    };
    let mut progressed = 0;
    for view in carrot_projections::views::all() {
        let rebuilt = replay::rebuild(&app.db.pool, view.as_ref(), &mut |p: Progress| {
            progressed += p.applied.min(1)
        })
        .await
        .unwrap();
        assert!(rebuilt.events > 0, "{}", rebuilt.view);
    }
    stop.store(true, Ordering::Relaxed);
    let during = load.await.unwrap();
    assert!(during > 0, "trades kept arriving during the rebuilds");
    assert!(progressed > 0);
    app.settle().await;
    assert_eq!(differences(&app).await, Vec::<String>::new());
    // Everything the trades did is there: every listing in the catalog.
    let listings: i64 = sqlx::query_scalar("SELECT count(*) FROM catalog.listings")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(listings as usize, 14 + during);
    // Every index is back under its own name, those built after the fill included.
    assert_eq!(indexes(&app).await, indexed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_that_was_down_catches_up_and_settles_every_trade() {
    let mut settings = test_settings();
    settings.role = ServeRole::Api;
    let app = spawn_app_with(settings).await;
    trades(&app, 0..14).await;
    // No worker ran: the views know nothing yet, and no money has moved.
    let buyer_view: i64 = sqlx::query_scalar("SELECT count(*) FROM mypage.requests")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(buyer_view, 0);
    assert!(app.gateway_calls("refund").is_empty());

    let (_stop, shutdown) = Shutdown::new();
    let write = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    workers::spawn(
        &app.db.pool,
        Arc::new(write),
        app.gateway.clone(),
        Arc::new(SystemClock),
        test_settings().workers,
        &shutdown,
    )
    .await;
    app.settle().await;
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM mypage.requests")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(requests, 14);
    // Rejected, cancelled and withdrawn trades were refunded; completed ones paid out.
    assert_eq!(app.gateway_calls("refund").len(), 2 + 2 + 2 + 2);
    assert_eq!(app.gateway_calls("payout").len(), 4);
    assert_eq!(differences(&app).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_finds_a_view_gone_wrong_and_a_replay_repairs_it() {
    let app = spawn_app().await;
    trades(&app, 0..7).await;
    app.settle().await;
    let verified = carrot_cli(&["replay", "--verify"], &app.db.url);
    assert!(verified.status.success(), "{verified:?}");
    assert!(String::from_utf8_lossy(&verified.stdout).contains("no differences"));

    sqlx::query("UPDATE mypage.requests SET price = 1")
        .execute(&app.db.pool)
        .await
        .unwrap();
    let verified = carrot_cli(&["replay", "--verify", "mypage"], &app.db.url);
    assert_eq!(verified.status.code(), Some(1));
    let report = String::from_utf8_lossy(&verified.stdout);
    assert!(report.contains("only in the live view"), "{report}");
    assert!(report.contains("only in the rebuild"), "{report}");

    let replayed = carrot_cli(&["replay", "mypage"], &app.db.url);
    assert!(replayed.status.success(), "{replayed:?}");
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("rebuilt and swapped in"));
    let verified = carrot_cli(&["replay", "--verify", "mypage"], &app.db.url);
    assert!(verified.status.success(), "{verified:?}");
}

#[tokio::test]
async fn the_cli_prints_a_trades_events_in_order_for_people_and_machines() {
    let app = spawn_app().await;
    let Deal { seller, placed, .. } = app.pending_deal("Radio", 12_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    app.wait_payment(&seller, &placed.payment_id, "refunded")
        .await;
    let printed = carrot_cli(&["events", "--request", &placed.request_id], &app.db.url);
    assert!(printed.status.success(), "{printed:?}");
    let text = String::from_utf8_lossy(&printed.stdout);
    let kinds: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    assert_eq!(
        kinds,
        [
            "PaymentCaptureStarted",
            "PaymentCaptured",
            "PurchaseRequested",
            "PurchaseRequestRejected",
            "PaymentRefunded"
        ]
    );
    let json = carrot_cli(
        &[
            "events",
            "--aggregate",
            &format!("payment/{}", placed.payment_id),
            "--json",
        ],
        &app.db.url,
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["event_type"], "PaymentRefunded");
    assert_eq!(lines[2]["metadata"]["actor"], "system");
    let missing = carrot_cli(&["events", "--aggregate", "listing/nope"], &app.db.url);
    assert!(!missing.status.success());
}

#[tokio::test]
async fn two_rebuilds_of_one_view_at_once_run_one_after_the_other_never_together() {
    let app = spawn_app().await;
    trades(&app, 0..20).await;
    app.settle().await;
    let views = carrot_projections::views::all();
    let mypage = views.iter().find(|v| v.name() == "mypage").unwrap();
    let (mut quiet, mut silent) = (|_| {}, |_| {});
    let (first, second) = tokio::join!(
        replay::rebuild(&app.db.pool, mypage.as_ref(), &mut quiet),
        replay::rebuild(&app.db.pool, mypage.as_ref(), &mut silent),
    );
    // Either one held the view and the other was refused, plainly, changing nothing, or
    // the first was done before the second began; never both at once.
    let refused = [&first, &second]
        .iter()
        .filter(|r| matches!(r, Err(replay::ReplayError::Busy("mypage"))))
        .count();
    let done = [&first, &second].iter().filter(|r| r.is_ok()).count();
    assert!(
        (done, refused) == (1, 1) || (done, refused) == (2, 0),
        "{first:?} / {second:?}"
    );
    assert!(differences(&app).await.is_empty());
    // While a rebuild holds the view (its lock held here, deterministically), another is
    // refused; once it is released, the next one runs.
    let mut holder = app.db.pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('carrot_replay:mypage', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let busy = replay::rebuild(&app.db.pool, mypage.as_ref(), &mut |_| {}).await;
    assert!(
        matches!(busy, Err(replay::ReplayError::Busy("mypage"))),
        "{busy:?}"
    );
    sqlx::query("SELECT pg_advisory_unlock(hashtextextended('carrot_replay:mypage', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);
    replay::rebuild(&app.db.pool, mypage.as_ref(), &mut |_| {})
        .await
        .unwrap();
    assert!(differences(&app).await.is_empty());
    let cli = carrot_cli(&["replay", "settlement"], &app.db.url);
    assert!(!cli.status.success());
    let said = String::from_utf8_lossy(&cli.stderr);
    assert!(
        said.contains("settlement cannot be rebuilt by replay"),
        "{said}"
    );
}

#[tokio::test]
async fn the_replay_engine_refuses_the_saga_and_leaves_its_outbox_alone() {
    let app = spawn_app().await;
    trades(&app, 0..4).await;
    app.settle().await;
    let outbox = |app: &TestApp| {
        let pool = app.db.pool.clone();
        async move {
            let rows: Vec<(String, String)> =
                sqlx::query_as("SELECT command_id, status FROM settlement.outbox ORDER BY 1")
                    .fetch_all(&pool)
                    .await
                    .unwrap();
            rows
        }
    };
    let before = outbox(&app).await;
    assert!(!before.is_empty());
    let saga = carrot_projections::settlement::SettlementSaga::default();
    let refused = replay::rebuild(&app.db.pool, &saga, &mut |_| {}).await;
    assert!(
        matches!(
            refused,
            Err(replay::ReplayError::NotRebuildable {
                view: "settlement",
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(replay::verify(&app.db.pool, &saga, &mut |_| {})
        .await
        .is_err());
    assert_eq!(outbox(&app).await, before, "nothing touched");
    let shadows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'settlement\\_\\_%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(shadows, 0);
}
