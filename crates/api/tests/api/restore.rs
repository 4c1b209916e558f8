//! The log's order survives backup, restore and moving to another server (issue 15): a
//! database dumped with `pg_dump` and restored into another cluster (behind the log, far
//! ahead of it, restored twice, two processes starting at once) keeps working: new events
//! order after old ones, the views equal a rebuild, the saga settles the old escrow.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use carrot_api::payment::{SimulatedGateway, SimulationProfile};
use carrot_projections::postgres::embedded::{Binaries, EmbeddedPostgres};
use carrot_projections::postgres::log_order::LogOrder;
use carrot_projections::postgres::{connect, ensure_database, prepare, Schema};
use carrot_projections::replay;
use carrot_projections::testing::TestDatabase;

use crate::helpers::{spawn_app, spawn_app_on, test_settings, throwaway_cluster, Deal, TestApp};

/// A cluster of its own, started from the same template as the test cluster (so its
/// transaction counter starts behind a log written there), with `burn` transaction ids
/// used up first (a busy cluster, far ahead).
async fn new_cluster(burn: u32) -> (EmbeddedPostgres, String) {
    let cluster = throwaway_cluster().await;
    ensure_database(&cluster.url("postgres"), "carrot")
        .await
        .unwrap();
    if burn > 0 {
        let pool = connect(&cluster.url("postgres"), 1).await.unwrap();
        // Each subtransaction that writes takes an id of its own.
        sqlx::query(&format!(
            "DO $$ BEGIN
                 CREATE TEMP TABLE burn (i int);
                 FOR i IN 1..{burn} LOOP
                     BEGIN INSERT INTO burn VALUES (i); EXCEPTION WHEN OTHERS THEN NULL; END;
                 END LOOP;
             END $$"
        ))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }
    let url = cluster.url("carrot");
    (cluster, url)
}

/// A directory for this test's dumps.
fn scratch() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("carrot-restore-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tool(name: &str) -> PathBuf {
    Binaries::locate().unwrap().path(name)
}

/// `pg_dump -Fc` of the database at `url`, as a nightly backup does.
fn dump(url: &str, to: &Path) {
    let out = Command::new(tool("pg_dump"))
        .args(["-Fc", "-f"])
        .arg(to)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_dump: {out:?}");
}

/// `pg_restore` of `file` into the (empty) database at `url`.
fn restore(file: &Path, url: &str) {
    let out = Command::new(tool("pg_restore"))
        .args([
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            url,
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {out:?}");
}

/// The app over the restored database at `url`, prepared as `carrot serve` prepares it.
async fn serve_restored(url: &str) -> (TestApp, LogOrder) {
    let pool = connect(url, 20).await.unwrap();
    let order = prepare(&pool, Schema::Migrate).await.unwrap();
    let gateway = Arc::new(SimulatedGateway::new(SimulationProfile::default()));
    let mut settings = test_settings();
    settings.gateway = gateway.clone();
    let db = TestDatabase {
        pool,
        name: "carrot".into(),
        url: url.to_owned(),
    };
    (spawn_app_on(settings, gateway, db).await, order)
}

async fn moves(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM log_moves")
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

/// The trades of the issue: completed, rejected, cancelled, accepted and open, requested
/// and open. Returns the last two.
async fn trades(app: &TestApp) -> (Deal, Deal) {
    let (accepted, requested, _) = trades_with_token(app).await;
    (accepted, requested)
}

/// [`trades`], and the consistency token of the acceptance of the one left accepted.
async fn trades_with_token(app: &TestApp) -> (Deal, Deal, String) {
    let completed = app.pending_deal("Tent", 80_000).await;
    let rejected = app.pending_deal("Stove", 20_000).await;
    let cancelled = app.pending_deal("Lamp", 15_000).await;
    let accepted = app.pending_deal("Kettle", 9_000).await;
    let requested = app.pending_deal("Chair", 30_000).await;
    let mut token = String::new();
    for (deal, who, action, status) in [
        (&completed, "seller", "accept", "accepted"),
        (&completed, "buyer", "complete", "completed"),
        (&rejected, "seller", "reject", "rejected"),
        (&cancelled, "buyer", "cancel", "cancelled"),
        (&accepted, "seller", "accept", "accepted"),
    ] {
        let user = if who == "seller" {
            &deal.seller
        } else {
            &deal.buyer
        };
        token = app
            .act_ok(user, &deal.placed.request_id, action, status)
            .await;
    }
    app.settle().await;
    (accepted, requested, token)
}

/// New commands on restored aggregates: the accepted request completed (its escrow paid
/// out by the saga), the open one accepted. Then every check of the issue.
async fn carry_on(app: &TestApp, accepted: &Deal, requested: &Deal, restored_head: (String, i64)) {
    let buyer = app.log_in(&accepted.buyer).await;
    let seller = app.log_in(&requested.seller).await;
    app.act_ok(&buyer, &accepted.placed.request_id, "complete", "completed")
        .await;
    app.act_ok(&seller, &requested.placed.request_id, "accept", "accepted")
        .await;
    app.wait_payment(&buyer, &accepted.placed.payment_id, "paid_out")
        .await;
    app.settle().await;

    // Every event written here orders after every restored one.
    let (head_tx, head_pos) = restored_head;
    let misplaced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
          WHERE global_position > $2 AND transaction_id <= $1::text::xid8",
    )
    .bind(&head_tx)
    .bind(head_pos)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(misplaced, 0, "no new event sorts before the restored log");
    // In log order, each aggregate's events keep their sequence.
    let out_of_sequence: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (
             SELECT sequence, lag(sequence) OVER (PARTITION BY aggregate_type, aggregate_id
                                                 ORDER BY transaction_id, global_position) AS before
               FROM events) s
          WHERE before IS NOT NULL AND sequence <= before",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(out_of_sequence, 0);
    // Every view equals a rebuild from the log.
    for view in carrot_projections::views::all() {
        let (_, differences) = replay::verify(&app.db.pool, view.as_ref(), &mut |_| {})
            .await
            .unwrap();
        assert!(differences.is_empty(), "{}: {differences:?}", view.name());
    }
    // The trade's timeline saw the completion made after the move.
    let request = app
        .read(&buyer, &format!("/requests/{}", accepted.placed.request_id))
        .await;
    let events: Vec<&str> = request["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|entry| entry["event"].as_str())
        .collect();
    assert!(events.contains(&"PurchaseRequestCompleted"), "{request}");
}

async fn head(app: &TestApp) -> (String, i64) {
    sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_behind_the_log_and_then_again_new_events_order_after_old_ones() {
    let dir = scratch();
    let original = spawn_app().await;
    let (accepted, requested, token) = trades_with_token(&original).await;
    let head_a = head(&original).await;
    dump(&original.db.url, &dir.join("a.dump"));

    // Restored into a new cluster whose counter stands behind the log: re-based, once.
    let (_b, url_b) = new_cluster(0).await;
    restore(&dir.join("a.dump"), &url_b);
    let (b, order) = serve_restored(&url_b).await;
    assert!(matches!(order, LogOrder::Rebased { .. }), "{order:?}");
    assert_eq!(moves(&b).await, 1);
    // A consistency token issued before the move keeps its meaning.
    let listing = b
        .listing_after(&accepted.seller, &accepted.listing, &token)
        .await;
    assert_eq!(listing["status"], "reserved");
    carry_on(&b, &accepted, &requested, head_a).await;
    let again = prepare(&b.db.pool, Schema::Require).await.unwrap();
    assert_eq!(again, LogOrder::Safe, "a second start changes nothing");

    // A second restore on top of the first: re-based again, from where the first left it.
    let head_b = head(&b).await;
    dump(&url_b, &dir.join("b.dump"));
    let (_c, url_c) = new_cluster(0).await;
    restore(&dir.join("b.dump"), &url_c);
    let (c, order) = serve_restored(&url_c).await;
    assert!(matches!(order, LogOrder::Rebased { .. }), "{order:?}");
    assert_eq!(moves(&c).await, 2);
    let third = c.pending_deal("Desk", 50_000).await;
    c.act_ok(
        &third.seller,
        &third.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    c.wait_payment(&third.buyer, &third.placed.payment_id, "refunded")
        .await;
    let later: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE global_position > $2
            AND transaction_id <= $1::text::xid8",
    )
    .bind(&head_b.0)
    .bind(head_b.1)
    .fetch_one(&c.db.pool)
    .await
    .unwrap();
    assert_eq!(later, 0, "after the second move too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_into_a_busy_cluster_far_ahead_the_order_is_already_safe() {
    let dir = scratch();
    let original = spawn_app().await;
    let (accepted, requested) = trades(&original).await;
    let head_a = head(&original).await;
    dump(&original.db.url, &dir.join("a.dump"));
    let (_d, url_d) = new_cluster(50_000).await;
    restore(&dir.join("a.dump"), &url_d);
    let (d, order) = serve_restored(&url_d).await;
    assert_eq!(order, LogOrder::Safe);
    assert_eq!(moves(&d).await, 0);
    carry_on(&d, &accepted, &requested, head_a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_starting_at_once_on_a_restored_database_re_base_it_once() {
    let dir = scratch();
    let original = spawn_app().await;
    let (accepted, requested) = trades(&original).await;
    let head_a = head(&original).await;
    dump(&original.db.url, &dir.join("a.dump"));
    let (_e, url_e) = new_cluster(0).await;
    restore(&dir.join("a.dump"), &url_e);
    let starts: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_carrot"))
                .arg("migrate")
                .env("DATABASE_URL", &url_e)
                .env("CARROT_LOG", "warn")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = starts
        .into_iter()
        .map(|child| child.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(out.status.success(), "{out:?}");
    }
    let warned = outputs
        .iter()
        .filter(|o| {
            String::from_utf8_lossy(&o.stderr).contains("new events are ordered after its head")
        })
        .count();
    assert_eq!(warned, 1, "one re-bases, loudly; the other finds it done");
    let (e, order) = serve_restored(&url_e).await;
    assert_eq!(order, LogOrder::Safe);
    assert_eq!(moves(&e).await, 1);
    carry_on(&e, &accepted, &requested, head_a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_cannot_re_base_refuses_to_start_and_says_what_to_run() {
    let dir = scratch();
    let original = spawn_app().await;
    trades(&original).await;
    dump(&original.db.url, &dir.join("a.dump"));
    let (cluster, url) = new_cluster(0).await;
    restore(&dir.join("a.dump"), &url);
    // An application role with every right on the data, but not the owner of its functions.
    let owner = connect(&url, 1).await.unwrap();
    for statement in [
        "CREATE ROLE carrot_app LOGIN PASSWORD 'app-password'",
        "GRANT USAGE, CREATE ON SCHEMA public TO carrot_app",
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO carrot_app",
        "GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO carrot_app",
    ] {
        sqlx::query(statement).execute(&owner).await.unwrap();
    }
    let as_app = format!(
        "postgres://carrot_app:app-password@127.0.0.1:{}/carrot",
        cluster.port()
    );
    let refused = Command::new(env!("CARGO_BIN_EXE_carrot"))
        .arg("migrate")
        .env("DATABASE_URL", &as_app)
        .env("CARROT_LOG", "error")
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("behind the event log's head") && said.contains("as the database's owner"),
        "{said}"
    );
    let untouched: i64 = sqlx::query_scalar("SELECT count(*) FROM log_moves")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(untouched, 0);
    // The owner's `carrot migrate` re-bases; the application role then starts.
    let migrated = Command::new(env!("CARGO_BIN_EXE_carrot"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("CARROT_LOG", "error")
        .output()
        .unwrap();
    assert!(migrated.status.success(), "{migrated:?}");
    let app_pool = connect(&as_app, 1).await.unwrap();
    assert_eq!(
        prepare(&app_pool, Schema::Require).await.unwrap(),
        LogOrder::Safe
    );
}
