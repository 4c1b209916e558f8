//! Closing an account (`DELETE /me`, and `carrot admin close` for an operator): refused
//! while the person is still in a trade; otherwise, in this order,
//! 1. **shut** (one transaction): their key destroyed (what they typed reads `[erased]`
//!    everywhere from here on; a process that cached it for sealing may seal with it for
//!    up to a minute, which no one can open, then refuses their writes),
//!    every session revoked, the account row made a tombstone (no username, no password,
//!    no display name: it can never log in again, and the name can never be taken), their
//!    listings' snapshots and their idempotency keys deleted;
//! 2. **record**: their listings still on sale withdrawn, and `AccountClosed` appended (who
//!    closed it, audited in the log; every view erases its copies at that place).
//!
//! The account is closed once step 1 commits. Step 2 is resumable: when it fails (the views
//! behind, a conflict) or the process dies before it, `close_recorded_at` stays unset and
//! the workers finish it within a minute ([`finish_closings`], which also withdraws a
//! listing registered by a request in flight as the account closed). Handlers run the whole
//! of it in a task of its own, so a client that hangs up does not cut it short.

use std::collections::HashMap;
use std::time::Duration;

use carrot_domain::account::{Account, AccountCommand, AccountError};
use carrot_domain::listing::{Listing, ListingCommand, ListingError, ListingStatus};
use carrot_domain::metadata::{ACTOR, CAUSATION_ID};
use carrot_domain::{Actor, UserId};
use carrot_projections::log::log_head;
use carrot_projections::personal;
use carrot_projections::postgres::Db;
use carrot_projections::views::consistency::{wait_for, WaitBound};
use carrot_projections::views::mypage::{self, OpenTrade, MYPAGE};
use carrot_projections::write_side::{CommandError, WriteSide};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

/// How long closing waits for MyPage to have read the whole log before it looks.
const CATCH_UP: Duration = Duration::from_secs(5);

/// Why an account was not closed.
#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    /// The person is still in these trades.
    #[error("the account is still in {} open trade(s)", .0.len())]
    OpenTrades(Vec<OpenTrade>),
    /// MyPage is too far behind the log to tell.
    #[error("the views are catching up; try again shortly")]
    Lagging,
    /// No such account, or it is closed already.
    #[error("no such open account")]
    NotFound,
    /// The database failed us.
    #[error("closing an account: {0}")]
    Database(#[from] sqlx::Error),
    /// A command of the closing failed.
    #[error("closing an account: {0}")]
    Command(String),
}

/// The username a closed account keeps: `#` and the hex SHA-256 of the name. No valid
/// username starts with `#`, so the row never matches a login; signup looks it up to refuse
/// the old name.
pub fn tombstone(username: &str) -> String {
    let digest = Sha256::digest(username.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("#{hex}")
}

/// Holds `username` for the caller's transaction: a signup under it and the closing of its
/// account happen one after the other, so a name being closed is never signed up again.
pub async fn lock_username(conn: &mut PgConnection, username: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('carrot_username:' || $1, 0))")
        .bind(username)
        .execute(conn)
        .await?;
    Ok(())
}

/// Waits until MyPage has read every event committed before now.
async fn caught_up(pool: &Db) -> Result<(), CloseError> {
    let Some(head) = log_head(pool).await? else {
        return Ok(());
    };
    let bound = WaitBound {
        timeout: CATCH_UP,
        idle_poll: Duration::from_millis(50),
    };
    match wait_for(pool, &[MYPAGE], head, bound).await? {
        true => Ok(()),
        false => Err(CloseError::Lagging),
    }
}

/// The trades that keep `user` from closing, MyPage caught up with the log first.
pub async fn open_trades(pool: &Db, user: Uuid) -> Result<Vec<OpenTrade>, CloseError> {
    caught_up(pool).await?;
    Ok(mypage::open_trades(pool, user).await?)
}

/// Closes `user`'s account, asked by `by` (the person or an operator). Returns the sessions
/// it revoked, with their expiries (the caller's process forgets them at once; the others
/// read them within a second).
pub async fn close(
    pool: &Db,
    write: &WriteSide,
    user: Uuid,
    by: Uuid,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, CloseError> {
    let open = open_trades(pool, user).await?;
    if !open.is_empty() {
        return Err(CloseError::OpenTrades(open));
    }
    write.forget_sealing_key(user);
    let revoked = shut(pool, user, by).await?;
    // Closed from here on. What is left (withdrawals, the event) the worker finishes if it
    // cannot be done now.
    if let Err(e) = record(pool, write, user, by).await {
        tracing::warn!(%user, error = %e, "account closed; the worker will record it");
    }
    Ok(revoked)
}

/// Step 1, one transaction: the key, the sessions, the account row, the snapshots and the
/// idempotency keys.
async fn shut(pool: &Db, user: Uuid, by: Uuid) -> Result<Vec<(Uuid, DateTime<Utc>)>, CloseError> {
    let mut tx = pool.begin().await?;
    let username: Option<String> = sqlx::query_scalar(
        "SELECT username FROM users WHERE user_id = $1 AND closed_at IS NULL FOR UPDATE",
    )
    .bind(user)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(username) = username else {
        return Err(CloseError::NotFound);
    };
    lock_username(&mut tx, &username).await?;
    personal::destroy(&mut tx, user).await?;
    let revoked = super::sessions::revoke_every(&mut tx, user).await?;
    sqlx::query(
        "UPDATE users SET username = $2, password_hash = '', display_name = NULL,
                closed_at = now(), closed_by = $3
          WHERE user_id = $1",
    )
    .bind(user)
    .bind(tombstone(&username))
    .bind(by)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "DELETE FROM aggregate_snapshots WHERE aggregate_type = 'listing'
            AND payload ->> 'seller_id' = $1",
    )
    .bind(user.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1")
        .bind(user)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(revoked)
}

/// Step 2, each part done at most once however often it runs: the listings withdrawn,
/// `AccountClosed` appended, the row marked recorded.
async fn record(pool: &Db, write: &WriteSide, user: Uuid, by: Uuid) -> Result<(), CloseError> {
    let metadata = HashMap::from([
        (ACTOR.to_owned(), by.to_string()),
        (CAUSATION_ID.to_owned(), format!("close:{user}")),
    ]);
    caught_up(pool).await?;
    let seller = UserId::from_uuid(user);
    for listing in mypage::available_listings(pool, user).await? {
        let withdraw = ListingCommand::WithdrawListing { actor: seller };
        match write
            .execute::<Listing>(&listing.to_string(), withdraw, metadata.clone())
            .await
        {
            // Withdrawn, or no longer available (sold or withdrawn meanwhile): either way off sale.
            Ok(_) | Err(CommandError::Refused(ListingError::NotAvailable(_))) => {}
            Err(e) => return Err(CloseError::Command(e.to_string())),
        }
    }
    let closing = AccountCommand::CloseAccount {
        user_id: seller,
        by: Actor::User(UserId::from_uuid(by)),
    };
    match write
        .execute::<Account>(&user.to_string(), closing, metadata)
        .await
    {
        Ok(_) | Err(CommandError::Refused(AccountError::AlreadyClosed)) => {}
        Err(e) => return Err(CloseError::Command(e.to_string())),
    }
    sqlx::query(
        "UPDATE users SET close_recorded_at = coalesce(close_recorded_at, now())
          WHERE user_id = $1",
    )
    .bind(user)
    .execute(pool)
    .await?;
    Ok(())
}

/// Finishes closings: those a process left half-done (shut, not recorded, for longer than
/// a closing takes), and those of the last day with a listing still on sale (registered by
/// a request in flight as the account closed). Each is tried on its own; how many were
/// finished.
pub async fn finish_closings(pool: &Db, write: &WriteSide) -> Result<u64, CloseError> {
    let pending: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "SELECT u.user_id, u.closed_by FROM users u
          WHERE u.closed_at > now() - interval '1 day'
            AND ((u.close_recorded_at IS NULL AND u.closed_at < now() - interval '30 seconds')
                 OR EXISTS (SELECT 1 FROM mypage.listings l
                             WHERE l.seller_id = u.user_id AND l.status = $1))
          ORDER BY u.closed_at LIMIT 100",
    )
    .bind(ListingStatus::Available.name())
    .fetch_all(pool)
    .await?;
    let mut finished = 0;
    for (user, by) in pending {
        match record(pool, write, user, by.unwrap_or(user)).await {
            Ok(()) => finished += 1,
            Err(e) => tracing::warn!(%user, error = %e, "finishing an account's closing failed"),
        }
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tombstone_is_no_username_and_the_same_for_the_same_name() {
        let stone = tombstone("alice_1");
        assert!(stone.starts_with('#') && stone.len() == 65);
        assert_eq!(stone, tombstone("alice_1"));
        assert_ne!(stone, tombstone("alice_2"));
        assert!(!stone.contains("alice"));
    }
}
