//! A subscriber's checkpoint row, when it is not there: a subscriber never run, or a row
//! lost (deleted by hand, a partial restore). The runner's batch locks the row with
//! `SKIP LOCKED`, which finds nothing in both cases and also when another worker holds it;
//! before this module a lost row looked like a row always held, and its runner stayed
//! "busy" forever.
//!
//! A missing row can only be created at the origin (nothing records where it stood), and
//! that replays the subscriber from the first event over whatever it already wrote:
//! - a subscriber whose schema is empty loses nothing: created at the origin (a new one);
//! - a view replays idempotently ([`Subscriber::replays_idempotently`]): its keyed rows are
//!   written only when newer in their version columns (`views/fold.rs`), its append-only rows
//!   are keyed by log position; so the replay changes nothing it had already applied, the
//!   view never goes back in time, and it is exact again once the replay passes its old
//!   checkpoint. Re-created at the origin, with a warning;
//! - anything else (the settlement saga) is not re-created: replayed over its live state
//!   it would decide again from a state half old, half new (rejecting requests placed
//!   after an acceptance it re-reads, say), and its decisions move money. The runner
//!   fails with [`MissingCheckpoint`], logged at each retry, until an operator restores
//!   the row (`docs/RELIABILITY.md`).

use sqlx::PgConnection;

use crate::log::subscriber::Subscriber;
use crate::postgres::{quote_ident, Db};

/// What became of a checkpoint row the runner's batch could not lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The row is there: another worker holds it.
    Held,
    /// The row was missing and is now at the origin.
    Created,
}

/// The row is missing and re-creating it at the origin is not safe for this subscriber.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the checkpoint row of `{subscriber}` is missing while its schema holds state; replaying \
     it from the origin over that state is not safe, so it is not re-created: restore the row \
     (docs/RELIABILITY.md, \"Bounds on what a caller controls\")"
)]
pub struct MissingCheckpoint {
    /// The subscriber.
    pub subscriber: &'static str,
}

/// Why a checkpoint row could not be ensured.
#[derive(Debug, thiserror::Error)]
pub enum EnsureError {
    /// Talking to the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Not re-created on purpose.
    #[error(transparent)]
    Missing(#[from] MissingCheckpoint),
}

/// Makes sure `subscriber` has a checkpoint row, creating it at the origin when that is safe.
pub async fn ensure(pool: &Db, subscriber: &dyn Subscriber) -> Result<Found, EnsureError> {
    let name = subscriber.name();
    let mut conn = pool.acquire().await?;
    if exists(&mut conn, name).await? {
        return Ok(Found::Held);
    }
    let safe = subscriber.replays_idempotently() || !holds_state(&mut conn, name).await?;
    if !safe {
        return Err(MissingCheckpoint { subscriber: name }.into());
    }
    let created = sqlx::query(
        "INSERT INTO public.subscription_checkpoints (subscriber) VALUES ($1)
         ON CONFLICT (subscriber) DO NOTHING",
    )
    .bind(name)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if created == 0 {
        // Another worker created it meanwhile.
        return Ok(Found::Held);
    }
    if subscriber.replays_idempotently() {
        tracing::warn!(
            subscriber = name,
            "checkpoint row was missing: re-created at the origin; the view replays from the \
             first event (idempotently) and is exact again once past where it stood"
        );
    }
    Ok(Found::Created)
}

async fn exists(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM public.subscription_checkpoints WHERE subscriber = $1)",
    )
    .bind(name)
    .fetch_one(conn)
    .await
}

/// Whether any table in the subscriber's schema has a row.
async fn holds_state(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = $1")
            .bind(name)
            .fetch_all(&mut *conn)
            .await?;
    for table in tables {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {}.{})",
            quote_ident(name),
            quote_ident(&table)
        );
        if sqlx::query_scalar::<_, bool>(&sql)
            .fetch_one(&mut *conn)
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Sets `subscriber`'s checkpoint to `at`, with `applied` events behind it (a rebuild's swap,
/// a recovery), and clears its last error.
pub(crate) async fn set(
    tx: &mut PgConnection,
    subscriber: &str,
    at: crate::log::Checkpoint,
    applied: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE public.subscription_checkpoints
            SET transaction_id = $2::text::xid8, global_position = $3, events_applied = $4,
                updated_at = now(), last_error = NULL, last_error_at = NULL
          WHERE subscriber = $1",
    )
    .bind(subscriber)
    .bind(at.transaction_id.to_string())
    .bind(at.global_position)
    .bind(i64::try_from(applied).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A subscriber paused by an operator tool: its batches find their checkpoint "held" and
/// wait. Unlike locking the checkpoint row, which pauses it too, this holds no transaction
/// id (a session advisory lock on a connection of its own), so the log's horizon, and with
/// it every other subscriber, moves on however long the pause lasts.
pub struct Paused(PgConnection);

impl Paused {
    /// Pauses `subscriber` once its batch in progress, if any, has committed.
    pub async fn take(pool: &Db, subscriber: &str) -> Result<Self, sqlx::Error> {
        use sqlx::Connection;
        let mut conn = PgConnection::connect_with(&pool.pool().connect_options()).await?;
        sqlx::query("SELECT pg_advisory_lock(hashtextextended('carrot_pause:' || $1, 0))")
            .bind(subscriber)
            .execute(&mut conn)
            .await?;
        Ok(Paused(conn))
    }

    /// Lets it go on (closing the session releases the lock, also if this process dies).
    pub async fn release(self) {
        use sqlx::Connection;
        if let Err(e) = self.0.close().await {
            tracing::warn!(error = %e, "closing the pause's connection failed");
        }
    }
}
