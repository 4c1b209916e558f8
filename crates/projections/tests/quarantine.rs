//! Poison events are held aside, not a stall: the runner holds a poison's stream from it
//! on, applies every other stream, and applies the held events in order, once, when a
//! retry finds them readable.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use carrot_projections::log::quarantine;
use carrot_projections::log::subscriber::ApplyError;
use carrot_projections::postgres::Db;
use carrot_projections::testing::{append_raw, test_database};
use carrot_projections::{Runner, RunnerConfig, StoredEvent, Subscriber};
use serde_json::json;
use sqlx::PgConnection;

/// The only event this subscriber can read.
#[derive(serde::Deserialize)]
enum Known {
    Happened { n: i64 },
}

/// Records each event it applies, in the order it applies them; fails on any payload it
/// cannot read, as a real view does.
struct Strict;

#[async_trait]
impl Subscriber for Strict {
    fn name(&self) -> &'static str {
        "strict"
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for event in events {
            let Known::Happened { n } =
                event.decode().map_err(|e| ApplyError::payload(event, e))?;
            sqlx::query("INSERT INTO applied (stream, sequence, n) VALUES ($1, $2, $3)")
                .bind(&event.aggregate_id)
                .bind(event.sequence)
                .bind(n)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

async fn schema(pool: &Db) {
    for statement in [
        "CREATE SCHEMA strict",
        "CREATE TABLE strict.applied (ord bigserial PRIMARY KEY, stream text NOT NULL,
                                      sequence bigint NOT NULL, n bigint NOT NULL,
                                      UNIQUE (stream, sequence))",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

fn runner(pool: &Db) -> Runner {
    Runner::new(
        pool.clone(),
        Arc::new(Strict),
        RunnerConfig {
            batch_size: 4,
            poll_interval: Duration::from_millis(20),
            ..RunnerConfig::default()
        },
    )
}

/// Each stream's sequences in the order they were applied.
async fn applied(pool: &Db, stream: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT sequence FROM strict.applied WHERE stream = $1 ORDER BY ord")
        .bind(stream)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Mends event `sequence` of stream `a` into one the subscriber reads.
async fn mend(pool: &Db, sequence: i64) {
    sqlx::query("UPDATE events SET payload = $2 WHERE aggregate_id = 'a' AND sequence = $1")
        .bind(sequence)
        .bind(json!({"Happened": {"n": sequence}}))
        .execute(pool)
        .await
        .unwrap();
}

/// `(sequence, error)` of each held event, in log order.
async fn held(pool: &Db) -> Vec<(i64, Option<String>, i32)> {
    quarantine::list(pool, "strict", 100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.sequence, e.error, e.attempts))
        .collect()
}

#[tokio::test]
async fn a_poison_holds_its_stream_from_it_on_and_every_other_stream_goes_on() {
    let db = test_database().await;
    schema(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    // Two streams, interleaved; the second event of `a` is one this code cannot read.
    for seq in 1..=4 {
        let a = if seq == 2 {
            json!({"Disputed": {"n": seq}})
        } else {
            json!({"Happened": {"n": seq}})
        };
        append_raw(&mut conn, "test", "a", seq, a).await.unwrap();
        append_raw(&mut conn, "test", "b", seq, json!({"Happened": {"n": seq}}))
            .await
            .unwrap();
    }
    let runner = runner(&db.pool);
    runner.catch_up().await.unwrap();

    assert_eq!(applied(&db.pool, "b").await, [1, 2, 3, 4], "b goes on");
    assert_eq!(applied(&db.pool, "a").await, [1], "a stops at its poison");
    let holding = held(&db.pool).await;
    assert_eq!(holding.len(), 3, "the poison and the two events behind it");
    assert_eq!(holding[0].0, 2);
    assert!(holding[0]
        .1
        .as_deref()
        .is_some_and(|e| e.contains("Disputed")));
    assert_eq!((holding[1].0, holding[1].1.as_deref()), (3, None));
    assert_eq!((holding[2].0, holding[2].1.as_deref()), (4, None));

    // Later events of a held stream are held too; other streams still go on.
    append_raw(&mut conn, "test", "a", 5, json!({"Happened": {"n": 5}}))
        .await
        .unwrap();
    append_raw(&mut conn, "test", "b", 5, json!({"Happened": {"n": 5}}))
        .await
        .unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(applied(&db.pool, "b").await, [1, 2, 3, 4, 5]);
    assert_eq!(applied(&db.pool, "a").await, [1]);
    assert_eq!(held(&db.pool).await.len(), 4);

    // A retry while it is still unreadable: held, tried once more, nothing applied.
    assert_eq!(
        quarantine::request_retry(&db.pool, "strict").await.unwrap(),
        4
    );
    runner.run_once().await.unwrap();
    let holding = held(&db.pool).await;
    assert_eq!(holding.len(), 4);
    assert!(holding.iter().all(|(_, _, attempts)| *attempts == 2));
    assert_eq!(applied(&db.pool, "a").await, [1]);

    // Mended (or new code deployed): a retry applies the whole stream, in order, once.
    mend(&db.pool, 2).await;
    quarantine::request_retry(&db.pool, "strict").await.unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(applied(&db.pool, "a").await, [1, 2, 3, 4, 5]);
    assert!(held(&db.pool).await.is_empty());
    // Nothing is applied twice afterwards, and new events of `a` flow again.
    append_raw(&mut conn, "test", "a", 6, json!({"Happened": {"n": 6}}))
        .await
        .unwrap();
    quarantine::request_retry(&db.pool, "strict").await.unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(applied(&db.pool, "a").await, [1, 2, 3, 4, 5, 6]);
    let counted: i64 = sqlx::query_scalar(
        "SELECT events_applied FROM subscription_checkpoints WHERE subscriber = 'strict'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(counted, 11, "each of the 11 events counted once");
}

#[tokio::test]
async fn a_second_poison_further_down_a_stream_keeps_the_rest_held_after_applying_what_precedes_it()
{
    let db = test_database().await;
    schema(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    for seq in 1..=5 {
        let payload = if seq == 2 || seq == 4 {
            json!({"Disputed": {"n": seq}})
        } else {
            json!({"Happened": {"n": seq}})
        };
        append_raw(&mut conn, "test", "a", seq, payload)
            .await
            .unwrap();
    }
    let runner = runner(&db.pool);
    runner.catch_up().await.unwrap();
    assert_eq!(applied(&db.pool, "a").await, [1]);

    // Only the first poison is mended: what precedes the second is applied, the rest stays.
    mend(&db.pool, 2).await;
    quarantine::request_retry(&db.pool, "strict").await.unwrap();
    runner.catch_up().await.unwrap();
    assert_eq!(applied(&db.pool, "a").await, [1, 2, 3]);
    let holding = held(&db.pool).await;
    assert_eq!(holding.len(), 2);
    assert_eq!(holding[0].0, 4);
    assert!(holding[0].1.is_some(), "the new poison carries its error");
    assert_eq!((holding[1].0, holding[1].1.as_deref()), (5, None));
}

#[tokio::test]
async fn a_runner_tries_held_events_at_its_first_batch_whatever_an_older_one_found() {
    let db = test_database().await;
    schema(&db.pool).await;
    let mut conn = db.pool.acquire().await.unwrap();
    append_raw(&mut conn, "test", "a", 1, json!({"Disputed": {"n": 1}}))
        .await
        .unwrap();
    let old = runner(&db.pool);
    old.catch_up().await.unwrap();
    assert_eq!(held(&db.pool).await.len(), 1);
    // The older runner's own first try cannot use up the newer one's: after the fix is
    // deployed (here: the row mended), a runner just started applies it unasked.
    mend_stream_a(&db.pool).await;
    old.catch_up().await.unwrap();
    assert_eq!(
        held(&db.pool).await.len(),
        1,
        "the old runner does not try again unasked"
    );
    let new = runner(&db.pool);
    new.run_once().await.unwrap();
    assert!(held(&db.pool).await.is_empty());
    assert_eq!(applied(&db.pool, "a").await, [1]);
}

async fn mend_stream_a(pool: &Db) {
    mend(pool, 1).await;
}
