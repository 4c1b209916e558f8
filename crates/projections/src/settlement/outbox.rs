//! The saga's outbox (`settlement.outbox`): commands decided in the saga's batch
//! transaction, then leased, executed and settled by dispatchers.
//!
//! A dispatcher leases rows in a short transaction (`locked_until`, and a `lease` token)
//! instead of holding row locks while it calls the gateway: a transaction left open would
//! hold back the log's horizon for every reader. A lease that runs out (its dispatcher died)
//! makes the command due again; executing it twice is safe because aggregates treat a
//! repeat as done and the gateway sees the same idempotency key. Only the token's holder
//! settles a row, so a dispatcher that outlived its lease changes nothing.
//!
//! Settled rows are kept: a command's id is the saga's memory that it decided and ran an
//! effect, which a rebuild of the saga's state must not decide again (`mod.rs`). They cost
//! about as much as the log itself, whose size they follow.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::SagaCommand;

use crate::postgres::Db;

/// Records a decision; deciding the same command twice is a no-op.
pub async fn enqueue(tx: &mut PgConnection, command: &SagaCommand) -> Result<(), sqlx::Error> {
    enqueue_all(tx, std::slice::from_ref(command)).await
}

/// Records decisions in one statement, and wakes the dispatchers if any is new; a command
/// decided before (or twice here) is kept once. The table is named unqualified: the saga's
/// batch (and its rebuild) points `search_path` at its schema, the timer too.
pub async fn enqueue_all(
    tx: &mut PgConnection,
    commands: &[SagaCommand],
) -> Result<(), sqlx::Error> {
    if commands.is_empty() {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::new();
    let (mut ids, mut requests, mut stored, mut versions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for command in commands {
        let id = command.id();
        if seen.insert(id.clone()) {
            ids.push(id);
            requests.push(command.request_id().as_uuid());
            versions.push(command.version());
            stored
                .push(serde_json::to_value(command).map_err(|e| sqlx::Error::Encode(Box::new(e)))?);
        }
    }
    sqlx::query(
        "WITH decided AS (
             INSERT INTO outbox (command_id, request_id, command, version)
             SELECT * FROM unnest($1::text[], $2::uuid[], $3::jsonb[], $4::int[])
             ON CONFLICT (command_id) DO NOTHING
             RETURNING 1)
         SELECT pg_notify('carrot_outbox', '') WHERE EXISTS (SELECT 1 FROM decided)",
    )
    .bind(ids)
    .bind(requests)
    .bind(stored)
    .bind(versions)
    .execute(tx)
    .await?;
    Ok(())
}

/// Puts dead commands back in line (in the saga's batch: its schema is on `search_path`).
pub async fn revive_all(tx: &mut PgConnection, command_ids: &[String]) -> Result<(), sqlx::Error> {
    if command_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH revived AS (
             UPDATE outbox
                SET status = 'pending', next_attempt_at = '-infinity', locked_until = NULL,
                    lease = NULL, failing_since = NULL, updated_at = now()
              WHERE command_id = ANY($1) AND status = 'dead'
             RETURNING 1)
         SELECT pg_notify('carrot_outbox', '') WHERE EXISTS (SELECT 1 FROM revived)",
    )
    .bind(command_ids)
    .execute(tx)
    .await?;
    Ok(())
}

/// Marks commands done without running them, each with its outcome (in the saga's batch).
pub async fn close_all(
    tx: &mut PgConnection,
    closed: &[(String, String)],
) -> Result<(), sqlx::Error> {
    if closed.is_empty() {
        return Ok(());
    }
    let (ids, outcomes): (Vec<&str>, Vec<&str>) = closed
        .iter()
        .map(|(id, outcome)| (id.as_str(), outcome.as_str()))
        .unzip();
    sqlx::query(
        "UPDATE outbox o
            SET status = 'done', outcome = c.outcome, locked_until = NULL, lease = NULL,
                failing_since = NULL, updated_at = now()
           FROM unnest($1::text[], $2::text[]) AS c(command_id, outcome)
          WHERE o.command_id = c.command_id AND o.status <> 'done'",
    )
    .bind(ids)
    .bind(outcomes)
    .execute(tx)
    .await?;
    Ok(())
}

/// A leased command.
#[derive(Debug, Clone)]
pub struct Leased {
    /// Its id.
    pub command_id: String,
    /// The lease's token: only its holder settles the row.
    pub lease: Uuid,
    /// What to do; `Err` when the stored form no longer parses (dead-lettered as such).
    pub command: Result<SagaCommand, String>,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// When its current run of failures began, if it is failing.
    pub failing_since: Option<DateTime<Utc>>,
}

/// A leased row as stored: id, lease, command, attempts, failing since.
type LeasedRow = (String, Uuid, serde_json::Value, i32, Option<DateTime<Utc>>);

/// Leases up to `limit` commands due at `now` for `lease`, of a version this code reads
/// (`readable`); a newer command waits for a newer dispatcher.
pub async fn claim(
    pool: &Db,
    now: DateTime<Utc>,
    limit: i64,
    lease: Duration,
    readable: i32,
) -> Result<Vec<Leased>, sqlx::Error> {
    let rows: Vec<LeasedRow> = sqlx::query_as(
        "UPDATE settlement.outbox o
                SET locked_until = $1 + make_interval(secs => $3), lease = gen_random_uuid(),
                    attempts = o.attempts + 1, updated_at = now()
              WHERE o.command_id IN (
                    SELECT command_id FROM settlement.outbox
                     WHERE status = 'pending' AND next_attempt_at <= $1 AND version <= $4
                       AND (locked_until IS NULL OR locked_until < $1)
                     ORDER BY next_attempt_at
                     LIMIT $2
                     FOR UPDATE SKIP LOCKED)
             RETURNING o.command_id, o.lease, o.command, o.attempts, o.failing_since",
    )
    .bind(now)
    .bind(limit)
    .bind(lease.as_secs_f64())
    .bind(readable)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(command_id, lease, command, attempts, failing_since)| Leased {
                command_id,
                lease,
                command: serde_json::from_value(command).map_err(|e| e.to_string()),
                attempts,
                failing_since,
            },
        )
        .collect())
}

/// How a leased command is settled.
#[derive(Debug, Clone, PartialEq)]
pub enum Settlement<'a> {
    /// Done: applied, or moot for the reason given.
    Done(&'a str),
    /// Due again after `delay`; `counted: false` gives the attempt back (the breaker
    /// refused it without trying). Its failures began at `failing_since`.
    Retry {
        /// How long to wait.
        delay: Duration,
        /// What failed.
        error: &'a str,
        /// Whether the attempt counts.
        counted: bool,
    },
    /// Given up on: an operator must look.
    Dead(&'a str),
}

/// Settles a leased command, if `leased` still holds it; returns false (and changes
/// nothing) when its lease ran out and another dispatcher took the row meanwhile.
pub async fn settle(
    pool: &Db,
    leased: &Leased,
    now: DateTime<Utc>,
    how: Settlement<'_>,
) -> Result<bool, sqlx::Error> {
    let (status, delay, outcome, error, counted) = match &how {
        Settlement::Done(outcome) => ("done", 0.0, Some(*outcome), None, true),
        Settlement::Retry {
            delay,
            error,
            counted,
        } => ("pending", delay.as_secs_f64(), None, Some(*error), *counted),
        Settlement::Dead(error) => ("dead", 0.0, None, Some(*error), true),
    };
    let settled = sqlx::query(
        "UPDATE settlement.outbox
            SET status = $3, outcome = $5, last_error = $6, locked_until = NULL, lease = NULL,
                next_attempt_at = CASE WHEN $3 = 'pending'
                                       THEN $2 + make_interval(secs => $4)
                                       ELSE next_attempt_at END,
                attempts = attempts - CASE WHEN $7 THEN 0 ELSE 1 END,
                failing_since = CASE WHEN $3 = 'pending' THEN coalesce(failing_since, $2) END,
                updated_at = now()
          WHERE command_id = $1 AND lease = $8",
    )
    .bind(&leased.command_id)
    .bind(now)
    .bind(status)
    .bind(delay)
    .bind(outcome)
    .bind(error)
    .bind(counted)
    .bind(leased.lease)
    .execute(pool)
    .await?
    .rows_affected()
        == 1;
    if !settled {
        tracing::warn!(
            command_id = leased.command_id,
            "saga command's lease ran out before it was settled; its new holder settles it"
        );
    } else if let Settlement::Dead(error) = how {
        tracing::error!(
            command_id = leased.command_id,
            error,
            "saga command dead-lettered"
        );
    }
    Ok(settled)
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
                SET status = 'pending', attempts = 0, next_attempt_at = '-infinity',
                    locked_until = NULL, lease = NULL, failing_since = NULL,
                    updated_at = now()
              WHERE command_id = $1 AND status = 'dead'
             RETURNING 1)
         SELECT pg_notify('carrot_outbox', '') FROM revived",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await?;
    Ok(revived.is_some())
}

/// Marks a dead letter discarded (an operator decided it never runs; the `DeadLetter`
/// aggregate holds who and why); false if there is no such dead letter.
pub async fn discard(pool: &Db, command_id: &str) -> Result<bool, sqlx::Error> {
    let discarded = sqlx::query(
        "UPDATE settlement.outbox
            SET status = 'discarded', locked_until = NULL, lease = NULL, updated_at = now()
          WHERE command_id = $1 AND status = 'dead'",
    )
    .bind(command_id)
    .execute(pool)
    .await?;
    Ok(discarded.rows_affected() == 1)
}

/// The outbox's depth, for readiness and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Commands waiting to run.
    pub pending: i64,
    /// Commands that gave up (an operator must look).
    pub dead: i64,
    /// Pending commands that have been failing for longer than the alert threshold: money
    /// waiting out an outage.
    pub stuck: i64,
}

/// How many commands wait, how many are dead, and how many have been failing since before
/// `failing_before`.
pub async fn depth(pool: &Db, failing_before: DateTime<Utc>) -> Result<Depth, sqlx::Error> {
    let (pending, dead, stuck) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'pending'),
                count(*) FILTER (WHERE status = 'dead'),
                count(*) FILTER (WHERE status = 'pending' AND failing_since < $1)
           FROM settlement.outbox WHERE status <> 'done'",
    )
    .bind(failing_before)
    .fetch_one(pool)
    .await?;
    Ok(Depth {
        pending,
        dead,
        stuck,
    })
}

/// One dead letter, if `command_id` is one.
pub async fn dead_letter(pool: &Db, command_id: &str) -> Result<Option<DeadLetter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT command_id, request_id, command, attempts, last_error, created_at, updated_at
           FROM settlement.outbox WHERE command_id = $1 AND status = 'dead'",
    )
    .bind(command_id)
    .fetch_optional(pool)
    .await
}
