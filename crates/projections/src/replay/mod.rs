//! Rebuilding a view from the log, while the live one keeps serving (`carrot replay`).
//!
//! A rebuild creates a shadow schema with the view's tables (`CREATE TABLE ... LIKE`),
//! applies the whole log to it from position zero with the view's own code (its tables are
//! named unqualified; the shadow is first on `search_path`), then in one transaction: locks
//! the view's checkpoint row (the live runner skips a locked row, so it pauses), applies the
//! last events, swaps the schemas by renaming them, drops the old one and moves the
//! checkpoint to where the rebuild stopped. Readers name tables by schema and see the new
//! ones from the next statement on; the live runner continues from the rebuilt checkpoint.
//!
//! Verifying rebuilds aside the same way, but never past the live view's checkpoint; then,
//! holding the checkpoint row only long enough to bring the copy to exactly that checkpoint
//! and take a snapshot, compares the two table by table in that read-only snapshot while
//! the live view goes on. Nothing is swapped.
//!
//! One rebuild or verification per view runs at a time (an advisory lock; a second is
//! refused with `Busy`). A subscriber that is not a pure fold of the log (the saga, whose
//! batches decide effects) says so, and the engine refuses it; the saga's recovery
//! (`settlement/recover.rs`) fills a shadow the same way and repairs instead of swapping.
//!
//! There is no `--from`: a view is a pure fold of the whole log, so a rebuild starts at zero
//! (it runs at tens of thousands of events per second), and resuming from a position is
//! what the live runner does anyway.

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::{read_after, Checkpoint};
use crate::postgres::quote_ident;
use crate::postgres::Db;

mod aside;
mod shadow;
mod verify;

use aside::search_shadow;
pub use aside::{Aside, Shadow};
use shadow::apply;
pub(crate) use shadow::{
    build_indexes, fill, lock_checkpoint, prepare, stored_checkpoint, total_events, Filled,
    Prepared,
};
pub(crate) use verify::compare;
pub use verify::verify;

/// Events applied per transaction while rebuilding: large enough to be fast (10,000 against
/// 2,000 took a tenth off a MyPage rebuild), short enough not to hold the log's horizon back
/// for long. Two batches are in memory at once (one applied, the next read), and what a
/// view writes aside from the one before (the catalog's listings, the timeline's entries,
/// up to twice MyPage's 50,000 kept totals): some tens of megabytes of a rebuild's
/// resident set.
const BATCH: i64 = 10_000;

/// Why a rebuild failed; the shadow is left for the next attempt to drop.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Talking to the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The task reading the next batch ahead panicked or was cut off.
    #[error("reading the log ahead: {0}")]
    ReadAhead(#[from] tokio::task::JoinError),
    /// The view's code refused an event.
    #[error("applying the log: {0}")]
    Apply(#[from] ApplyError),
    /// Another rebuild or verification of the same view is running.
    #[error("a rebuild or verification of {0} is already running; wait for it to finish")]
    Busy(&'static str),
    /// The live checkpoint moved while it was held (verification compares nothing then).
    #[error("the live checkpoint moved from {target} to {seen} while held; try again")]
    Moved {
        /// Where it was held.
        target: Checkpoint,
        /// Where the snapshot saw it.
        seen: Checkpoint,
    },
    /// The saga holds events in quarantine, which a recovery cannot apply for it.
    #[error(
        "the saga holds {0} event(s) in quarantine, which may revive or close outbox commands \
         that a recovery does not replay; apply them first (`carrot quarantine settlement \
         --retry`, after the fix), then recover"
    )]
    Held(i64),
    /// The subscriber is not a pure fold of the log.
    #[error("{view} cannot be rebuilt by replay: {why}")]
    NotRebuildable {
        /// The subscriber.
        view: &'static str,
        /// Why.
        why: &'static str,
    },
}

/// One rebuild or verification per view at a time, cluster-wide: a session advisory lock
/// on a connection of its own, released when it is closed (or the process dies).
pub(crate) struct Exclusive(sqlx::PgConnection);

impl Exclusive {
    async fn take(pool: &Db, view: &dyn Subscriber) -> Result<Self, ReplayError> {
        if let Some(why) = view.not_rebuildable() {
            return Err(ReplayError::NotRebuildable {
                view: view.name(),
                why,
            });
        }
        Self::take_any(pool, view.name()).await
    }

    /// The lock for `name`, whatever kind of subscriber it is (the saga's recovery).
    pub(crate) async fn take_any(pool: &Db, name: &'static str) -> Result<Self, ReplayError> {
        let mut conn = PgConnection::connect_with(&pool.pool().connect_options()).await?;
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("carrot_replay:{name}"))
                .fetch_one(&mut conn)
                .await?;
        if taken {
            Ok(Exclusive(conn))
        } else {
            Err(ReplayError::Busy(name))
        }
    }

    pub(crate) async fn release(self) {
        // Closing the session releases its advisory locks.
        if let Err(e) = self.0.close().await {
            tracing::warn!(error = %e, "closing the replay lock's connection failed");
        }
    }
}

/// How far a rebuild has come.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The view.
    pub view: &'static str,
    /// Events applied so far.
    pub applied: u64,
    /// Events in the log when the rebuild started (a moving target, roughly).
    pub total: u64,
    /// Since the rebuild started.
    pub elapsed: Duration,
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy)]
pub struct Rebuilt {
    /// The view.
    pub view: &'static str,
    /// Events applied.
    pub events: u64,
    /// Where the rebuilt view stands.
    pub checkpoint: Checkpoint,
    /// How long it took.
    pub elapsed: Duration,
}

impl Rebuilt {
    /// Events applied per second.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Which side of a comparison a row is only on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// In the live view, not in the rebuild.
    LiveOnly,
    /// In the rebuild, not in the live view.
    RebuiltOnly,
}

/// A row the live view and a rebuild disagree on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The table, qualified by the view's schema.
    pub table: String,
    /// Where the row is.
    pub side: Side,
    /// The row.
    pub row: Value,
}

/// Rebuilds `view` from position zero and swaps it in; the live view serves meanwhile.
/// Refused while another rebuild or verification of it runs.
pub async fn rebuild(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Rebuilt, ReplayError> {
    let exclusive = Exclusive::take(pool, view).await?;
    let rebuilt = rebuild_alone(pool, view, progress).await;
    exclusive.release().await;
    rebuilt
}

async fn rebuild_alone(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Rebuilt, ReplayError> {
    let started = Instant::now();
    let live = view.name();
    let shadow = format!("{live}__rebuild");
    let Prepared { tables, deferred } =
        prepare(pool, live, &shadow, view.unique_after_fill()).await?;
    let total = total_events(pool).await?;
    let mut state = Filled::default();
    fill(pool, view, &shadow, &mut state, None, &mut |applied| {
        progress(Progress {
            view: live,
            applied,
            total,
            elapsed: started.elapsed(),
        })
    })
    .await?;
    // Before the lock: the live view goes on meanwhile, and the last events find them.
    build_indexes(pool, &deferred).await?;

    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, live).await?;
    // The last events, under the lock: nothing can slip in between this and the swap.
    search_shadow(&mut tx, &shadow).await?;
    loop {
        let events = read_after(&mut tx, state.checkpoint, BATCH).await?;
        if events.is_empty() {
            break;
        }
        apply(&mut tx, view, &events, &mut state, None).await?;
    }
    let old = format!("{live}__old");
    for statement in [
        format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(&old)),
        format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote_ident(live),
            quote_ident(&old)
        ),
        format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote_ident(&shadow),
            quote_ident(live)
        ),
        format!("DROP SCHEMA {} CASCADE", quote_ident(&old)),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    crate::log::checkpoint::set(&mut tx, live, state.checkpoint, state.applied).await?;
    // The rebuild applied every event, those the live view held in quarantine included.
    sqlx::query("DELETE FROM public.subscription_quarantine WHERE subscriber = $1")
        .bind(live)
        .execute(&mut *tx)
        .await?;
    // Rows kept in memory from the old catalog (the API's listing cache) go with it, at
    // the swap's commit.
    if live == crate::views::catalog::CATALOG {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::views::catalog::CHANGES)
            .bind(format!("{};*", state.checkpoint))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    tracing::info!(
        view = live,
        tables = tables.len(),
        events = state.applied,
        "view rebuilt and swapped in"
    );
    Ok(Rebuilt {
        view: live,
        events: state.applied,
        checkpoint: state.checkpoint,
        elapsed: started.elapsed(),
    })
}
