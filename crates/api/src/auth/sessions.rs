//! Sessions: every access token names one. Logging out revokes it in the database; logging
//! out everywhere (or changing the password) revokes a user's others. Every API process
//! refuses a revoked session's tokens within a second, with no round trip per request: it
//! reads the revocations every [`REFRESH`] and keeps those of the last token lifetime in
//! memory (a token outlives no revocation older than that), so a request costs one hash
//! lookup. If the list could not be read for longer than [`TRUSTED_FOR`] (the database
//! away), a request asks the database itself, and is refused if it cannot: an unknown
//! revocation never lets a token through.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use carrot_projections::Shutdown;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How often each process reads the revocations.
pub const REFRESH: Duration = Duration::from_millis(250);
/// How long a read list is trusted: past it, requests ask the database.
pub const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// How far back each read looks before the last one's time: a revocation committed late
/// (its `now()` is its transaction's start) is still seen.
const OVERLAP_SECONDS: f64 = 5.0;

/// Deletes the sessions whose tokens have all expired: a revocation of one protects
/// nothing any more, and the row is data about a person kept for no purpose. How many.
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The sessions of one process: the revocations it knows, and when it last read them.
#[derive(Debug)]
pub struct Sessions {
    pool: Db,
    /// Revoked sessions, with when this process learned of each.
    revoked: RwLock<HashMap<Uuid, Instant>>,
    /// When the list was last read, and the database's time then.
    read: Mutex<Option<(Instant, DateTime<Utc>)>>,
    /// A token's lifetime: revocations older than it protect no live token.
    keep: Duration,
}

impl Sessions {
    /// The sessions over `pool`, for tokens that live `token_ttl`.
    pub fn new(pool: Db, token_ttl: chrono::Duration) -> Self {
        Sessions {
            pool,
            revoked: RwLock::new(HashMap::new()),
            read: Mutex::new(None),
            keep: token_ttl.to_std().unwrap_or(Duration::from_secs(86_400)),
        }
    }

    /// Records a new session of `user_id` until `expires_at`; its id goes in the token.
    pub async fn open(
        &self,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<Uuid, sqlx::Error> {
        let session_id = Uuid::new_v4();
        sqlx::query("INSERT INTO sessions (session_id, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(session_id)
            .bind(user_id)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(session_id)
    }

    /// Revokes one session (logging out).
    pub async fn revoke(&self, session_id: Uuid) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = now() WHERE session_id = $1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        self.forget([session_id]);
        Ok(())
    }

    /// Revokes every live session of `user_id` but `keep` (logging out everywhere, or a
    /// password change); how many.
    pub async fn revoke_all(&self, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, sqlx::Error> {
        let revoked: Vec<Uuid> = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = now()
              WHERE user_id = $1 AND revoked_at IS NULL AND session_id IS DISTINCT FROM $2
             RETURNING session_id",
        )
        .bind(user_id)
        .bind(keep)
        .fetch_all(&self.pool)
        .await?;
        let count = revoked.len() as u64;
        self.forget(revoked);
        Ok(count)
    }

    /// Adds sessions to this process's revoked list at once (the other processes read them
    /// at their next refresh).
    fn forget(&self, sessions: impl IntoIterator<Item = Uuid>) {
        let now = Instant::now();
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        for session in sessions {
            revoked.insert(session, now);
        }
    }

    /// Whether `session_id`'s tokens still hold: from memory while the list is fresh, else
    /// from the database.
    pub async fn is_live(&self, session_id: Uuid) -> Result<bool, sqlx::Error> {
        let fresh = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|(at, _)| at.elapsed() <= TRUSTED_FOR);
        if fresh {
            let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
            return Ok(!revoked.contains_key(&session_id));
        }
        let live: Option<bool> =
            sqlx::query_scalar("SELECT revoked_at IS NULL FROM sessions WHERE session_id = $1")
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(live.unwrap_or(false))
    }

    /// Reads the revocations since the last read (the first read: those of the last token
    /// lifetime), and forgets those older than a token's lifetime.
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        let since = *self.read.lock().unwrap_or_else(PoisonError::into_inner);
        let keep_seconds = self.keep.as_secs_f64();
        let (now, revoked): (DateTime<Utc>, Vec<Uuid>) = sqlx::query_as(
            "SELECT now(), coalesce(array_agg(session_id), '{}') FROM sessions
              WHERE revoked_at > coalesce($1 - make_interval(secs => $2),
                                          now() - make_interval(secs => $3))",
        )
        .bind(since.map(|(_, at)| at))
        .bind(OVERLAP_SECONDS)
        .bind(keep_seconds)
        .fetch_one(&self.pool)
        .await?;
        self.forget(revoked);
        let keep = self.keep;
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, learned| learned.elapsed() <= keep);
        *self.read.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), now));
        Ok(())
    }

    /// Reads the revocations every [`REFRESH`] until `shutdown`.
    pub async fn keep_reading(&self, mut shutdown: Shutdown) {
        loop {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "reading revoked sessions failed; requests ask the database until it answers");
            }
            tokio::select! {
                () = tokio::time::sleep(REFRESH) => {}
                () = shutdown.wait() => return,
            }
        }
    }
}
