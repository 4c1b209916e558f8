//! The `idempotency_keys` table: claiming a key for a call, keeping a final answer,
//! releasing a key after a transient refusal (its fingerprint kept), and purging old keys.

use std::time::Duration;

use axum::http::StatusCode;
use carrot_projections::postgres::Db;
use uuid::Uuid;

/// A first call still `in_flight` after this long was abandoned (its process died): a
/// retry may take the key over. Safe, because the handler's ids come from the key.
pub(super) const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Keys are kept at least 24 h (API.md); older ones are purged after this.
pub const KEPT_FOR: Duration = Duration::from_secs(48 * 3600);

/// What the stored row says about a key.
pub(super) enum Stored {
    /// This call owns the key now.
    Claimed,
    /// The first call's response, to replay.
    Done {
        status: u16,
        body: Vec<u8>,
        headers: serde_json::Value,
    },
    /// Another call with the key is running.
    InFlight,
    /// The key was used with another body.
    Reused,
}

type Row = (
    String,
    String,
    Option<i16>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
    bool,
);

/// Claims `key` for this call: a new key, a `retryable` one with the same fingerprint, or
/// one abandoned `in_flight`; otherwise says why not.
#[tracing::instrument(skip_all)]
pub(super) async fn claim(
    pool: &Db,
    user: Uuid,
    key: &str,
    hash: &str,
) -> Result<Stored, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, state)
         VALUES ($1, $2, $3, 'in_flight') ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(hash)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Stored::Claimed);
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT request_hash, state, response_status, response_body, response_headers,
                created_at < now() - make_interval(secs => $3)
           FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(ABANDONED_AFTER.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let Some((stored_hash, state, status, body, headers, abandoned)) = row else {
        // Purged between the two statements: start again.
        return Box::pin(claim(pool, user, key, hash)).await;
    };
    if stored_hash != hash {
        return Ok(Stored::Reused);
    }
    match (state.as_str(), status, body) {
        ("done", Some(status), Some(body)) => Ok(Stored::Done {
            status: status as u16,
            body,
            headers: headers.unwrap_or_default(),
        }),
        ("retryable", _, _) => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET state = 'in_flight', created_at = now()
                  WHERE user_id = $1 AND key = $2 AND state = 'retryable'",
            )
            .bind(user)
            .bind(key)
            .execute(pool)
            .await?;
            // Not taken: another retry with the key got there first and is running.
            Ok(if taken.rows_affected() == 1 {
                Stored::Claimed
            } else {
                Stored::InFlight
            })
        }
        _ if abandoned => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = now()
                  WHERE user_id = $1 AND key = $2 AND state = 'in_flight'
                    AND created_at < now() - make_interval(secs => $3)",
            )
            .bind(user)
            .bind(key)
            .bind(ABANDONED_AFTER.as_secs_f64())
            .execute(pool)
            .await?;
            Ok(if taken.rows_affected() == 1 {
                Stored::Claimed
            } else {
                Stored::InFlight
            })
        }
        _ => Ok(Stored::InFlight),
    }
}

/// The call ended in a transient refusal: the key is free for a retry of the same request
/// (its fingerprint stays, so another request with it is still refused).
#[tracing::instrument(skip_all)]
pub(super) async fn release(pool: &Db, user: Uuid, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys SET state = 'retryable', created_at = now()
          WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .execute(pool)
    .await?;
    Ok(())
}

/// Keeps the call's final answer for replay.
#[tracing::instrument(skip_all)]
pub(super) async fn keep(
    pool: &Db,
    user: Uuid,
    key: &str,
    status: StatusCode,
    body: &[u8],
    headers: serde_json::Map<String, serde_json::Value>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE idempotency_keys
            SET state = 'done', response_status = $3, response_body = $4, response_headers = $5
          WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(status.as_u16() as i16)
    .bind(body)
    .bind(serde_json::Value::Object(headers))
    .execute(pool)
    .await?;
    Ok(())
}

/// Deletes keys older than [`KEPT_FOR`]; returns how many.
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(KEPT_FOR.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
