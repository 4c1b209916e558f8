//! The dispatcher: leases due outbox commands, executes them through the aggregates (and so
//! the payment gateway), and settles each row: done; retried with exponential backoff to a
//! cap for as long as the failure lasts; or, refused for good, a dead letter at once. Any
//! number of dispatchers may run.
//!
//! There is no attempt limit: a refund or payout the gateway could not answer, or that the
//! breaker held back, is money that must still move once the gateway is back, however long
//! the outage. An outage longer than `alert_after` is reported instead (a log line at error
//! level per retry, `carrot_saga_commands_stuck`, readiness). Time is the injected clock's
//! (the database's in production), so backoff and leases agree across processes.

use std::sync::Arc;
use std::time::Duration;

use carrot_domain::Clock;
use futures_util::future::join_all;

use super::commands::{Failure, SagaCommand};
use super::outbox::{self, Leased, Settlement};
use crate::log::signals::{Shutdown, Wakeups};
use crate::postgres::Db;
use crate::write_side::WriteSide;

/// How a dispatcher paces itself.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherConfig {
    /// Commands leased (and run concurrently) at once.
    pub batch: i64,
    /// How long a lease lasts: longer than any one command can take.
    pub lease: Duration,
    /// How long a command may keep failing before it is reported (it keeps being retried).
    pub alert_after: Duration,
    /// The first retry's delay; each further one doubles, up to `retry_cap`.
    pub retry_base: Duration,
    /// The longest delay between attempts.
    pub retry_cap: Duration,
    /// The fallback poll when no notification arrives.
    pub poll_interval: Duration,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            batch: 32,
            lease: Duration::from_secs(30),
            alert_after: Duration::from_secs(600),
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// Executes the saga's outbox.
#[derive(Clone)]
pub struct Dispatcher {
    pool: Db,
    write: Arc<WriteSide>,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
}

impl Dispatcher {
    /// A dispatcher over `pool`, executing through `write`, telling time by `clock`.
    pub fn new(
        pool: Db,
        write: Arc<WriteSide>,
        clock: Arc<dyn Clock>,
        config: DispatcherConfig,
    ) -> Self {
        Dispatcher {
            pool,
            write,
            clock,
            config,
        }
    }

    /// Leases one batch of due commands and settles each; returns how many it leased.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let leased = outbox::claim(
            &self.pool,
            self.clock.now(),
            self.config.batch,
            self.config.lease,
            SagaCommand::READABLE,
        )
        .await?;
        let settled = join_all(leased.iter().map(|command| self.settle(command))).await;
        settled.into_iter().collect::<Result<Vec<()>, _>>()?;
        Ok(leased.len())
    }

    /// Runs batches until nothing is due. For tests and the CLI.
    pub async fn drain(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    async fn settle(&self, leased: &Leased) -> Result<(), sqlx::Error> {
        let command = match &leased.command {
            Ok(command) => command,
            Err(e) => {
                let why = format!("unreadable: {e}");
                let now = self.clock.now();
                outbox::settle(&self.pool, leased, now, Settlement::Dead(&why)).await?;
                return Ok(());
            }
        };
        let outcome = command.execute(&self.write).await;
        let label = match &outcome {
            Ok(()) => "applied",
            Err(Failure::Moot(_)) => "moot",
            Err(Failure::Refused(_)) => "dead",
            Err(Failure::Transient(_)) => "retry",
            Err(Failure::CircuitOpen(_)) => "circuit_open",
            Err(Failure::NotYet(_)) => "not_yet",
        };
        let kind = crate::metrics::variant_name(command);
        crate::metrics::global().inc(
            "carrot_saga_commands_total",
            &[("command", &kind), ("outcome", label)],
        );
        let now = self.clock.now();
        let id = leased.command_id.as_str();
        let moot;
        let how = match &outcome {
            Ok(()) => Settlement::Done("applied"),
            Err(Failure::Moot(code)) => {
                moot = format!("moot: {code}");
                Settlement::Done(&moot)
            }
            Err(Failure::Refused(why)) => Settlement::Dead(why),
            Err(Failure::Transient(why)) => Settlement::Retry {
                delay: self.backoff(leased.attempts),
                error: why,
                counted: true,
            },
            Err(Failure::CircuitOpen(wait)) => Settlement::Retry {
                delay: *wait,
                error: "payment gateway circuit open",
                counted: false,
            },
            Err(Failure::NotYet(due)) => Settlement::Retry {
                delay: (*due - now).to_std().unwrap_or_default() + Duration::from_millis(100),
                error: "not due yet by the aggregate's clock",
                counted: false,
            },
        };
        let failing = matches!(
            outcome,
            Err(Failure::Transient(_) | Failure::CircuitOpen(_))
        );
        if let (true, Settlement::Retry { error, .. }) = (failing, &how) {
            let failing_for = leased
                .failing_since
                .map(|since| (now - since).to_std().unwrap_or_default())
                .unwrap_or_default();
            if failing_for >= self.config.alert_after {
                tracing::error!(
                    command_id = id,
                    attempt = leased.attempts,
                    failing_secs = failing_for.as_secs(),
                    error,
                    "saga command still failing; its money waits and it will be retried"
                );
            } else {
                tracing::warn!(
                    command_id = id,
                    attempt = leased.attempts,
                    error,
                    "saga command failed; will retry"
                );
            }
        }
        outbox::settle(&self.pool, leased, now, how).await?;
        Ok(())
    }

    /// The delay before attempt `attempts + 1`: doubling from `retry_base`, capped, with
    /// up to a fifth of jitter so retries of many commands spread out.
    fn backoff(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        let delay = self
            .config
            .retry_base
            .saturating_mul(1 << doublings)
            .min(self.config.retry_cap);
        let jitter = rand::random::<f64>() * 0.2;
        delay.mul_f64(1.0 - jitter)
    }

    /// Runs until `shutdown`; the batch in progress always finishes first.
    pub async fn run(self, mut wakeups: Wakeups, mut shutdown: Shutdown) {
        let mut failures: u32 = 0;
        while !shutdown.is_triggered() {
            let delay = match self.run_once().await {
                Ok(n) if n as i64 >= self.config.batch => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    self.config.poll_interval
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(error = %e, "saga dispatcher failed; retrying");
                    Duration::from_millis(100u64 << failures.min(6))
                }
            };
            tokio::select! {
                () = wakeups.next() => {}
                () = tokio::time::sleep(delay) => {}
                () = shutdown.wait() => {}
            }
        }
        tracing::debug!("saga dispatcher stopped");
    }
}
