//! The subscription runner applies every event exactly once, however many run at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use carrot_projections::log::checkpoint::Paused;
use carrot_projections::log::runner::{Batch, RunnerError};
use carrot_projections::log::subscriber::ApplyError;
use carrot_projections::postgres::Db;
use carrot_projections::testing::{append_raw, test_database};
use carrot_projections::{
    Runner, RunnerConfig, SharedReads, Shutdown, StoredEvent, Subscriber, Wakeups,
};
use serde_json::json;
use sqlx::PgConnection;

/// Counts how many times each event was applied, in its own schema.
struct Counting;

#[async_trait]
impl Subscriber for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for event in events {
            sqlx::query(
                "INSERT INTO applied (global_position, times) VALUES ($1, 1)
                 ON CONFLICT (global_position) DO UPDATE SET times = applied.times + 1",
            )
            .bind(event.checkpoint.global_position)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

async fn counting_schema(pool: &Db) {
    sqlx::query("CREATE SCHEMA counting")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TABLE counting.applied (global_position bigint PRIMARY KEY, times int NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
}

fn small_batches() -> RunnerConfig {
    RunnerConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(20),
        ..RunnerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_on_one_subscriber_apply_every_event_exactly_once() {
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let (stop, shutdown) = Shutdown::new();
    let wakeups = Wakeups::listen(&db.pool);
    let runners: Vec<_> = (0..2)
        .map(|_| {
            let runner = Runner::new(db.pool.clone(), Arc::new(Counting), small_batches());
            tokio::spawn(runner.run(wakeups.clone(), shutdown.clone()))
        })
        .collect();

    // Appenders write while both runners run.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                let mut conn = pool.acquire().await.unwrap();
                for seq in 1..=150 {
                    append_raw(
                        &mut conn,
                        "test",
                        &format!("writer-{w}"),
                        seq,
                        json!({"Happened": {}}),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }

    // Bounded wait for the runners to get through all 600 events.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM counting.applied")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        if applied == 600 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.trigger();
    for r in runners {
        tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .unwrap()
            .unwrap();
    }

    let (count, max_times): (i64, Option<i32>) =
        sqlx::query_as("SELECT count(*), max(times) FROM counting.applied")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(count, 600, "every event applied");
    assert_eq!(max_times, Some(1), "no event applied twice");
    let recorded: i64 = sqlx::query_scalar(
        "SELECT events_applied FROM subscription_checkpoints WHERE subscriber = 'counting'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(recorded, 600);
}

#[tokio::test]
async fn a_runner_skips_a_batch_while_another_holds_the_checkpoint() {
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let runner = Runner::new(db.pool.clone(), Arc::new(Counting), small_batches());
    runner.register().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    append_raw(&mut conn, "test", "x", 1, json!({"Happened": {}}))
        .await
        .unwrap();

    let mut holder = db.pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM subscription_checkpoints WHERE subscriber = 'counting' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    assert_eq!(runner.run_once().await.unwrap(), Batch::Busy);
    holder.rollback().await.unwrap();

    assert_eq!(runner.catch_up().await.unwrap(), 1);
    assert_eq!(runner.run_once().await.unwrap(), Batch::Idle);
}

#[tokio::test]
async fn a_paused_subscriber_waits_without_holding_back_the_horizon_and_resumes() {
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let runner = Runner::new(db.pool.clone(), Arc::new(Counting), small_batches());
    runner.register().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    append_raw(&mut conn, "test", "x", 1, json!({"Happened": {}}))
        .await
        .unwrap();

    let paused = Paused::take(&db.pool, "counting").await.unwrap();
    assert_eq!(runner.run_once().await.unwrap(), Batch::Busy);
    // The pause holds no transaction id: nothing holds the log's horizon back.
    let writers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(writers, 0);
    paused.release().await;

    assert_eq!(runner.catch_up().await.unwrap(), 1);
}

#[tokio::test]
async fn a_failing_batch_changes_nothing_and_records_the_error() {
    struct Refusing;
    #[async_trait]
    impl Subscriber for Refusing {
        fn name(&self) -> &'static str {
            "counting"
        }
        async fn apply(
            &self,
            tx: &mut PgConnection,
            events: &[StoredEvent],
        ) -> Result<(), ApplyError> {
            Counting.apply(tx, events).await?;
            if events.iter().any(|e| e.sequence == 2) {
                sqlx::query("SELECT 1/0").execute(tx).await?;
            }
            Ok(())
        }
    }
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    for seq in 1..=3 {
        append_raw(&mut conn, "test", "x", seq, json!({"Happened": {}}))
            .await
            .unwrap();
    }
    let (stop, shutdown) = Shutdown::new();
    let runner = Runner::new(db.pool.clone(), Arc::new(Refusing), small_batches());
    let task = tokio::spawn(runner.run(Wakeups::none(), shutdown));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let error = loop {
        let error: Option<String> = sqlx::query_scalar(
            "SELECT last_error FROM subscription_checkpoints WHERE subscriber = 'counting'",
        )
        .fetch_optional(&db.pool)
        .await
        .unwrap()
        .flatten();
        if error.is_some() || tokio::time::Instant::now() > deadline {
            break error;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    stop.trigger();
    task.await.unwrap();
    assert!(error.is_some_and(|e| e.contains("division by zero")));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM counting.applied")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(applied, 0, "the whole batch rolled back");
}

async fn forget_checkpoint(pool: &Db, subscriber: &str) {
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
        .bind(subscriber)
        .execute(pool)
        .await
        .unwrap();
}

async fn has_checkpoint(pool: &Db, subscriber: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM subscription_checkpoints WHERE subscriber = $1)",
    )
    .bind(subscriber)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_lost_checkpoint_with_nothing_applied_yet_is_created_again_at_the_origin() {
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let runner = Runner::new(db.pool.clone(), Arc::new(Counting), small_batches());
    runner.register().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    for seq in 1..=3 {
        append_raw(&mut conn, "test", "x", seq, json!({"Happened": {}}))
            .await
            .unwrap();
    }
    forget_checkpoint(&db.pool, "counting").await;
    // It used to look like a row another worker holds: `Busy`, forever.
    assert!(matches!(
        runner.run_once().await.unwrap(),
        Batch::Applied { events: 3, .. }
    ));
    assert!(has_checkpoint(&db.pool, "counting").await);
}

#[tokio::test]
async fn a_lost_checkpoint_is_not_created_again_over_state_that_cannot_be_replayed() {
    let db = test_database().await;
    counting_schema(&db.pool).await;
    let runner = Runner::new(db.pool.clone(), Arc::new(Counting), small_batches());
    runner.register().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    for seq in 1..=3 {
        append_raw(&mut conn, "test", "x", seq, json!({"Happened": {}}))
            .await
            .unwrap();
    }
    assert_eq!(runner.catch_up().await.unwrap(), 3);
    forget_checkpoint(&db.pool, "counting").await;

    // Counting is not idempotent: replaying it from the origin would count twice. The
    // runner says so instead of reporting a busy row, at start-up and on every batch.
    for attempt in [runner.register().await, runner.run_once().await.map(|_| ())] {
        let error = attempt.expect_err("refused");
        assert!(matches!(error, RunnerError::Missing(_)), "{error}");
        assert!(error.to_string().contains("restore the row"), "{error}");
    }
    assert!(!has_checkpoint(&db.pool, "counting").await);
    let twice: i64 = sqlx::query_scalar("SELECT count(*) FROM counting.applied WHERE times > 1")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(twice, 0);
}

/// Records the order in which it applied each event, in the schema of its name.
struct Recording(&'static str);

#[async_trait]
impl Subscriber for Recording {
    fn name(&self) -> &'static str {
        self.0
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for event in events {
            sqlx::query("INSERT INTO applied (global_position) VALUES ($1)")
                .bind(event.checkpoint.global_position)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// How many batches took their events from a window another runner read.
fn window_reads() -> u64 {
    let text = carrot_projections::metrics::global().render(&|_| "");
    text.lines()
        .find_map(|l| l.strip_prefix("carrot_subscription_reads_total{from=\"window\"} "))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn runners_sharing_one_read_each_apply_the_whole_log_once_in_order() {
    let db = test_database().await;
    let names = ["first", "second", "third"];
    for name in names {
        sqlx::raw_sql(&format!(
            "CREATE SCHEMA {name};
             CREATE TABLE {name}.applied (id bigserial PRIMARY KEY,
                                          global_position bigint NOT NULL UNIQUE)"
        ))
        .execute(&db.pool)
        .await
        .unwrap();
    }
    let reads = SharedReads::new();
    let runners: Vec<Runner> = names
        .iter()
        .map(|name| {
            Runner::new(db.pool.clone(), Arc::new(Recording(name)), small_batches())
                .sharing(reads.clone())
        })
        .collect();
    let mut conn = db.pool.acquire().await.unwrap();
    for seq in 1..=10 {
        append_raw(&mut conn, "test", "early", seq, json!({"Happened": {}}))
            .await
            .unwrap();
    }
    // A write left open holds the horizon: what commits after it is not read yet.
    let mut open = db.pool.begin().await.unwrap();
    append_raw(&mut open, "test", "late", 1, json!({"Happened": {}}))
        .await
        .unwrap();
    for seq in 11..=15 {
        append_raw(&mut conn, "test", "early", seq, json!({"Happened": {}}))
            .await
            .unwrap();
    }
    let from_window = window_reads();
    for runner in &runners {
        assert_eq!(runner.catch_up().await.unwrap(), 10, "{}", runner.name());
    }
    // The first runner's two reads of the log (7 events, then 3) served the others' batches.
    assert_eq!(window_reads() - from_window, 4);

    open.commit().await.unwrap();
    for runner in &runners {
        assert_eq!(runner.catch_up().await.unwrap(), 6, "{}", runner.name());
    }
    let log: Vec<i64> = sqlx::query_scalar(
        "SELECT global_position FROM events ORDER BY transaction_id, global_position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(log.len(), 16);
    for name in names {
        let applied: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT global_position FROM {name}.applied ORDER BY id"
        ))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        assert_eq!(applied, log, "{name} applied the log once, in its order");
    }
}
