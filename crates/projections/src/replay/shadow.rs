//! The shadow a rebuild, a verification or the saga's recovery fills: a copy of a
//! subscriber's tables in a schema of its own, filled from the log with the subscriber's
//! own code, and the live checkpoint it is measured against.

use sqlx::PgConnection;

use super::aside::Shadow;
use super::{ReplayError, BATCH};
use crate::log::shared::read;
use crate::log::subscriber::{Filling, Subscriber};
use crate::log::{read_between, Checkpoint, StoredEvent};
use crate::postgres::{quote_ident, Db};

/// How far a shadow has been filled.
#[derive(Debug, Default)]
pub(crate) struct Filled {
    pub(crate) checkpoint: Checkpoint,
    pub(crate) applied: u64,
}

/// A shadow's tables, and the indexes left to build once it is filled.
pub(crate) struct Prepared {
    /// The live view's tables, which the shadow copies.
    pub(crate) tables: Vec<String>,
    /// The statements that build the indexes no write needs (and make constraints of
    /// those that back one), in order, for [`build_indexes`].
    pub(crate) deferred: Vec<String>,
}

/// A fresh shadow schema with the live view's tables: columns, defaults and checks, every
/// primary key, unique constraint and unique index under the live one's name (an upsert's
/// conflict target is one of those), and the other indexes' definitions, to build once
/// the shadow is filled: one pass over a filled table builds an index for a fraction of
/// what a million row-by-row updates cost (the catalog's search keys above all, hundreds
/// of entries per listing). The unique ones named in `late` are left for then too
/// ([`Subscriber::unique_after_fill`](crate::log::subscriber::Subscriber::unique_after_fill)).
/// The names are the live ones, so after a swap a migration finds the indexes it created.
pub(crate) async fn prepare(
    pool: &Db,
    live: &str,
    shadow: &str,
    late: &[&str],
) -> Result<Prepared, sqlx::Error> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 ORDER BY tablename",
    )
    .bind(live)
    .fetch_all(pool)
    .await?;
    // Each index: its table, name, definition on the shadow, the constraint it backs.
    let indexes: Vec<(String, String, String, Option<String>, bool)> = sqlx::query_as(
        "SELECT t.relname::text, c.relname::text,
                replace(pg_get_indexdef(i.indexrelid), ' ON ' || quote_ident($1) || '.',
                        ' ON ' || quote_ident($2) || '.'),
                (SELECT CASE k.contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END
                   FROM pg_constraint k
                  WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u')),
                i.indisunique
           FROM pg_index i
           JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1
          ORDER BY 1, 2",
    )
    .bind(live)
    .bind(shadow)
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
            "CREATE TABLE {s}.{t} (LIKE {l}.{t} INCLUDING ALL EXCLUDING INDEXES)",
            s = quote_ident(shadow),
            l = quote_ident(live),
            t = quote_ident(table)
        ))
        .execute(&mut *tx)
        .await?;
    }
    let (mut now, mut deferred) = (Vec::new(), Vec::new());
    for (table, index, definition, constraint, unique) in indexes {
        let statements = if unique && !late.contains(&index.as_str()) {
            &mut now
        } else {
            &mut deferred
        };
        statements.push(definition);
        if let Some(kind) = constraint {
            statements.push(format!(
                "ALTER TABLE {s}.{t} ADD CONSTRAINT {i} {kind} USING INDEX {i}",
                s = quote_ident(shadow),
                t = quote_ident(&table),
                i = quote_ident(&index),
            ));
        }
    }
    for statement in &now {
        sqlx::query(statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Prepared { tables, deferred })
}

/// Builds the indexes [`prepare`] left for after the fill (its statements name the
/// shadow).
pub(crate) async fn build_indexes(pool: &Db, statements: &[String]) -> Result<(), sqlx::Error> {
    for statement in statements {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

pub(crate) async fn total_events(pool: &Db) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM public.events")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn live_checkpoint(pool: &Db, live: &str) -> Result<Checkpoint, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    live_checkpoint_in(&mut conn, live).await
}

pub(super) async fn live_checkpoint_in(
    conn: &mut PgConnection,
    live: &str,
) -> Result<Checkpoint, sqlx::Error> {
    Ok(stored_checkpoint(conn, live)
        .await?
        .unwrap_or(Checkpoint::ORIGIN))
}

/// The subscriber's checkpoint, `None` when it has no row.
pub(crate) async fn stored_checkpoint(
    conn: &mut PgConnection,
    live: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM public.subscription_checkpoints
          WHERE subscriber = $1",
    )
    .bind(live)
    .fetch_optional(conn)
    .await?;
    row.map(|row| checkpoint_of(Some(row))).transpose()
}

/// Locks the view's checkpoint row (creating it at the origin for a view never run), so
/// the live runner pauses; returns where the live view stands.
pub(crate) async fn lock_checkpoint(
    tx: &mut PgConnection,
    live: &str,
) -> Result<Checkpoint, sqlx::Error> {
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

/// Applies batches to the shadow, each in a transaction of its own (but for what a view's
/// [`Filling`] writes aside, in transactions of their own), until the log (or `upto`) is
/// exhausted. The next batch is read on a connection of its own while this one
/// is applied: the log's rows and their decoding come in while the view's writes go out,
/// on a machine of two cores the difference between one busy and both.
pub(crate) async fn fill(
    pool: &Db,
    view: &dyn Subscriber,
    shadow: &str,
    state: &mut Filled,
    upto: Option<Checkpoint>,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(), ReplayError> {
    let types = view.aggregate_types();
    let target = Shadow::new(pool, shadow);
    let mut filling = view.filling(&target);
    let filled = async {
        let mut events = read_batch(pool.clone(), state.checkpoint, upto, types).await?;
        while let Some(last) = events.last().map(|e| e.checkpoint) {
            let applying = async {
                let mut tx = target.begin().await?;
                let filling = filling.as_mut();
                apply(&mut tx, view, &events, state, filling).await?;
                tx.commit().await?;
                Ok::<_, ReplayError>(())
            };
            // A task of its own, so the read's decoding can run on the other core.
            let reading = tokio::spawn(read_batch(pool.clone(), last, upto, types));
            let applied = applying.await;
            let next = reading.await;
            applied?;
            progress(state.applied);
            events = next??;
        }
        Ok::<_, ReplayError>(())
    }
    .await;
    let Some(filling) = filling.as_mut() else {
        return filled;
    };
    if filled.is_err() {
        // The writes aside end before a failed fill returns, its caller's lock still held;
        // the fill's own error is the one to report.
        let _ = filling.written().await;
        return filled;
    }
    Ok(filling.finish().await?)
}

/// The next batch after `after` (up to `upto`, if given), with the payloads of the types
/// the view reads (`None`: all).
async fn read_batch(
    pool: Db,
    after: Checkpoint,
    upto: Option<Checkpoint>,
    types: Option<&'static [&'static str]>,
) -> Result<Vec<StoredEvent>, ReplayError> {
    // One statement, one snapshot: no transaction needed around it.
    let mut conn = pool.acquire().await?;
    Ok(match upto {
        Some(upto) => read_between(&mut conn, after, upto, BATCH).await?,
        None => read(&mut conn, after, BATCH, types).await?,
    })
}

/// Applies a batch in `tx`, which points at the shadow ([`Shadow::begin`], or
/// [`search_shadow`](super::aside::search_shadow) for the swap's transaction), the
/// fill's way when it has one.
pub(super) async fn apply(
    tx: &mut PgConnection,
    view: &dyn Subscriber,
    events: &[StoredEvent],
    state: &mut Filled,
    filling: Option<&mut Box<dyn Filling>>,
) -> Result<(), ReplayError> {
    match filling {
        Some(filling) => filling.apply(tx, events).await?,
        None => view.apply(tx, events).await?,
    }
    if let Some(last) = events.last() {
        state.checkpoint = last.checkpoint;
    }
    state.applied += events.len() as u64;
    Ok(())
}
