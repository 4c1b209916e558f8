//! The dispatcher: leases due outbox commands, executes them through the aggregates (and so
//! the payment gateway), and settles each row: done, retried with exponential backoff, or
//! after `max_attempts` a dead letter. Any number of dispatchers may run.

use crate::postgres::Db;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::commands::Failure;
use super::outbox::{self, Leased};
use crate::commands::WriteSide;
use crate::runner::{Shutdown, Wakeups};

/// How a dispatcher paces itself.
#[derive(Debug, Clone, Copy)]
pub struct DispatcherConfig {
    /// Commands leased (and run concurrently) at once.
    pub batch: i64,
    /// How long a lease lasts: longer than any one command can take.
    pub lease: Duration,
    /// Attempts before a failing command becomes a dead letter.
    pub max_attempts: i32,
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
            max_attempts: 10,
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
    config: DispatcherConfig,
}

impl Dispatcher {
    /// A dispatcher over `pool`, executing through `write`.
    pub fn new(pool: Db, write: Arc<WriteSide>, config: DispatcherConfig) -> Self {
        Dispatcher {
            pool,
            write,
            config,
        }
    }

    /// Leases one batch of due commands and settles each; returns how many it leased.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let leased = outbox::claim(&self.pool, self.config.batch, self.config.lease).await?;
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
        let id = leased.command_id.as_str();
        let command = match &leased.command {
            Ok(command) => command,
            Err(e) => return outbox::bury(&self.pool, id, &format!("unreadable: {e}")).await,
        };
        let outcome = command.execute(&self.write).await;
        let label = match &outcome {
            Ok(()) => "applied",
            Err(Failure::Moot(_)) => "moot",
            Err(Failure::Refused(_)) => "dead",
            Err(Failure::Transient(_)) if leased.attempts >= self.config.max_attempts => "dead",
            Err(Failure::Transient(_)) => "retry",
            Err(Failure::CircuitOpen(_)) => "circuit_open",
        };
        let kind = crate::metrics::variant_name(command);
        crate::metrics::global().inc(
            "carrot_saga_commands_total",
            &[("command", &kind), ("outcome", label)],
        );
        match outcome {
            Ok(()) => outbox::done(&self.pool, id, "applied").await,
            Err(Failure::Moot(code)) => {
                outbox::done(&self.pool, id, &format!("moot: {code}")).await
            }
            Err(Failure::Refused(why)) => outbox::bury(&self.pool, id, &why).await,
            Err(Failure::Transient(why)) if leased.attempts >= self.config.max_attempts => {
                let why = format!("gave up after {} attempts: {why}", leased.attempts);
                outbox::bury(&self.pool, id, &why).await
            }
            Err(Failure::Transient(why)) => {
                tracing::warn!(command_id = id, attempt = leased.attempts, error = %why, "saga command failed; will retry");
                let delay = self.backoff(leased.attempts);
                outbox::retry_later(&self.pool, id, delay, &why, true).await
            }
            Err(Failure::CircuitOpen(wait)) => {
                outbox::retry_later(&self.pool, id, wait, "payment gateway circuit open", false)
                    .await
            }
        }
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
