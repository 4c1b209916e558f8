//! Read-your-writes: wait (bounded) until views have applied the event a token names.
//!
//! A token comes from the client, so it may be forged. One beyond the log's head names no
//! event: a command answers only after its events committed, so no genuine token is ever
//! ahead of the log. Waiting for it cannot succeed until someone else appends that far, so
//! it is looked at no more than once per `idle_poll` instead of every few milliseconds:
//! a forged token costs a handful of checks, not a hundred.

use std::time::Duration;

use tokio::time::Instant;

use crate::log::Checkpoint;
use crate::postgres::Db;

/// The first pause between two checks of a token the log has reached; it doubles up to
/// [`FAST_POLL_MAX`] (views usually apply an event within milliseconds).
const FAST_POLL_MIN: Duration = Duration::from_millis(1);
/// The longest pause between two checks of a token the log has reached.
const FAST_POLL_MAX: Duration = Duration::from_millis(20);

/// What one check of a token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCheck {
    /// Every subscriber asked for has applied the token's event.
    pub reached: bool,
    /// No event in the log is at or after the token: it names nothing (yet).
    pub beyond_head: bool,
}

/// Checks `token` against the checkpoints of `subscribers` and the log's head, in one
/// statement (an index probe on each side).
pub async fn check(
    pool: &Db,
    subscribers: &[&str],
    token: Checkpoint,
) -> Result<TokenCheck, sqlx::Error> {
    let mut names: Vec<&str> = subscribers.to_vec();
    names.sort_unstable();
    names.dedup();
    crate::metrics::global().inc("carrot_consistency_checks_total", &[]);
    let (reached, beyond_head): (bool, bool) = sqlx::query_as(
        "SELECT coalesce((SELECT count(*) FILTER (
                                   WHERE (c.transaction_id, c.global_position) >= ($2::text::xid8, $3))
                                 = cardinality($1::text[])
                            FROM public.subscription_checkpoints c
                           WHERE c.subscriber = ANY($1)), false),
                NOT EXISTS (SELECT 1 FROM public.events e
                             WHERE (e.transaction_id, e.global_position) >= ($2::text::xid8, $3))",
    )
    .bind(&names)
    .bind(token.transaction_id.to_string())
    .bind(token.global_position)
    .fetch_one(pool)
    .await?;
    Ok(TokenCheck {
        reached,
        beyond_head,
    })
}

/// Whether `subscriber`'s checkpoint is at or past `token`.
pub async fn has_reached(
    pool: &Db,
    subscriber: &str,
    token: Checkpoint,
) -> Result<bool, sqlx::Error> {
    Ok(check(pool, &[subscriber], token).await?.reached)
}

/// How long a read may wait for a token, and how often it looks at one beyond the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitBound {
    /// The longest wait; then the read answers anyway, marked stale.
    pub timeout: Duration,
    /// The pause between two checks of a token beyond the log's head (the runners' poll
    /// interval: nothing new is expected sooner when no append is announced).
    pub idle_poll: Duration,
}

/// Waits until every one of `subscribers` has reached `token`, at most `bound.timeout`.
/// Returns `false` when the time ran out (the caller answers anyway, marked stale).
///
/// Checks: while the token is within the log, every 1 ms to 20 ms (backing off); while it
/// is beyond the head, once per `bound.idle_poll`. So a forged token costs at most
/// `1 + timeout / idle_poll` checks.
pub async fn wait_for(
    pool: &Db,
    subscribers: &[&str],
    token: Checkpoint,
    bound: WaitBound,
) -> Result<bool, sqlx::Error> {
    wait_on(pool, None, subscribers, token, bound).await
}

/// [`wait_for`] on `pool`, a read replica of `primary` (when given). A replica may not have
/// replayed a genuine token's event yet, so a token beyond the replica's head is asked of
/// the primary once: if the primary has the event, the replica is polled as fast as for a
/// token within its log; if not, the token is beyond every head (forged, or from the
/// future), and polled once per `bound.idle_poll`.
pub async fn wait_on(
    pool: &Db,
    primary: Option<&Db>,
    subscribers: &[&str],
    token: Checkpoint,
    bound: WaitBound,
) -> Result<bool, sqlx::Error> {
    let deadline = Instant::now() + bound.timeout;
    let mut pause = FAST_POLL_MIN;
    let mut on_primary = false;
    loop {
        let found = check(pool, subscribers, token).await?;
        if found.reached {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        if found.beyond_head && !on_primary {
            if let Some(primary) = primary {
                on_primary = !check(primary, &[], token).await?.beyond_head;
            }
        }
        let next = if found.beyond_head && !on_primary {
            bound.idle_poll.max(FAST_POLL_MAX)
        } else {
            let next = pause;
            pause = (pause * 2).min(FAST_POLL_MAX);
            next
        };
        tokio::time::sleep(next.min(deadline - now)).await;
    }
}
