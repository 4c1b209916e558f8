//! The saga's outbox (`settlement.outbox`): commands decided in the saga's batch
//! transaction, then leased, executed and settled by dispatchers.
//!
//! A dispatcher leases rows in a short transaction (`locked_until`) instead of holding row
//! locks while it calls the gateway: a transaction left open would hold back the log's
//! horizon for every reader. A lease that runs out (its dispatcher died) makes the command
//! due again; executing it twice is safe because aggregates treat a repeat as done and the
//! gateway sees the same idempotency key.

use crate::postgres::Db;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::SagaCommand;

/// Records a decision; deciding the same command twice is a no-op.
pub async fn enqueue(tx: &mut PgConnection, command: &SagaCommand) -> Result<(), sqlx::Error> {
    enqueue_all(tx, std::slice::from_ref(command)).await
}

/// Records decisions in one statement; a command decided before (or twice here) is kept once.
pub async fn enqueue_all(
    tx: &mut PgConnection,
    commands: &[SagaCommand],
) -> Result<(), sqlx::Error> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let (mut ids, mut requests, mut stored) = (Vec::new(), Vec::new(), Vec::new());
    for command in commands {
        let id = command.id();
        if seen.insert(id.clone()) {
            ids.push(id);
            requests.push(command.request_id().as_uuid());
            stored
                .push(serde_json::to_value(command).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
        }
    }
    sqlx::query(
        "INSERT INTO settlement.outbox (command_id, request_id, command)
         SELECT * FROM unnest($1::text[], $2::uuid[], $3::jsonb[])
         ON CONFLICT (command_id) DO NOTHING",
    )
    .bind(ids)
    .bind(requests)
    .bind(stored)
    .execute(tx)
    .await?;
    Ok(())
}

/// A leased command.
#[derive(Debug, Clone)]
pub struct Leased {
    /// Its id.
    pub command_id: String,
    /// What to do; `Err` when the stored form no longer parses (dead-lettered as such).
    pub command: Result<SagaCommand, String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
}

/// Leases up to `limit` due commands for `lease`.
pub async fn claim(pool: &Db, limit: i64, lease: Duration) -> Result<Vec<Leased>, sqlx::Error> {
    let rows: Vec<(String, serde_json::Value, i32)> = sqlx::query_as(
        "UPDATE settlement.outbox o
            SET locked_until = now() + make_interval(secs => $2), attempts = o.attempts + 1,
                updated_at = now()
          WHERE o.command_id IN (
                SELECT command_id FROM settlement.outbox
                 WHERE status = 'pending' AND next_attempt_at <= now()
                   AND (locked_until IS NULL OR locked_until < now())
                 ORDER BY next_attempt_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
         RETURNING o.command_id, o.command, o.attempts",
    )
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(command_id, command, attempts)| Leased {
            command_id,
            command: serde_json::from_value(command).map_err(|e| e.to_string()),
            attempts,
        })
        .collect())
}

/// Marks a command done: applied, or moot for the reason given.
pub async fn done(pool: &Db, command_id: &str, outcome: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement.outbox
            SET status = 'done', outcome = $2, locked_until = NULL, last_error = NULL,
                updated_at = now()
          WHERE command_id = $1",
    )
    .bind(command_id)
    .bind(outcome)
    .execute(pool)
    .await?;
    Ok(())
}

/// Makes a command due again after `delay`. `counted: false` gives the attempt back (the
/// breaker refused it without trying).
pub async fn retry_later(
    pool: &Db,
    command_id: &str,
    delay: Duration,
    error: &str,
    counted: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement.outbox
            SET next_attempt_at = now() + make_interval(secs => $2), locked_until = NULL,
                last_error = $3, attempts = attempts - CASE WHEN $4 THEN 0 ELSE 1 END,
                updated_at = now()
          WHERE command_id = $1",
    )
    .bind(command_id)
    .bind(delay.as_secs_f64())
    .bind(error)
    .bind(counted)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives up on a command: an operator must look, and may retry it.
pub async fn bury(pool: &Db, command_id: &str, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE settlement.outbox
            SET status = 'dead', locked_until = NULL, last_error = $2, updated_at = now()
          WHERE command_id = $1",
    )
    .bind(command_id)
    .bind(error)
    .execute(pool)
    .await?;
    tracing::error!(command_id, error, "saga command dead-lettered");
    Ok(())
}

/// A command that gave up, for operators.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The command's id (what `retry` takes).
    pub command_id: String,
    /// The trade.
    pub request_id: Uuid,
    /// The command as stored.
    pub command: serde_json::Value,
    /// How many times it was tried.
    pub attempts: i32,
    /// Why it was given up.
    pub last_error: Option<String>,
    /// When it was first decided.
    pub created_at: DateTime<Utc>,
    /// When it was given up.
    pub updated_at: DateTime<Utc>,
}

/// Dead letters, most recent first; `after` is the last `command_id` of the previous page.
pub async fn dead_letters(
    pool: &Db,
    limit: i64,
    after: Option<&str>,
) -> Result<Vec<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT command_id, request_id, command, attempts, last_error, created_at, updated_at
           FROM settlement.outbox
          WHERE status = 'dead'
            AND ($2::text IS NULL OR (updated_at, command_id) <
                 (SELECT updated_at, command_id FROM settlement.outbox WHERE command_id = $2))
          ORDER BY updated_at DESC, command_id DESC
          LIMIT $1",
    )
    .bind(limit)
    .bind(after)
    .fetch_all(pool)
    .await
}

/// Puts a dead letter back in line with its attempts reset; false if there is no such one.
pub async fn revive(pool: &Db, command_id: &str) -> Result<bool, sqlx::Error> {
    let revived = sqlx::query(
        "WITH revived AS (
             UPDATE settlement.outbox
                SET status = 'pending', attempts = 0, next_attempt_at = now(),
                    locked_until = NULL, updated_at = now()
              WHERE command_id = $1 AND status = 'dead'
             RETURNING 1)
         SELECT pg_notify('carrot_outbox', '') FROM revived",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await?;
    Ok(revived.is_some())
}

/// How many commands wait, and how many are dead: for readiness and metrics.
pub async fn depth(pool: &Db) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'dead')
           FROM settlement.outbox WHERE status <> 'done'",
    )
    .fetch_one(pool)
    .await
}

/// How long a settled (`done`) command is kept, for operators reading a trade's history.
const KEEP_SETTLED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deletes commands settled longer ago than a week; returns how many.
pub async fn purge_settled(pool: &Db) -> Result<u64, sqlx::Error> {
    let purged = sqlx::query(
        "DELETE FROM settlement.outbox
          WHERE status = 'done' AND updated_at < now() - make_interval(secs => $1)",
    )
    .bind(KEEP_SETTLED.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(purged.rows_affected())
}
