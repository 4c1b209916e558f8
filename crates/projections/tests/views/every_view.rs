use async_trait::async_trait;
use carrot_projections::log::runner::{Batch, RunnerError};
use carrot_projections::log::subscriber::ApplyError;
use carrot_projections::postgres::Db;
use carrot_projections::settlement::{SettlementSaga, SETTLEMENT};
use carrot_projections::testing::test_database;
use carrot_projections::views::catalog::CatalogProjection;
use carrot_projections::{views, Runner, RunnerConfig, StoredEvent, Subscriber};
use serde_json::{json, Value};
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

use super::market::*;
use super::support::*;

// ---------------------------------------------------------------------------------------
// 6-8. Every view: idempotent, batch-size independent, and a new one catches up alone.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn applying_the_same_events_again_changes_no_view() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let events = whole_log(pool).await;
    assert_eq!(events.len(), log.total());

    for view in views::all() {
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, view.name()).await;
        assert!(
            before.values().all(|rows| rows != &json!([])),
            "{}: every table has rows: {before:?}",
            view.name()
        );
        apply_directly(pool, view.as_ref(), &events).await;
        assert_eq!(
            snapshot(pool, view.name()).await,
            before,
            "{}: all again",
            view.name()
        );
        for event in &events {
            apply_directly(pool, view.as_ref(), std::slice::from_ref(event)).await;
        }
        assert_eq!(
            snapshot(pool, view.name()).await,
            before,
            "{}: each again",
            view.name()
        );
    }
}

#[tokio::test]
async fn one_batch_of_many_events_gives_the_same_rows_as_one_event_per_batch() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = busy_log(&mut log).await;
    let total = log.total();

    for view in views::all() {
        let name = view.name();
        let big = RunnerConfig {
            batch_size: 1000,
            ..RunnerConfig::default()
        };
        let runner = Runner::new(pool.clone(), view.clone(), big);
        runner.register().await.expect("registering");
        assert!(
            matches!(runner.run_once().await, Ok(Batch::Applied { events, .. }) if events == total),
            "{name}: the whole log in one batch"
        );
        let one_batch = snapshot(pool, name).await;

        // Start the view over, empty and at the origin, and apply one event per batch.
        for table in one_batch.keys() {
            sqlx::query(&format!(r#"TRUNCATE "{name}"."{table}""#))
                .execute(pool)
                .await
                .expect("emptying the view");
        }
        sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
            .bind(name)
            .execute(pool)
            .await
            .expect("forgetting the checkpoint");
        let single = RunnerConfig {
            batch_size: 1,
            ..RunnerConfig::default()
        };
        assert_eq!(catch_up_with(pool, view.clone(), single).await, total);
        assert_eq!(snapshot(pool, name).await, one_batch, "{name}");
    }

    // And the rows are right, not just equal: the chair went through registered, edited,
    // reserved, released and edited again, all in the one batch.
    let chair = listing(pool, m.listings[3]).await;
    assert_eq!(
        (chair.title.as_str(), chair.description.as_str()),
        ("Oak chair", "Solid oak, one scratch")
    );
    assert_eq!((chair.price, chair.status.as_str()), (8_000, "available"));
    assert_eq!((chair.created_at, chair.updated_at), (at(3), at(28)));
    let r6 = request(pool, &m.r[5], m.other).await.expect("visible");
    assert_eq!(
        (r6.status.as_str(), r6.payment.status.as_str()),
        ("cancelled", "refunded")
    );
}

/// The saga's state and decisions, without the outbox's clock columns.
async fn saga_snapshot(pool: &Db) -> BTreeMap<String, Value> {
    let mut out = snapshot(pool, SETTLEMENT).await;
    let outbox: Value = sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(jsonb_build_array(command_id, request_id, command, status)
                                   ORDER BY command_id), '[]')
           FROM settlement.outbox",
    )
    .fetch_one(pool)
    .await
    .expect("reading the outbox");
    out.insert("outbox".into(), outbox);
    out
}

#[tokio::test]
async fn the_saga_decides_the_same_in_one_batch_as_one_event_per_batch() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = busy_log(&mut log).await;
    let total = log.total();
    let saga: Arc<dyn Subscriber> = Arc::new(SettlementSaga::default());
    let big = RunnerConfig {
        batch_size: 1000,
        ..RunnerConfig::default()
    };
    assert_eq!(catch_up_with(pool, saga.clone(), big).await, total);
    let one_batch = saga_snapshot(pool).await;

    for table in ["trades", "listings", "payments", "deadlines", "outbox"] {
        sqlx::query(&format!("TRUNCATE settlement.{table}"))
            .execute(pool)
            .await
            .expect("emptying the saga");
    }
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
        .bind(SETTLEMENT)
        .execute(pool)
        .await
        .expect("forgetting the checkpoint");
    let single = RunnerConfig {
        batch_size: 1,
        ..RunnerConfig::default()
    };
    assert_eq!(catch_up_with(pool, saga, single).await, total);
    assert_eq!(saga_snapshot(pool).await, one_batch);

    // And the decisions are right: r3 pending on the lamp when r1 was accepted is
    // rejected; the completed bicycle is paid out; r4 (cancelled) refunded.
    let decided: Vec<String> =
        sqlx::query_scalar("SELECT command_id FROM settlement.outbox ORDER BY command_id")
            .fetch_all(pool)
            .await
            .expect("reading the outbox");
    let r = |i: usize| m.r[i].trade.request_id;
    let p = |i: usize| m.r[i].payment_id;
    for expected in [
        format!("reject:{}", r(2)),
        format!("payout:{}", p(1)),
        format!("refund:{}", p(3)),
    ] {
        assert!(decided.contains(&expected), "{expected} in {decided:?}");
    }
    // Deadlines left: the accepted lamp (r1) completes automatically one day; nothing
    // else waits, the accept and the sale having cleared their listing checks.
    let deadlines: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT request_id, kind FROM settlement.deadlines ORDER BY 1, 2")
            .fetch_all(pool)
            .await
            .expect("reading the deadlines");
    assert!(
        deadlines.contains(&(r(0).as_uuid(), "complete".to_owned())),
        "{deadlines:?}"
    );
    assert!(
        !deadlines.iter().any(|(_, kind)| kind == "check_listing"),
        "{deadlines:?}"
    );
}

/// A projection that did not exist when the log was written: counts events by aggregate
/// type in a table of its own schema (named unqualified, as views do).
struct EventCounts;

#[async_trait]
impl Subscriber for EventCounts {
    fn name(&self) -> &'static str {
        "event_counts"
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for event in events {
            sqlx::query(
                "INSERT INTO counts (aggregate_type, events) VALUES ($1, 1)
                 ON CONFLICT (aggregate_type) DO UPDATE SET events = counts.events + 1",
            )
            .bind(&event.aggregate_type)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_added_later_starts_from_the_origin_without_touching_the_others() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let total = log.total();
    assert_eq!(catch_up(pool, CatalogProjection).await, total);
    let catalog_checkpoint = checkpoint_row(pool, "catalog").await;
    let catalog_rows = snapshot(pool, "catalog").await;

    sqlx::query("CREATE SCHEMA event_counts")
        .execute(pool)
        .await
        .expect("a schema");
    sqlx::query(
        "CREATE TABLE event_counts.counts (aggregate_type text PRIMARY KEY, events bigint NOT NULL)",
    )
    .execute(pool)
    .await
    .expect("a table");
    let runner = Runner::new(
        pool.clone(),
        Arc::new(EventCounts),
        RunnerConfig {
            batch_size: 4,
            ..RunnerConfig::default()
        },
    );
    runner.register().await.expect("registering");
    let origin = checkpoint_row(pool, "event_counts").await;
    assert_eq!((origin.0.as_str(), origin.1, origin.2), ("0", 0, 0));
    assert_eq!(runner.catch_up().await.expect("catching up"), total);

    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_type, events FROM event_counts.counts ORDER BY 1")
            .fetch_all(pool)
            .await
            .expect("counts");
    let expected: Vec<(String, i64)> = log
        .appended
        .iter()
        .map(|(kind, n)| ((*kind).to_owned(), *n))
        .collect();
    assert_eq!(counts, expected, "every event since the origin");
    let last = whole_log(pool).await.last().map(|e| e.checkpoint);
    let caught_up = checkpoint_row(pool, "event_counts").await;
    assert_eq!(
        Some(format!("{}.{}", caught_up.0, caught_up.1)),
        last.map(|c| c.to_string())
    );
    assert_eq!(caught_up.2, total as i64);
    assert_eq!(checkpoint_row(pool, "catalog").await, catalog_checkpoint);
    assert_eq!(snapshot(pool, "catalog").await, catalog_rows);
}

// ---------------------------------------------------------------------------------------
// A lost checkpoint row: a view replays from the origin and never goes back in time; the
// saga, whose reactions move money, is not replayed over its state.
// ---------------------------------------------------------------------------------------

async fn forget_checkpoint(pool: &Db, subscriber: &str) {
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
        .bind(subscriber)
        .execute(pool)
        .await
        .expect("forgetting the checkpoint");
}

#[tokio::test]
async fn replaying_any_prefix_of_the_log_over_a_live_view_changes_nothing() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let events = whole_log(pool).await;
    for view in views::all() {
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, view.name()).await;
        // A registration applied again alone once took its listing back to how it was
        // registered, until the rest of its events were applied again.
        for (i, event) in events.iter().enumerate() {
            apply_directly(pool, view.as_ref(), std::slice::from_ref(event)).await;
            assert_eq!(
                snapshot(pool, view.name()).await,
                before,
                "{}: event {i} again",
                view.name()
            );
        }
    }
}

#[tokio::test]
async fn a_view_whose_checkpoint_row_is_lost_replays_from_the_origin_and_never_goes_back() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let total = log.total();
    let one_at_a_time = RunnerConfig {
        batch_size: 1,
        ..RunnerConfig::default()
    };
    for view in views::all() {
        let name = view.name();
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, name).await;
        let head = checkpoint_row(pool, name).await;
        forget_checkpoint(pool, name).await;

        let runner = Runner::new(pool.clone(), view.clone(), one_at_a_time);
        let mut applied = 0;
        loop {
            match runner.run_once().await.expect("a batch") {
                Batch::Applied { events, .. } => applied += events,
                Batch::Idle => break,
                Batch::Busy => panic!("{name}: a lost row is not a row another worker holds"),
            }
            assert!(applied <= total, "{name}: {applied} events");
            assert_eq!(
                snapshot(pool, name).await,
                before,
                "{name}: after {applied} events again"
            );
        }
        assert_eq!(applied, total, "{name}: replayed from the origin");
        let again = checkpoint_row(pool, name).await;
        assert_eq!(
            (again.0, again.1),
            (head.0, head.1),
            "{name}: back at the head"
        );
    }
}

#[tokio::test]
async fn the_saga_whose_checkpoint_row_is_lost_is_not_replayed_over_its_state() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let saga: Arc<dyn Subscriber> = Arc::new(SettlementSaga::default());
    catch_up_with(pool, saga.clone(), RunnerConfig::default()).await;
    let before = saga_snapshot(pool).await;
    forget_checkpoint(pool, SETTLEMENT).await;

    let runner = Runner::new(pool.clone(), saga, RunnerConfig::default());
    let error = runner.run_once().await.expect_err("not re-created");
    assert!(matches!(error, RunnerError::Missing(_)), "{error}");
    assert_eq!(saga_snapshot(pool).await, before, "nothing decided again");
    let row: Option<i64> =
        sqlx::query_scalar("SELECT 1::bigint FROM subscription_checkpoints WHERE subscriber = $1")
            .bind(SETTLEMENT)
            .fetch_optional(pool)
            .await
            .expect("reading checkpoints");
    assert_eq!(row, None);
}
