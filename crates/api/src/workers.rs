//! The background work of a worker process: a runner per view and for the settlement saga,
//! the saga's dispatcher and timer, and housekeeping. Any number of workers may run on one
//! database: runners share subscribers through their checkpoint row locks, dispatchers
//! lease outbox rows, timers take deadlines with `SKIP LOCKED`; reconciliation passes may
//! overlap (every repair goes through the aggregates under the same keys, and a mismatch
//! is recorded once per key).

use std::sync::Arc;
use std::time::Duration;

use carrot_domain::payment::PaymentGateway;
use carrot_domain::Clock;
use carrot_projections::postgres::Db;
use carrot_projections::settlement::{
    Dispatcher, DispatcherConfig, ReconcileConfig, Reconciler, SagaConfig, SettlementSaga, Timer,
    OUTBOX_CHANNEL,
};
use carrot_projections::write_side::WriteSide;
use carrot_projections::{Runner, RunnerConfig, SharedReads, Shutdown, Wakeups};
use tokio::task::JoinHandle;

/// How the workers pace themselves.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// The subscription runners.
    pub runner: RunnerConfig,
    /// The saga's deadlines.
    pub saga: SagaConfig,
    /// The saga's dispatcher.
    pub dispatcher: DispatcherConfig,
    /// How often the saga's timer looks for due deadlines.
    pub timer_tick: Duration,
    /// Reconciliation against the gateway's list of movements.
    pub reconcile: ReconcileConfig,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            runner: RunnerConfig::default(),
            saga: SagaConfig::default(),
            dispatcher: DispatcherConfig::default(),
            timer_tick: Duration::from_secs(1),
            reconcile: ReconcileConfig::default(),
        }
    }
}

/// How often expired idempotency keys are purged.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(3600);
/// How often the workers look for account closings to finish.
const CLOSINGS_EVERY: Duration = Duration::from_secs(30);

/// Registers every subscriber's checkpoint row (so readiness and operators see them from
/// the start; with the database down, each runner registers itself once it is back), then
/// starts every worker task; each stops at `shutdown` after finishing what it is doing.
pub async fn spawn(
    pool: &Db,
    write: Arc<WriteSide>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    shutdown: &Shutdown,
) -> Vec<JoinHandle<()>> {
    let events = Wakeups::listen(pool);
    let mut subscribers = carrot_projections::views::all();
    subscribers.push(Arc::new(SettlementSaga::new(config.saga)));
    // One read of the log for every runner of this process (`log/shared.rs`).
    let reads = SharedReads::new();
    let runners: Vec<Runner> = subscribers
        .into_iter()
        .map(|subscriber| {
            Runner::new(pool.clone(), subscriber, config.runner).sharing(reads.clone())
        })
        .collect();
    for runner in &runners {
        if let Err(e) = runner.register().await {
            tracing::warn!(subscriber = runner.name(), error = %e, "could not register yet");
        }
    }
    let mut tasks: Vec<JoinHandle<()>> = runners
        .into_iter()
        .map(|runner| tokio::spawn(runner.run(events.clone(), shutdown.clone())))
        .collect();
    let reconciler = Reconciler::new(
        pool.clone(),
        write.clone(),
        gateway,
        clock.clone(),
        config.reconcile,
    );
    tasks.push(tokio::spawn(reconciler.run(shutdown.clone())));
    let dispatcher = Dispatcher::new(
        pool.clone(),
        write.clone(),
        clock.clone(),
        config.dispatcher,
    );
    tasks.push(tokio::spawn(
        dispatcher.run(Wakeups::listen_on(pool, OUTBOX_CHANNEL), shutdown.clone()),
    ));
    let timer = Timer::new(pool.clone(), clock);
    tasks.push(tokio::spawn(timer.run(config.timer_tick, shutdown.clone())));
    tasks.push(tokio::spawn(closings(
        pool.clone(),
        write,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(housekeeping(pool.clone(), shutdown.clone())));
    tasks
}

/// Finishes account closings left half-done, every [`CLOSINGS_EVERY`].
async fn closings(pool: Db, write: Arc<WriteSide>, mut shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        match crate::auth::closing::finish_closings(&pool, &write).await {
            Ok(n) if n > 0 => tracing::info!(finished = n, "account closings finished"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "finishing account closings failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(CLOSINGS_EVERY) => {}
            () = shutdown.wait() => {}
        }
    }
}

async fn housekeeping(pool: Db, mut shutdown: Shutdown) {
    while !shutdown.is_triggered() {
        match crate::idempotency::purge_expired(&pool).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging idempotency keys failed"),
        }
        match crate::auth::sessions::purge_expired(&pool).await {
            Ok(n) if n > 0 => tracing::info!(purged = n, "expired sessions purged"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(HOUSEKEEPING_EVERY) => {}
            () = shutdown.wait() => {}
        }
    }
}
