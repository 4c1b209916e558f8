//! Recovering the saga's state from the log: the operator's tool the replay engine's
//! refusal points to (`carrot saga recover [--apply]`).
//!
//! The saga is not rebuilt and swapped like a view (docs/DESIGN.md, "Rebuilding the
//! saga"): its outbox is a ledger of effects already run, and the timer's and
//! reconciler's tables record what no event says. But the part of its state that *is* a
//! fold of the log can be recomputed, and its decisions are deterministic, each under a
//! deterministic command id. So recovery folds the whole log into a shadow schema with the
//! saga's own code (the shadow's outbox takes the decisions; nothing is executed), brings
//! it to the live checkpoint while holding that checkpoint (the live saga pauses), and
//! compares:
//! - its fold (`trades`, `listings`, `payments`): rows that differ are reported, and with
//!   `apply` the live rows are replaced by the recomputed ones;
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
use crate::log::Checkpoint;
use crate::postgres::{quote_ident, Db};
use crate::replay::{
    compare, fill, lock_checkpoint, prepare, stored_checkpoint, total_events, Difference,
    Exclusive, Filled, Progress, ReplayError,
};

/// The saga's tables that are a pure fold of the log.
const FOLD: [&str; 3] = ["trades", "listings", "payments"];
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
    progress: &mut dyn FnMut(Progress),
) -> Result<Recovery, ReplayError> {
    let exclusive = Exclusive::take_any(pool, SETTLEMENT).await?;
    let recovered = recover_alone(pool, saga, apply, progress).await;
    exclusive.release().await;
    let dropped = sqlx::query(&format!(
        "DROP SCHEMA IF EXISTS {} CASCADE",
        quote_ident(SHADOW)
    ))
    .execute(pool)
    .await;
    if let Err(e) = dropped {
        tracing::warn!(error = %e, "could not drop the recovery's shadow schema");
    }
    recovered
}

async fn recover_alone(
    pool: &Db,
    saga: &SettlementSaga,
    apply: bool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Recovery, ReplayError> {
    let started = std::time::Instant::now();
    prepare(pool, SETTLEMENT, SHADOW).await?;
    let total = total_events(pool).await?;
    let live = stored_checkpoint(&mut *pool.acquire().await?, SETTLEMENT).await?;
    let missing = live.is_none();
    let mut filled = Filled::default();
    let mut report = |applied| {
        progress(Progress {
            view: SETTLEMENT,
            applied,
            total,
            elapsed: started.elapsed(),
        })
    };
    // Most of the log without holding anything, up to where the live saga stands now.
    if let Some(now) = live {
        fill(pool, saga, SHADOW, &mut filled, Some(now), &mut report).await?;
    }
    // The rest holding the checkpoint row (created here if missing: the live saga waits for
    // it): the comparison and the repair see one state of the saga.
    let mut tx = pool.begin().await?;
    let target = lock_checkpoint(&mut tx, SETTLEMENT).await?;
    let upto = (!missing).then_some(target);
    fill(pool, saga, SHADOW, &mut filled, upto, &mut report).await?;

    let mut state = Vec::new();
    for table in FOLD {
        state.extend(compare(&mut tx, SETTLEMENT, SHADOW, table).await?);
    }
    let deadlines: Vec<Value> = sqlx::query_scalar(&format!(
        "SELECT to_jsonb(d) FROM {SHADOW}.deadlines d
          WHERE NOT EXISTS (SELECT 1 FROM settlement.deadlines l
                             WHERE l.request_id = d.request_id AND l.kind = d.kind)
          ORDER BY d.due_at, d.request_id, d.kind"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let commands: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT s.command_id FROM {SHADOW}.outbox s
          WHERE NOT EXISTS (SELECT 1 FROM settlement.outbox l WHERE l.command_id = s.command_id)
          ORDER BY s.command_id"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let recovery = Recovery {
        checkpoint: filled.checkpoint,
        events: filled.applied,
        checkpoint_missing: missing,
        state,
        deadlines,
        commands,
        applied: apply,
    };
    if apply {
        repair(&mut tx, &recovery).await?;
        tx.commit().await?;
        tracing::warn!(
            rows = recovery.state.len(),
            deadlines = recovery.deadlines.len(),
            commands = recovery.commands.len(),
            checkpoint = %recovery.checkpoint,
            "saga state recovered from the log"
        );
    } else {
        tx.rollback().await?;
    }
    Ok(recovery)
}

/// Makes the live saga what the log says, inside the transaction holding its checkpoint.
async fn repair(tx: &mut PgConnection, recovery: &Recovery) -> Result<(), sqlx::Error> {
    let mut statements: Vec<String> = Vec::new();
    for table in FOLD {
        statements.push(format!("DELETE FROM settlement.{table}"));
        statements.push(format!(
            "INSERT INTO settlement.{table} SELECT * FROM {SHADOW}.{table}"
        ));
    }
    statements.push(format!(
        "INSERT INTO settlement.deadlines SELECT * FROM {SHADOW}.deadlines ON CONFLICT DO NOTHING"
    ));
    statements.push(format!(
        "INSERT INTO settlement.outbox SELECT * FROM {SHADOW}.outbox
         ON CONFLICT (command_id) DO NOTHING"
    ));
    statements.push("SELECT pg_notify('carrot_outbox', '')".to_owned());
    for statement in statements {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    sqlx::query("DELETE FROM public.subscription_quarantine WHERE subscriber = $1")
        .bind(SETTLEMENT)
        .execute(&mut *tx)
        .await?;
    if recovery.checkpoint_missing {
        crate::checkpoint::set(tx, SETTLEMENT, recovery.checkpoint, recovery.events).await?;
    }
    Ok(())
}
