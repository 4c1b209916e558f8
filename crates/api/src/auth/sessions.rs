//! Sessions: every access token names one. Logging out revokes it in the database; logging
//! out everywhere (or changing the password) revokes a user's others. Every API process
//! refuses a revoked session's tokens within a second, with no round trip per request: it
//! reads the revocations every [`REFRESH`], in commit order (each carries its transaction's
//! place in the log's order, and a read takes those at or above the horizon the last read
//! saw, as the event log's reader does), and keeps those of sessions not yet expired in
//! memory, so a request costs one hash lookup. If the list was last read more than
//! [`TRUSTED_FOR`] before (the database away), a request asks the database itself, and is
//! refused if it cannot: an unknown revocation never lets a token through.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use carrot_projections::Shutdown;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// How often each process reads the revocations.
pub const REFRESH: Duration = Duration::from_millis(250);
/// How long a read list is trusted (from when its read began): past it, requests ask the
/// database.
pub const TRUSTED_FOR: Duration = Duration::from_secs(1);
/// How long past a session's expiry its revocation is kept in memory: tokens are accepted
/// a few seconds past their expiry (the verifier's leeway), and hosts' clocks differ.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// Deletes the sessions whose tokens have all expired: a revocation of one protects
/// nothing any more, and the row is data about a person kept for no purpose. How many.
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at < now()")
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Revokes a user's live sessions but one (`$2`, or none): their ids and expiries.
const REVOKE_OTHERS: &str =
    "UPDATE sessions SET revoked_at = now(), revoked_xid = log_transaction_id()
      WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()
        AND session_id IS DISTINCT FROM $2
     RETURNING session_id, expires_at";

/// Revokes every live session of `user_id` inside the caller's transaction (closing the
/// account): their ids and expiries.
pub async fn revoke_every(
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    sqlx::query_as(REVOKE_OTHERS)
        .bind(user_id)
        .bind(None::<Uuid>)
        .fetch_all(conn)
        .await
}

/// The sessions of one process: the revocations it knows, and when it last read them.
#[derive(Debug)]
pub struct Sessions {
    pool: Db,
    /// Revoked sessions, with when each expires (after that its tokens are refused anyway).
    revoked: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// When the last read began, and the log horizon it saw (the next read starts there).
    read: Mutex<Option<(Instant, String)>>,
    /// A token's lifetime: the first read takes the revocations of that long.
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
    /// `None` when the account is closed: the row lock orders this against a closing, so a
    /// sign-in that raced one either ends before it (and the closing revokes the session)
    /// or sees it closed.
    pub async fn open(
        &self,
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        let session_id = Uuid::new_v4();
        let opened = sqlx::query(
            "INSERT INTO sessions (session_id, user_id, expires_at)
             SELECT $1, user_id, $3 FROM users
              WHERE user_id = $2 AND closed_at IS NULL FOR SHARE",
        )
        .bind(session_id)
        .bind(user_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok((opened.rows_affected() == 1).then_some(session_id))
    }

    /// Revokes one session (logging out).
    pub async fn revoke(&self, session_id: Uuid) -> Result<(), sqlx::Error> {
        let revoked: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "UPDATE sessions SET revoked_at = now(), revoked_xid = log_transaction_id()
              WHERE session_id = $1 AND revoked_at IS NULL
             RETURNING session_id, expires_at",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        self.forget(revoked);
        Ok(())
    }

    /// Revokes every live session of `user_id` but `keep` (logging out everywhere, or a
    /// password change); how many.
    pub async fn revoke_all(&self, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, sqlx::Error> {
        let revoked: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(REVOKE_OTHERS)
            .bind(user_id)
            .bind(keep)
            .fetch_all(&self.pool)
            .await?;
        let count = revoked.len() as u64;
        self.forget(revoked);
        Ok(count)
    }

    /// Sets `user_id`'s password hash and ends every other session, in one transaction: a
    /// changed password never leaves the old sessions alive. How many; `None` when the
    /// account has closed meanwhile (a tombstone gets no password).
    pub async fn replace_password(
        &self,
        user_id: Uuid,
        password_hash: String,
        keep: Uuid,
    ) -> Result<Option<u64>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let changed = sqlx::query(
            "UPDATE users SET password_hash = $2 WHERE user_id = $1 AND closed_at IS NULL",
        )
        .bind(user_id)
        .bind(password_hash)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() == 0 {
            return Ok(None);
        }
        let revoked: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(REVOKE_OTHERS)
            .bind(user_id)
            .bind(Some(keep))
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let count = revoked.len() as u64;
        self.forget(revoked);
        Ok(Some(count))
    }

    /// Adds sessions to this process's revoked list at once (the other processes read them
    /// at their next refresh).
    pub fn forget(&self, sessions: impl IntoIterator<Item = (Uuid, DateTime<Utc>)>) {
        let mut revoked = self.revoked.write().unwrap_or_else(PoisonError::into_inner);
        revoked.extend(sessions);
    }

    /// Whether `session_id`'s tokens still hold: from memory while the list is fresh, else
    /// from the database.
    pub async fn is_live(&self, session_id: Uuid) -> Result<bool, sqlx::Error> {
        let fresh = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
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

    /// Reads the revocations committed since the last read (the first read: those of the
    /// last token lifetime), and forgets those of sessions long expired.
    pub async fn refresh(&self) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let since = self
            .read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|(_, horizon)| horizon.clone());
        // The horizon first: every revocation below it has committed, and the next read
        // starts there, so one committing late is read then.
        let mut tx = self.pool.begin().await?;
        let horizon: String = sqlx::query_scalar("SELECT log_horizon()::text")
            .fetch_one(&mut *tx)
            .await?;
        let revoked: Vec<(Uuid, DateTime<Utc>)> = sqlx::query_as(
            "SELECT session_id, expires_at FROM sessions
              WHERE expires_at > now() - make_interval(secs => $3)
                AND CASE WHEN $1::text IS NULL
                         THEN revoked_at > now() - make_interval(secs => $2)
                         ELSE revoked_xid >= $1::text::xid8 END",
        )
        .bind(since)
        .bind(self.keep.as_secs_f64())
        .bind(EXPIRY_MARGIN.as_secs_f64())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        self.forget(revoked);
        let margin = chrono::Duration::from_std(EXPIRY_MARGIN).unwrap_or_default();
        let now = Utc::now();
        self.revoked
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, expires_at| *expires_at + margin > now);
        *self.read.lock().unwrap_or_else(PoisonError::into_inner) = Some((started, horizon));
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
