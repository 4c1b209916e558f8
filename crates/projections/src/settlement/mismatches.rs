//! The differences reconciliation leaves for a person (`settlement.mismatches`): listed
//! for operators, closed by one with what was done, and counted for the gauge.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::postgres::Db;

/// A difference reconciliation could not repair.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Mismatch {
    /// The movement's (or the log's) idempotency key.
    pub idempotency_key: String,
    /// `capture`, `refund`, `payout`, or `unknown` (a key Carrot does not make).
    pub kind: String,
    /// The payment the key names, if it names one.
    pub payment_id: Option<Uuid>,
    /// What differs.
    pub detail: String,
    /// When a pass first found it.
    pub found_at: DateTime<Utc>,
}

/// Open mismatches, oldest first, at most `limit`.
pub async fn open_mismatches(pool: &Db, limit: i64) -> Result<Vec<Mismatch>, sqlx::Error> {
    sqlx::query_as(
        "SELECT idempotency_key, kind, payment_id, detail, found_at FROM settlement.mismatches
          WHERE resolved_at IS NULL ORDER BY found_at, idempotency_key LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Closes the open mismatch under `key`, recording who and how; `false` when there is none.
pub async fn resolve(
    pool: &Db,
    key: &str,
    by: Uuid,
    resolution: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE settlement.mismatches
            SET resolved_at = now(), resolved_by = $2, resolution = $3
          WHERE idempotency_key = $1 AND resolved_at IS NULL",
    )
    .bind(key)
    .bind(by)
    .bind(resolution)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many mismatches are open (the `carrot_reconciliation_mismatches` gauge).
pub async fn open_count(pool: &Db) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM settlement.mismatches WHERE resolved_at IS NULL")
        .fetch_one(pool)
        .await
}
