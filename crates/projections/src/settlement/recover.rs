//! Recovering the saga's state from the log: the operator's tool the replay engine's
//! refusal points to (`carrot saga recover [--apply]`).
//!
//! The saga is not rebuilt and swapped like a view (docs/DESIGN.md, "Rebuilding the
//! saga"): its outbox is a ledger of effects already run, and the timer's and
//! reconciler's tables record what no event says. But the part of its state that *is* a
//! fold of the log can be recomputed, and its decisions are deterministic, each under a
//! deterministic command id. So recovery folds the whole log into a shadow schema with the
//! saga's own code (the shadow's outbox takes the decisions; nothing is executed) while the
//! saga runs, then pauses the saga (an advisory lock: no transaction id is held, so no
//! other subscriber waits), folds the last events, and compares:
//! - its fold (`trades`, `listings`, `payments`): rows that differ are reported, and with
//!   `apply` those rows (only those) are replaced by the recomputed ones;
//! - `deadlines` the log implies that the live saga lacks: added with `apply` (one that
//!   already fired and found nothing to do shows here too; firing it again decides a
//!   command under an id already taken, which changes nothing);
//! - commands the log decides that the outbox never had: queued with `apply`. Every other
//!   decision is already in the outbox under the same id and is left as it is, so no effect
//!   runs twice; a command queued again for an effect that did happen (a row lost by hand)
//!   finds its aggregate already there and is moot, and the gateway answers its key with
//!   the first outcome.
//!
//! The ledger (the outbox's existing rows, reconciliation's tables) is never touched. A
//! missing checkpoint row (which the runner refuses to re-create at the origin over live
//! state) is restored where the recovered state stands. Everything the saga held in
//! quarantine is part of the recomputed fold, so its quarantine is cleared with `apply`; a
//! log event the saga still cannot read fails the recovery, naming it.

use serde_json::Value;
use sqlx::PgConnection;

use super::{SettlementSaga, SETTLEMENT};
use crate::log::checkpoint::Paused;
use crate::log::Checkpoint;
use crate::postgres::{quote_ident, Db};
use crate::replay::{
    compare, fill, prepare, stored_checkpoint, total_events, Difference, Exclusive, Filled,
    Progress, ReplayError, Side,
};

/// The saga's tables that are a pure fold of the log, with their keys.
const FOLD: [(&str, &str); 3] = [
    ("trades", "request_id"),
    ("listings", "listing_id"),
    ("payments", "payment_id"),
];
/// Where the log is folded aside.
const SHADOW: &str = "settlement__recover";

/// What a recovery found (and, applied, repaired).
#[derive(Debug, Clone)]
pub struct Recovery {
    /// Where the recomputed state stands (the live checkpoint, or the log's end when the
    /// checkpoint row was missing).
    pub checkpoint: Checkpoint,
    /// Events folded.
    pub events: u64,
    /// The checkpoint row was missing.
    pub checkpoint_missing: bool,
    /// Rows of the fold the live saga and the log disagree on.
    pub state: Vec<Difference>,
    /// Deadlines the log implies that the live saga lacks.
    pub deadlines: Vec<Value>,
    /// Ids of commands the log decides that the outbox never had.
    pub commands: Vec<String>,
    /// Whether the repair was made.
    pub applied: bool,
    /// How long the live saga was paused (the last events, the comparison, the repair).
    pub paused_for: std::time::Duration,
}

impl Recovery {
    /// Whether the live saga agrees with the log.
    pub fn is_clean(&self) -> bool {
        !self.checkpoint_missing
            && self.state.is_empty()
            && self.deadlines.is_empty()
            && self.commands.is_empty()
    }
}

/// Recomputes the saga's state from the log and compares it with the live one; with
/// `apply`, repairs the live state. One at a time (the replay engine's lock for
/// `settlement`).
pub async fn recover(
    pool: &Db,
    saga: &SettlementSaga,
    apply: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Recovery, ReplayError> {
    let exclusive = Exclusive::take_any(pool, SETTLEMENT).await?;
    let recovered = recover_alone(pool, saga, apply, progress).await;
    // Dropped while still exclusive: a recovery starting next cannot lose its own shadow.
    let dropped = sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(SHADOW)
    ))
    .execute(pool)
    .await;
    if let Err(e) = dropped {
        tracing::warn!(error = %e, "could not drop the recovery's shadow schema");
    }
    exclusive.release().await;
    recovered
}

async fn recover_alone(
    pool: &Db,
    saga: &SettlementSaga,
    apply: bool,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Recovery, ReplayError> {
    let started = std::time::Instant::now();
    prepare(pool, SETTLEMENT, SHADOW, &[]).await?;
    let total = total_events(pool).await?;
    let mut filled = Filled::default();
    let mut report = |applied| {
        progress(Progress {
            view: SETTLEMENT,
            applied,
            total,
            elapsed: started.elapsed(),
        })
    };
    // Most of the log while the saga runs, up to where it stands now.
    if let Some(now) = stored_checkpoint(&mut *pool.acquire().await?, SETTLEMENT).await? {
        fill(pool, saga, SHADOW, &mut filled, Some(now), &mut report).await?;
    }
    // Then the saga pauses, holding no transaction id (nothing else waits for it), so the
    // last events, the comparison and the repair all see one state of it.
    let paused = Paused::take(pool, SETTLEMENT).await?;
    let pause_began = std::time::Instant::now();
    let recovered = level_and_repair(pool, saga, apply, &mut filled, &mut report).await;
    paused.release().await;
    recovered.map(|recovery| Recovery {
        paused_for: pause_began.elapsed(),
        ..recovery
    })
}

/// With the saga paused: folds the rest of the log, compares, and (applied) repairs.
async fn level_and_repair(
    pool: &Db,
    saga: &SettlementSaga,
    apply: bool,
    filled: &mut Filled,
    report: &mut (dyn FnMut(u64) + Send),
) -> Result<Recovery, ReplayError> {
    let mut conn = pool.acquire().await?;
    // A missing row: fold to the log's end, and put the row there.
    let live = stored_checkpoint(&mut conn, SETTLEMENT).await?;
    fill(pool, saga, SHADOW, filled, live, report).await?;
    let mut state = Vec::new();
    for (table, _) in FOLD {
        state.extend(compare(&mut conn, SETTLEMENT, SHADOW, table).await?);
    }
    let deadlines: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(d) FROM {SHADOW}.deadlines d
          WHERE NOT EXISTS (SELECT 1 FROM settlement.deadlines l
                             WHERE l.request_id = d.request_id AND l.kind = d.kind)
          ORDER BY d.due_at, d.request_id, d.kind"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let commands: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT s.command_id FROM {SHADOW}.outbox s
          WHERE NOT EXISTS (SELECT 1 FROM settlement.outbox l WHERE l.command_id = s.command_id)
          ORDER BY s.command_id"
    ))
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let recovery = Recovery {
        checkpoint: filled.checkpoint,
        events: filled.applied,
        checkpoint_missing: live.is_none(),
        state,
        deadlines,
        commands,
        applied: apply,
        paused_for: std::time::Duration::ZERO,
    };
    if apply {
        // Events the saga holds in quarantine may revive or close outbox commands (a
        // transfer retried or settled outside), which the repair does not replay: let them
        // be applied first.
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM public.subscription_quarantine WHERE subscriber = $1",
        )
        .bind(SETTLEMENT)
        .fetch_one(pool)
        .await?;
        if held > 0 {
            return Err(ReplayError::Held(held));
        }
        let mut tx = pool.begin().await?;
        // The pause is a session lock: if its connection dropped, the saga may have moved
        // on, and repairing from an older fold would take it back.
        if let Some(at) = live {
            let now = crate::replay::lock_checkpoint(&mut tx, SETTLEMENT).await?;
            if now != at {
                return Err(ReplayError::Moved {
                    target: at,
                    seen: now,
                });
            }
        }
        repair(&mut tx, &recovery).await?;
        tx.commit().await?;
        tracing::warn!(
            rows = recovery.state.len(),
            deadlines = recovery.deadlines.len(),
            commands = recovery.commands.len(),
            checkpoint = %recovery.checkpoint,
            "saga state recovered from the log"
        );
    }
    Ok(recovery)
}

/// Makes the live saga what the log says: only the rows found different, so the write is
/// as short as the damage is small.
async fn repair(tx: &mut PgConnection, recovery: &Recovery) -> Result<(), sqlx::Error> {
    for (table, key) in FOLD {
        let keys = |side: Side| -> Vec<String> {
            recovery
                .state
                .iter()
                .filter(|d| d.side == side && d.table == format!("{SETTLEMENT}.{table}"))
                .filter_map(|d| d.row.get(key).and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        // A changed row is on both sides: out with the live one, in with the log's.
        sqlx::query(&format!(
            "DELETE FROM settlement.{table} WHERE {key} = ANY($1::text[]::uuid[])"
        ))
        .bind(keys(Side::LiveOnly))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "INSERT INTO settlement.{table} SELECT * FROM {SHADOW}.{table}
              WHERE {key} = ANY($1::text[]::uuid[])
             ON CONFLICT ({key}) DO NOTHING"
        ))
        .bind(keys(Side::RebuiltOnly))
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(&format!(
        "INSERT INTO settlement.deadlines SELECT * FROM {SHADOW}.deadlines ON CONFLICT DO NOTHING"
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "WITH queued AS (
             INSERT INTO settlement.outbox SELECT * FROM {SHADOW}.outbox
              WHERE command_id = ANY($1) ON CONFLICT (command_id) DO NOTHING RETURNING 1)
         SELECT pg_notify('carrot_outbox', '') WHERE EXISTS (SELECT 1 FROM queued)"
    ))
    .bind(&recovery.commands)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM public.subscription_quarantine WHERE subscriber = $1")
        .bind(SETTLEMENT)
        .execute(&mut *tx)
        .await?;
    if recovery.checkpoint_missing {
        sqlx::query(
            "INSERT INTO public.subscription_checkpoints (subscriber) VALUES ($1)
             ON CONFLICT (subscriber) DO NOTHING",
        )
        .bind(SETTLEMENT)
        .execute(&mut *tx)
        .await?;
        crate::log::checkpoint::set(tx, SETTLEMENT, recovery.checkpoint, recovery.events).await?;
    }
    Ok(())
}
