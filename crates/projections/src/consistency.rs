//! Read-your-writes: wait (bounded) until a view has applied the event a token names.

use crate::postgres::Db;
use std::time::Duration;

use tokio::time::Instant;

use crate::log::Checkpoint;

/// Whether `subscriber`'s checkpoint is at or past `token`.
pub async fn has_reached(
    pool: &Db,
    subscriber: &str,
    token: Checkpoint,
) -> Result<bool, sqlx::Error> {
    let reached: Option<bool> = sqlx::query_scalar(
        "SELECT (transaction_id, global_position) >= ($2::text::xid8, $3)
           FROM subscription_checkpoints WHERE subscriber = $1",
    )
    .bind(subscriber)
    .bind(token.transaction_id.to_string())
    .bind(token.global_position)
    .fetch_optional(pool)
    .await?;
    Ok(reached.unwrap_or(false))
}

/// Waits until every one of `subscribers` has reached `token`, at most `timeout`.
/// Returns `false` when the time ran out (the caller answers anyway, marked stale).
pub async fn wait_for(
    pool: &Db,
    subscribers: &[&str],
    token: Checkpoint,
    timeout: Duration,
) -> Result<bool, sqlx::Error> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    for subscriber in subscribers {
        loop {
            if has_reached(pool, subscriber, token).await? {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
    Ok(true)
}
