//! Keeping the log's order when the database moves to another cluster.
//!
//! The order is `(transaction_id, global_position)`, where `transaction_id` is the writing
//! transaction's id plus an offset kept in the database (`log_transaction_id()`, migration
//! 40). A cluster's transaction counter is its own: a database restored from `pg_dump` (or
//! copied by logical replication) into a cluster whose counter stands behind the log's head
//! would give new events ids below old ones, so they would sort before events written long
//! before them, and every subscriber, already past those ids, would skip them. Physical
//! copies (`pg_basebackup`, point-in-time recovery, `pg_upgrade`) keep the counter.
//!
//! So every start checks, after migrations, that the next transaction of this cluster
//! orders after the log's head. If not, it re-bases: one transaction, under an advisory
//! lock (a second process starting at once waits, then finds the order safe), replaces the
//! offset so that the next transaction orders right after the head, records the move in
//! `log_moves` and logs it at warn level. The offset is written into the functions' bodies,
//! so a later dump carries it and a second move re-bases on top of it. Nothing already in
//! the log changes: checkpoints and consistency tokens issued before the move keep their
//! meaning, and everything written after it sorts after them.

use sqlx::Row;

use super::Db;

/// Why the log's order could not be made safe.
#[derive(Debug, thiserror::Error)]
pub enum LogOrderError {
    /// Talking to the database failed.
    #[error("checking the log's order: {0}")]
    Database(#[from] sqlx::Error),
    /// The order needs a re-basing this role may not make.
    #[error(
        "this cluster's transaction counter ({next}) is behind the event log's head ({head}): \
         the database was restored or copied into another cluster, and events written now \
         would sort before older ones. Re-basing the order failed ({cause}); run `carrot \
         migrate` as the database's owner, which re-bases it (docs/OPERATIONS.md, \"Moving \
         Carrot\")"
    )]
    CannotRebase {
        /// The cluster's next transaction id, offset applied.
        next: String,
        /// The log's newest transaction id.
        head: String,
        /// Why it failed.
        cause: sqlx::Error,
    },
}

/// What the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOrder {
    /// New events already order after the log (or the log is empty).
    Safe,
    /// The order was re-based: the offset changed from `before` to `after`.
    Rebased {
        /// The offset before (as text: it is a numeric).
        before: String,
        /// The offset now.
        after: String,
    },
}

/// Where the cluster's next transaction stands against the log's head, and the offset that
/// puts every transaction still running, and every later one, after it (from the oldest
/// running transaction: one that began before the re-base may append after it). The
/// arithmetic is the database's: ids are 64-bit unsigned.
const BEHIND: &str = "SELECT next_xid::text, offset_now::text, head::text, head_position,
                head IS NOT NULL AND next_xid + offset_now <= head AS behind,
                (head + 1 - oldest)::text AS offset_after
           FROM (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::numeric AS next_xid,
                        pg_snapshot_xmin(pg_current_snapshot())::text::numeric AS oldest,
                        public.log_offset() AS offset_now,
                        h.transaction_id::text::numeric AS head,
                        h.global_position AS head_position
                   FROM (SELECT 1) one
                   LEFT JOIN LATERAL (
                        SELECT transaction_id, global_position FROM public.events
                         ORDER BY transaction_id DESC, global_position DESC LIMIT 1) h
                     ON true) s";

/// The advisory lock key (`hashtext('carrot_log_order')`, fixed).
const LOCK: &str = "carrot_log_order";

/// Checks that the next transaction orders after the log's head; re-bases the order if not.
pub async fn ensure(db: &Db) -> Result<LogOrder, LogOrderError> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(LOCK)
        .execute(&mut *tx)
        .await?;
    // Read after the lock: a process that re-based meanwhile has committed its offset.
    // The arithmetic is the database's (numeric): ids are 64-bit unsigned.
    let row = sqlx::query(BEHIND).fetch_one(&mut *tx).await?;
    if !row.try_get::<bool, _>("behind")? {
        tx.rollback().await?;
        return Ok(LogOrder::Safe);
    }
    // Behind: wait for every transaction that may still append (a process already
    // connected to this database) and keep new ones out until the new offset is in place,
    // then measure again: an id handed out before the lock must not land below the head.
    sqlx::query("LOCK TABLE public.events IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let row = sqlx::query(BEHIND).fetch_one(&mut *tx).await?;
    if !row.try_get::<bool, _>("behind")? {
        tx.rollback().await?;
        return Ok(LogOrder::Safe);
    }
    let move_ = Move {
        next_xid: row.try_get("next_xid")?,
        head: row
            .try_get::<Option<String>, _>("head")?
            .unwrap_or_default(),
        head_position: row.try_get("head_position")?,
        before: row.try_get("offset_now")?,
        // Written into a function's body below: only ever a number the database printed.
        after: row
            .try_get::<Option<String>, _>("offset_after")?
            .and_then(|o| o.parse::<i128>().ok())
            .map(|o| o.to_string())
            .unwrap_or_default(),
        // For the record only, and only when moving: read outside the transaction, where a
        // role without the right to read it would abort it.
        system: system_identifier(db).await,
    };
    if let Err(cause) = rebase(&mut tx, &move_).await {
        return Err(LogOrderError::CannotRebase {
            next: move_.next_xid,
            head: move_.head,
            cause,
        });
    }
    tx.commit().await?;
    tracing::warn!(
        cluster_next_xid = %move_.next_xid,
        log_head = %move_.head,
        offset_before = %move_.before,
        offset_after = %move_.after,
        "the event log was moved to a cluster whose transaction counter is behind it; new \
         events are ordered after its head (docs/OPERATIONS.md, \"Moving Carrot\")"
    );
    Ok(LogOrder::Rebased {
        before: move_.before,
        after: move_.after,
    })
}

/// A re-basing: where the cluster's counter and the log's head stood, and the offsets.
struct Move {
    next_xid: String,
    head: String,
    head_position: Option<i64>,
    before: String,
    after: String,
    system: Option<String>,
}

/// Replaces the three functions with the new offset written into their bodies, and
/// records the move.
async fn rebase(tx: &mut sqlx::PgConnection, move_: &Move) -> Result<(), sqlx::Error> {
    let offset = &move_.after;
    if offset.is_empty() {
        return Err(sqlx::Error::Protocol("no offset to re-base on".into()));
    }
    for statement in [
        format!(
            "CREATE OR REPLACE FUNCTION public.log_offset() RETURNS numeric
                 LANGUAGE sql STABLE AS 'SELECT {offset}::numeric'"
        ),
        format!(
            "CREATE OR REPLACE FUNCTION public.log_transaction_id() RETURNS xid8
                 LANGUAGE sql VOLATILE
                 AS 'SELECT (pg_current_xact_id()::text::numeric + {offset})::text::xid8'"
        ),
        format!(
            "CREATE OR REPLACE FUNCTION public.log_horizon() RETURNS xid8
                 LANGUAGE sql STABLE
                 AS 'SELECT (pg_snapshot_xmin(pg_current_snapshot())::text::numeric + {offset})::text::xid8'"
        ),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    sqlx::query(
        "INSERT INTO public.log_moves (system_identifier, cluster_next_xid, log_head,
                                       head_position, offset_before, offset_after)
         VALUES ($1, $2::numeric, $3::numeric, $4, $5::numeric, $6::numeric)",
    )
    .bind(&move_.system)
    .bind(&move_.next_xid)
    .bind(&move_.head)
    .bind(move_.head_position)
    .bind(&move_.before)
    .bind(offset)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The cluster's system identifier, for the record; `None` where this role may not read it.
async fn system_identifier(db: &Db) -> Option<String> {
    sqlx::query_scalar("SELECT system_identifier::text FROM pg_control_system()")
        .fetch_one(db)
        .await
        .ok()
}
