//! The ordered reader never returns an event past one whose transaction is still open,
//! and returns every committed event exactly once, in (transaction_id, global_position) order.

use std::time::Duration;

use carrot_projections::log::{read_after, Checkpoint, StoredEvent};
use carrot_projections::postgres::Db;
use carrot_projections::testing::{append_raw, test_database};
use serde_json::json;
use sqlx::{Connection, PgConnection};

/// Reads everything after `from` until the reader returns `want` events or the bound expires
/// (another transaction in the cluster may briefly hold the horizon).
async fn read_until(pool: &Db, from: Checkpoint, want: usize) -> Vec<StoredEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut at = from;
    loop {
        let mut conn = pool.acquire().await.unwrap();
        let batch = read_after(&mut conn, at, 100).await.unwrap();
        if let Some(last) = batch.last() {
            at = last.checkpoint;
        }
        seen.extend(batch);
        if seen.len() >= want || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn open_transaction_then_commit_or_rollback(commit_a: bool) {
    let db = test_database().await;
    let mut a = db.pool.acquire().await.unwrap();
    let mut a_tx = a.begin().await.unwrap();
    append_raw(&mut a_tx, "test", "a", 1, json!({"Happened": {"by": "A"}}))
        .await
        .unwrap();

    let mut b = db.pool.acquire().await.unwrap();
    append_raw(&mut b, "test", "b", 1, json!({"Happened": {"by": "B"}}))
        .await
        .unwrap();

    // B has committed, but A (an older transaction) is open: nothing past A may be read.
    let mut reader = db.pool.acquire().await.unwrap();
    let while_open = read_after(&mut reader, Checkpoint::ORIGIN, 100)
        .await
        .unwrap();
    assert!(
        while_open.is_empty(),
        "the reader went past an open transaction: {while_open:?}"
    );

    let expected: Vec<&str> = if commit_a {
        a_tx.commit().await.unwrap();
        vec!["a", "b"]
    } else {
        a_tx.rollback().await.unwrap();
        vec!["b"]
    };

    let events = read_until(&db.pool, Checkpoint::ORIGIN, expected.len()).await;
    let ids: Vec<&str> = events.iter().map(|e| e.aggregate_id.as_str()).collect();
    assert_eq!(ids, expected, "each committed event once, in log order");
    let mut checkpoints: Vec<Checkpoint> = events.iter().map(|e| e.checkpoint).collect();
    let sorted = {
        let mut s = checkpoints.clone();
        s.sort();
        s
    };
    assert_eq!(checkpoints, sorted);
    checkpoints.dedup();
    assert_eq!(checkpoints.len(), events.len());

    // Nothing more comes after the last one.
    let last = events.last().map(|e| e.checkpoint).unwrap();
    let rest = read_after(&mut reader, last, 100).await.unwrap();
    assert!(rest.is_empty(), "read twice: {rest:?}");
    drop(reader);
    let _ = PgConnection::close;
}

#[tokio::test]
async fn a_reader_waits_for_an_open_transaction_and_then_reads_both_in_order() {
    open_transaction_then_commit_or_rollback(true).await;
}

#[tokio::test]
async fn a_reader_waits_for_an_open_transaction_that_then_rolls_back() {
    open_transaction_then_commit_or_rollback(false).await;
}

#[tokio::test]
async fn a_reader_pages_through_the_log_by_checkpoint() {
    let db = test_database().await;
    let mut conn = db.pool.acquire().await.unwrap();
    for i in 1..=25 {
        append_raw(&mut conn, "test", "paged", i, json!({"Happened": {"n": i}}))
            .await
            .unwrap();
    }
    let mut at = Checkpoint::ORIGIN;
    let mut sequences = Vec::new();
    loop {
        let page = read_after(&mut conn, at, 10).await.unwrap();
        let Some(last) = page.last() else { break };
        at = last.checkpoint;
        sequences.extend(page.iter().map(|e| e.sequence));
    }
    assert_eq!(sequences, (1..=25).collect::<Vec<i64>>());
}
