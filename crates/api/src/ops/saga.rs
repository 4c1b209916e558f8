//! `carrot saga dead-letters [--retry ID | --discard ID --reason R] --by ADMIN`, `carrot saga recover [--apply]` and
//! `carrot saga reconcile --since T`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use carrot_domain::metadata::{ACTOR, CAUSATION_ID};
use carrot_domain::payment::PaymentGateway;
use carrot_domain::SystemClock;
use carrot_projections::postgres::Db;
use carrot_projections::settlement::{
    mismatches, outbox, recover, ReconcileConfig, Reconciler, SagaConfig, SettlementSaga,
};
use carrot_projections::write_side::WriteSide;

use crate::config::PaymentArgs;
use crate::error::ApiError;
use crate::payment::WithTimeout;
use crate::routes::dead_letters::{self, Decision};

use super::OpsError;

/// Carries out an admin's decision on dead letter `id`, recorded as theirs (`by`, an admin's
/// username), as `POST /admin/dead-letters/{id}/retry` and `.../discard` do.
pub async fn decide(
    pool: &Db,
    gateway: Arc<dyn PaymentGateway>,
    by: &str,
    id: &str,
    decision: Decision,
) -> Result<(), OpsError> {
    let operator = super::accounts::admin_named(pool, by).await?;
    let write = Arc::new(WriteSide::new(pool.clone(), Arc::new(SystemClock), gateway));
    let metadata = HashMap::from([
        (ACTOR.to_owned(), operator.to_string()),
        (CAUSATION_ID.to_owned(), "cli:saga dead-letters".to_owned()),
    ]);
    match dead_letters::decide(pool, &write, operator, metadata, id, decision).await {
        Ok(decided) => {
            println!("{id}: {} (trade {})", decided.status, decided.request_id);
            Ok(())
        }
        Err(ApiError::NotFound) => Err(OpsError::NotFound(format!("no dead letter {id:?}"))),
        Err(e) => Err(OpsError::Failed(e.to_string())),
    }
}

/// Prints the dead letters.
pub async fn dead_letters(pool: &Db) -> Result<(), OpsError> {
    let letters = outbox::dead_letters(pool, 1000, None).await?;
    if letters.is_empty() {
        println!("no dead letters");
    }
    for letter in letters {
        println!(
            "{}  request {}  {} attempts  {}\n    {}",
            letter.command_id,
            letter.request_id,
            letter.attempts,
            letter.updated_at.to_rfc3339(),
            letter.last_error.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

/// Recomputes the saga's state from the log; prints where the live saga differs, and with
/// `apply` repairs it. Differences left unrepaired fail the command (exit 1).
pub async fn recover(pool: &Db, config: SagaConfig, apply: bool) -> Result<(), OpsError> {
    let mut reporter = super::replay::Reporter::new();
    let saga = SettlementSaga::new(config);
    let found = recover::recover(pool, &saga, apply, &mut |p| reporter.progress(p)).await?;
    println!(
        "settlement: {} events folded, at {}; the saga paused {:.2} s",
        found.events,
        found.checkpoint,
        found.paused_for.as_secs_f64()
    );
    if found.checkpoint_missing {
        let done = if apply {
            "restored"
        } else {
            "it would be restored"
        };
        println!(
            "  the checkpoint row is missing; {done} at {}",
            found.checkpoint
        );
    }
    for difference in &found.state {
        let side = match difference.side {
            carrot_projections::replay::Side::LiveOnly => "live saga only:",
            carrot_projections::replay::Side::RebuiltOnly => "log says:      ",
        };
        println!("  {} {side} {}", difference.table, difference.row);
    }
    for deadline in &found.deadlines {
        println!("  deadline missing: {deadline}");
    }
    for command in &found.commands {
        println!("  command never queued: {command}");
    }
    match (found.is_clean(), apply) {
        (true, _) => {
            println!("the live saga agrees with the log");
            Ok(())
        }
        (false, true) => {
            println!("repaired: the fold replaced, missing deadlines and commands queued");
            Ok(())
        }
        (false, false) => Err(OpsError::Failed(
            "the live saga differs from the log; `carrot saga recover --apply` repairs it".into(),
        )),
    }
}

/// One reconciliation pass from `since`; prints what it found, and every open mismatch.
pub async fn reconcile(
    pool: &Db,
    gateway: Arc<dyn PaymentGateway>,
    payment: &PaymentArgs,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(), OpsError> {
    let bounded: Arc<dyn PaymentGateway> = Arc::new(WithTimeout::new(
        gateway,
        Duration::from_millis(payment.payment_timeout_ms),
    ));
    let clock = Arc::new(SystemClock);
    let write = Arc::new(WriteSide::new(pool.clone(), clock.clone(), bounded.clone()));
    let reconciler = Reconciler::new(
        pool.clone(),
        write,
        bounded,
        clock,
        ReconcileConfig::default(),
    );
    let report = reconciler
        .run_once(since)
        .await
        .map_err(|e| OpsError::Failed(e.to_string()))?;
    println!(
        "{} movements: {} matched, {} repaired, {} deferred (gateway unavailable), {} mismatches",
        report.movements, report.matched, report.repaired, report.deferred, report.mismatches
    );
    let open = mismatches::open_mismatches(pool, 1000).await?;
    for m in &open {
        println!(
            "{}  {}  {}\n    {}",
            m.idempotency_key,
            m.kind,
            m.found_at.to_rfc3339(),
            m.detail
        );
    }
    if open.is_empty() {
        Ok(())
    } else {
        Err(OpsError::Failed(format!("{} open mismatches", open.len())))
    }
}
