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
//! batches decide effects) says so, and the engine refuses it.
//!
//! There is no `--from`: a view is a pure fold of the whole log, so a rebuild starts at zero
//! (it runs at tens of thousands of events per second), and resuming from a position is
//! what the live runner does anyway.

use crate::postgres::Db;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::log::{read_after, read_between, Checkpoint, StoredEvent};
use crate::postgres::quote_ident;
use crate::runner::{ApplyError, Subscriber};

/// Events applied per transaction while rebuilding: large enough to be fast, short enough
/// not to hold the log's horizon back for long.
const BATCH: i64 = 2_000;

/// Why a rebuild failed; the shadow is left for the next attempt to drop.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Talking to the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The view's code refused an event.
    #[error("applying the log: {0}")]
    Apply(#[from] ApplyError),
    /// Another rebuild or verification of the same view is running.
    #[error("a rebuild or verification of {0} is already running; wait for it to finish")]
    Busy(&'static str),
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
struct Exclusive(sqlx::PgConnection);

impl Exclusive {
    async fn take(pool: &Db, view: &dyn Subscriber) -> Result<Self, ReplayError> {
        if let Some(why) = view.not_rebuildable() {
            return Err(ReplayError::NotRebuildable {
                view: view.name(),
                why,
            });
        }
        let mut conn = PgConnection::connect_with(&pool.pool().connect_options()).await?;
        let taken: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(format!("carrot_replay:{}", view.name()))
                .fetch_one(&mut conn)
                .await?;
        if taken {
            Ok(Exclusive(conn))
        } else {
            Err(ReplayError::Busy(view.name()))
        }
    }

    async fn release(self) {
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
    progress: &mut dyn FnMut(Progress),
) -> Result<Rebuilt, ReplayError> {
    let exclusive = Exclusive::take(pool, view).await?;
    let rebuilt = rebuild_alone(pool, view, progress).await;
    exclusive.release().await;
    rebuilt
}

async fn rebuild_alone(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut dyn FnMut(Progress),
) -> Result<Rebuilt, ReplayError> {
    let started = Instant::now();
    let live = view.name();
    let shadow = format!("{live}__rebuild");
    let tables = prepare(pool, live, &shadow).await?;
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

    let mut tx = pool.begin().await?;
    lock_checkpoint(&mut tx, live).await?;
    // The last events, under the lock: nothing can slip in between this and the swap.
    loop {
        let events = read_after(&mut tx, state.checkpoint, BATCH).await?;
        if events.is_empty() {
            break;
        }
        apply(&mut tx, view, &shadow, &events, &mut state).await?;
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
    sqlx::query(
        "UPDATE public.subscription_checkpoints
            SET transaction_id = $2::text::xid8, global_position = $3, events_applied = $4,
                updated_at = now(), last_error = NULL, last_error_at = NULL
          WHERE subscriber = $1",
    )
    .bind(live)
    .bind(state.checkpoint.transaction_id.to_string())
    .bind(state.checkpoint.global_position)
    .bind(i64::try_from(state.applied).unwrap_or(i64::MAX))
    .execute(&mut *tx)
    .await?;
    // The rebuild applied every event, those the live view held in quarantine included.
    sqlx::query("DELETE FROM public.subscription_quarantine WHERE subscriber = $1")
        .bind(live)
        .execute(&mut *tx)
        .await?;
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

/// Rebuilds `view` aside and reports every row it disagrees with the live view on.
/// Refused while another rebuild or verification of it runs.
pub async fn verify(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Rebuilt, Vec<Difference>), ReplayError> {
    let exclusive = Exclusive::take(pool, view).await?;
    let verified = verify_alone(pool, view, progress).await;
    exclusive.release().await;
    verified
}

async fn verify_alone(
    pool: &Db,
    view: &dyn Subscriber,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Rebuilt, Vec<Difference>), ReplayError> {
    let started = Instant::now();
    let live = view.name();
    let shadow = format!("{live}__verify");
    let tables = prepare(pool, live, &shadow).await?;
    let total = total_events(pool).await?;
    let mut state = Filled::default();
    // Never past the live checkpoint (which may not move at all if no runner runs).
    loop {
        let target = live_checkpoint(pool, live).await?;
        let before = state.applied;
        fill(
            pool,
            view,
            &shadow,
            &mut state,
            Some(target),
            &mut |applied| {
                progress(Progress {
                    view: live,
                    applied,
                    total,
                    elapsed: started.elapsed(),
                })
            },
        )
        .await?;
        if state.applied == before {
            break;
        }
    }
    // Pause the live view only to bring the copy level with it, and take a snapshot in
    // which both stand at one checkpoint; then let it go on. The comparison runs in that
    // read-only snapshot, which holds no lock and no transaction id, so no subscriber (the
    // saga included) waits for it.
    let mut pause = pool.begin().await?;
    let target = lock_checkpoint(&mut pause, live).await?;
    fill(pool, view, &shadow, &mut state, Some(target), &mut |_| {}).await?;
    let mut snapshot = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *snapshot)
        .await?;
    let seen = live_checkpoint_in(&mut snapshot, live).await?;
    pause.rollback().await?;
    debug_assert_eq!(seen, target);
    let mut differences = Vec::new();
    for table in &tables {
        differences.extend(compare(&mut snapshot, live, &shadow, table).await?);
    }
    snapshot.rollback().await?;
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(&shadow)
    ))
    .execute(pool)
    .await?;
    Ok((
        Rebuilt {
            view: live,
            events: state.applied,
            checkpoint: state.checkpoint,
            elapsed: started.elapsed(),
        },
        differences,
    ))
}

/// How far a shadow has been filled.
#[derive(Debug, Default)]
struct Filled {
    checkpoint: Checkpoint,
    applied: u64,
}

/// A fresh shadow schema with the live view's tables (indexes and constraints included);
/// returns the table names.
async fn prepare(pool: &Db, live: &str, shadow: &str) -> Result<Vec<String>, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(live)
    .fetch_all(pool)
    .await?;
    let mut tx = pool.begin().await?;
    sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(shadow)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!("CREATE SCHEMA {}", quote_ident(shadow)))
        .execute(&mut *tx)
        .await?;
    for table in &tables {
        sqlx::query(&format!(
            "CREATE TABLE {s}.{t} (LIKE {l}.{t} INCLUDING ALL)",
            s = quote_ident(shadow),
            l = quote_ident(live),
            t = quote_ident(table)
        ))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(tables)
}

async fn total_events(pool: &Db) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM public.events")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn live_checkpoint(pool: &Db, live: &str) -> Result<Checkpoint, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    live_checkpoint_in(&mut conn, live).await
}

async fn live_checkpoint_in(
    conn: &mut PgConnection,
    live: &str,
) -> Result<Checkpoint, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM public.subscription_checkpoints
          WHERE subscriber = $1",
    )
    .bind(live)
    .fetch_optional(conn)
    .await?;
    checkpoint_of(row)
}

/// Locks the view's checkpoint row (creating it at the origin for a view never run), so
/// the live runner pauses; returns where the live view stands.
async fn lock_checkpoint(tx: &mut PgConnection, live: &str) -> Result<Checkpoint, sqlx::Error> {
    sqlx::query(
        "INSERT INTO public.subscription_checkpoints (subscriber) VALUES ($1)
         ON CONFLICT (subscriber) DO NOTHING",
    )
    .bind(live)
    .execute(&mut *tx)
    .await?;
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM public.subscription_checkpoints
          WHERE subscriber = $1 FOR UPDATE",
    )
    .bind(live)
    .fetch_optional(&mut *tx)
    .await?;
    checkpoint_of(row)
}

fn checkpoint_of(row: Option<(String, i64)>) -> Result<Checkpoint, sqlx::Error> {
    match row {
        None => Ok(Checkpoint::ORIGIN),
        Some((tx, pos)) => Ok(Checkpoint {
            transaction_id: tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position: pos,
        }),
    }
}

/// Applies batches to the shadow, each in a transaction of its own, until the log (or
/// `upto`) is exhausted.
async fn fill(
    pool: &Db,
    view: &dyn Subscriber,
    shadow: &str,
    state: &mut Filled,
    upto: Option<Checkpoint>,
    progress: &mut dyn FnMut(u64),
) -> Result<(), ReplayError> {
    loop {
        let mut tx = pool.begin().await?;
        let events = match upto {
            Some(upto) => read_between(&mut tx, state.checkpoint, upto, BATCH).await?,
            None => read_after(&mut tx, state.checkpoint, BATCH).await?,
        };
        if events.is_empty() {
            tx.rollback().await?;
            return Ok(());
        }
        apply(&mut tx, view, shadow, &events, state).await?;
        tx.commit().await?;
        progress(state.applied);
    }
}

async fn apply(
    tx: &mut PgConnection,
    view: &dyn Subscriber,
    shadow: &str,
    events: &[StoredEvent],
    state: &mut Filled,
) -> Result<(), ReplayError> {
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(format!("{}, public", quote_ident(shadow)))
        .execute(&mut *tx)
        .await?;
    view.apply(tx, events).await?;
    if let Some(last) = events.last() {
        state.checkpoint = last.checkpoint;
    }
    state.applied += events.len() as u64;
    Ok(())
}

/// The rows of `table` on one side only, both ways.
async fn compare(
    tx: &mut PgConnection,
    live: &str,
    shadow: &str,
    table: &str,
) -> Result<Vec<Difference>, sqlx::Error> {
    let (l, s, t) = (quote_ident(live), quote_ident(shadow), quote_ident(table));
    let mut out = Vec::new();
    for (side, from, minus) in [(Side::LiveOnly, &l, &s), (Side::RebuiltOnly, &s, &l)] {
        let rows: Vec<Value> = sqlx::query_scalar(&format!(
            "SELECT to_jsonb(d) FROM (SELECT * FROM {from}.{t} EXCEPT ALL SELECT * FROM {minus}.{t}) d"
        ))
        .fetch_all(&mut *tx)
        .await?;
        out.extend(rows.into_iter().map(|row| Difference {
            table: format!("{live}.{table}"),
            side,
            row,
        }));
    }
    Ok(out)
}
