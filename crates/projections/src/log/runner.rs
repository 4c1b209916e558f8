//! The subscription runner: applies the log to one subscriber, batch by batch, exactly once.
//!
//! A batch is one transaction: lock the subscriber's checkpoint row (`FOR UPDATE SKIP
//! LOCKED`: another worker holding it means skip), read the next events after it, apply
//! them, move the checkpoint, commit. View changes and the checkpoint move together, so any
//! number of workers may run the same subscriber. Runners wake on `NOTIFY carrot_events`
//! (sent by appending processes, see `notify.rs`) and also poll, so a lost notification only
//! costs latency. An event the subscriber cannot read does not stop it: its aggregate's
//! stream is held aside from that event on and the rest goes on (`quarantine.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use crate::log::checkpoint::{self, EnsureError, Found, MissingCheckpoint};
use crate::log::quarantine;
use crate::log::shared::{self, SharedReads};
use crate::log::signals::{Shutdown, Wakeups};
use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::Checkpoint;
use crate::postgres::Db;

/// Why a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// Talking to the database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The subscriber refused a batch.
    #[error("applying events {first} to {last}: {source}")]
    Apply {
        /// The batch's first event.
        first: Checkpoint,
        /// The batch's last event.
        last: Checkpoint,
        /// Why it failed.
        source: ApplyError,
    },
    /// The checkpoint row is gone, and re-creating it at the origin would not be safe.
    #[error(transparent)]
    Missing(#[from] MissingCheckpoint),
}

impl From<EnsureError> for RunnerError {
    fn from(e: EnsureError) -> Self {
        match e {
            EnsureError::Database(e) => RunnerError::Database(e),
            EnsureError::Missing(e) => RunnerError::Missing(e),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// Events were applied and the checkpoint moved to `up_to`.
    Applied {
        /// How many events.
        events: usize,
        /// The new checkpoint.
        up_to: Checkpoint,
    },
    /// Nothing new below the horizon.
    Idle,
    /// Another worker holds this subscriber's checkpoint right now.
    Busy,
}

/// How a runner paces itself.
#[derive(Debug, Clone, Copy)]
pub struct RunnerConfig {
    /// Events per batch transaction.
    pub batch_size: i64,
    /// The fallback poll when no notification arrives.
    pub poll_interval: Duration,
    /// The least time between two reads of the log by this runner, whatever wakes it:
    /// under load, one batch per interval gathers every append since, instead of a read
    /// (and most often an empty one, the horizon being held) per notification. At rest the
    /// first append is read at once.
    pub min_interval: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            min_interval: Duration::from_millis(10),
        }
    }
}

/// Runs one subscriber against the log.
#[derive(Clone)]
pub struct Runner {
    pool: Db,
    subscriber: Arc<dyn Subscriber>,
    config: RunnerConfig,
    /// Whether this runner has tried the subscriber's held events since it started: new
    /// code may read what the old could not, so each runner tries once, whatever another
    /// (older) runner found.
    tried_held: Arc<AtomicBool>,
    /// Where this runner shares its reads of the log with the process's other runners.
    reads: Option<SharedReads>,
}

impl Runner {
    /// A runner for `subscriber` on `pool`.
    pub fn new(pool: Db, subscriber: Arc<dyn Subscriber>, config: RunnerConfig) -> Self {
        Runner {
            pool,
            subscriber,
            config,
            tried_held: Arc::new(AtomicBool::new(false)),
            reads: None,
        }
    }

    /// This runner reads the log through `reads`, shared with the other runners of this
    /// process on the same database (`shared.rs`).
    pub fn sharing(mut self, reads: SharedReads) -> Self {
        self.reads = Some(reads);
        self
    }

    /// The subscriber's name.
    pub fn name(&self) -> &'static str {
        self.subscriber.name()
    }

    /// Creates the checkpoint row at the origin if this subscriber has none yet: a new
    /// subscriber starts from position zero and catches up. A row lost while the
    /// subscriber's schema holds state is re-created only where that is safe
    /// (`checkpoint.rs`).
    pub async fn register(&self) -> Result<(), RunnerError> {
        checkpoint::ensure(&self.pool, self.subscriber.as_ref()).await?;
        Ok(())
    }

    /// Applies one batch. A missing checkpoint row is re-created first where that is safe
    /// (`checkpoint.rs`), else this fails: it is never mistaken for a row another worker holds.
    #[tracing::instrument(level = "debug", skip(self), fields(subscriber = self.name()))]
    pub async fn run_once(&self) -> Result<Batch, RunnerError> {
        if let Some(batch) = self.batch().await? {
            return Ok(batch);
        }
        match checkpoint::ensure(&self.pool, self.subscriber.as_ref()).await? {
            Found::Held => Ok(Batch::Busy),
            Found::Created => Ok(self.batch().await?.unwrap_or(Batch::Busy)),
        }
    }

    /// One batch, or `None` when the checkpoint row could not be locked (held, or missing).
    async fn batch(&self) -> Result<Option<Batch>, RunnerError> {
        let mut tx = self.pool.begin().await?;
        // Lock the checkpoint and point search_path at the subscriber's schema; then the next
        // events come from the process's shared read (`shared.rs`). The batch commits without waiting
        // for its WAL to reach disk: what it writes is derived from the log and moves with
        // the checkpoint, so a crash that loses it loses both, and the batch is applied again.
        // Two flags ride along (read once, not per event): whether any of its streams are
        // held in quarantine, and whether a retry of them was asked for. The shared pause
        // lock is free unless an operator tool has paused the subscriber (`checkpoint.rs`).
        let head = sqlx::query(
            "SELECT set_config('search_path', $2, true) AS search_path,
                    set_config('synchronous_commit', 'off', true) AS synchronous_commit,
                    cp.transaction_id::text AS at_transaction, cp.global_position AS at_position,
                    EXISTS (SELECT 1 FROM public.subscription_quarantine q
                             WHERE q.subscriber = $1) AS quarantined,
                    EXISTS (SELECT 1 FROM public.subscription_quarantine q
                             WHERE q.subscriber = $1 AND q.retry_requested) AS retry
               FROM public.subscription_checkpoints cp
              WHERE cp.subscriber = $1
                AND pg_try_advisory_xact_lock_shared(hashtextextended('carrot_pause:' || $1, 0))
                FOR UPDATE OF cp SKIP LOCKED",
        )
        .bind(self.name())
        .bind(format!(
            "{}, public",
            crate::postgres::quote_ident(self.name())
        ))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(head) = head else {
            tx.rollback().await?;
            return Ok(None);
        };
        let at = Checkpoint {
            transaction_id: head
                .try_get::<String, _>("at_transaction")?
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position: head.try_get("at_position")?,
        };
        let (quarantined, retry): (bool, bool) =
            (head.try_get("quarantined")?, head.try_get("retry")?);
        let (limit, types) = (self.config.batch_size, self.subscriber.aggregate_types());
        let events = match &self.reads {
            Some(reads) => reads.next(&mut tx, at, limit, types).await?,
            None => shared::read_own(&mut tx, at, limit, types).await?,
        };
        let failed = |source| RunnerError::Apply {
            first: events.first().map_or(at, |e| e.checkpoint),
            last: events.last().map_or(at, |e| e.checkpoint),
            source,
        };
        // Held events an operator asked to apply again (or all of them, at this runner's
        // first batch) come first: then this batch's events of a stream they release are
        // not held behind them.
        let at_start = quarantined && !self.tried_held.load(Ordering::Relaxed);
        let retry = retry || at_start;
        let retried = if retry {
            self.retry_held(&mut tx, at_start).await?
        } else {
            0
        };
        let Some(last) = events.last().map(|e| e.checkpoint) else {
            if retried == 0 && !retry {
                tx.rollback().await?;
                return Ok(Some(Batch::Idle));
            }
            self.advance(&mut tx, at, retried).await?;
            tx.commit().await?;
            self.tried_held.store(true, Ordering::Relaxed);
            return Ok(Some(Batch::Applied {
                events: retried,
                up_to: at,
            }));
        };
        let mut held = if quarantined {
            quarantine::held_streams(&mut tx, self.name()).await?
        } else {
            quarantine::Held::default()
        };
        let applied =
            quarantine::apply_around(&mut tx, self.subscriber.as_ref(), &events, &mut held)
                .await
                .map_err(failed)?;
        let parked = quarantine::park(&mut tx, self.name(), &events, &held).await?;
        let applied_count = applied.len();
        // The lag of what became visible: how long after its append each event arrived.
        let recorded: Vec<_> = applied.iter().map(|e| e.recorded_at).collect();
        drop(applied);
        self.advance(&mut tx, last, applied_count + retried).await?;
        tx.commit().await?;
        self.tried_held.store(true, Ordering::Relaxed);
        let now = chrono::Utc::now();
        let metrics = crate::metrics::global();
        for recorded_at in recorded {
            let lag = (now - recorded_at).to_std().unwrap_or_default();
            metrics.observe(
                "carrot_subscription_apply_lag_seconds",
                &[("subscriber", self.name())],
                lag,
            );
        }
        Ok(Some(Batch::Applied {
            events: applied_count + retried + parked,
            up_to: last,
        }))
    }

    /// Tries held events again (`all`: every held stream, else those a retry was asked
    /// for) under a savepoint: a failure that is not a poison's (which the retry records
    /// itself) is logged and undone, and the batch goes on without it.
    async fn retry_held(
        &self,
        tx: &mut sqlx::PgConnection,
        all: bool,
    ) -> Result<usize, RunnerError> {
        sqlx::query("SAVEPOINT retry_held")
            .execute(&mut *tx)
            .await?;
        match quarantine::retry(
            &mut *tx,
            self.subscriber.as_ref(),
            self.config.batch_size,
            all,
        )
        .await
        {
            Ok(applied) => Ok(applied),
            Err(e) => {
                sqlx::query("ROLLBACK TO SAVEPOINT retry_held")
                    .execute(&mut *tx)
                    .await?;
                tracing::error!(subscriber = self.name(), error = %e, "retrying quarantined events failed; they stay held");
                quarantine::stop_asking(&mut *tx, self.name()).await?;
                Ok(0)
            }
        }
    }

    /// Moves the checkpoint to `to`, counting `applied` more events.
    async fn advance(
        &self,
        tx: &mut sqlx::PgConnection,
        to: Checkpoint,
        applied: usize,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE public.subscription_checkpoints
                SET transaction_id = $2::text::xid8, global_position = $3,
                    events_applied = events_applied + $4, updated_at = now(),
                    last_error = NULL, last_error_at = NULL
              WHERE subscriber = $1",
        )
        .bind(self.name())
        .bind(to.transaction_id.to_string())
        .bind(to.global_position)
        .bind(applied as i64)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Applies batches until nothing is left below the horizon; returns how many events.
    /// Waits out another worker holding the checkpoint. For tests and the CLI.
    pub async fn catch_up(&self) -> Result<usize, RunnerError> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                Batch::Applied { events, .. } => total += events,
                Batch::Idle => return Ok(total),
                Batch::Busy => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Runs until `shutdown`: a batch in progress always finishes first.
    pub async fn run(self, mut wakeups: Wakeups, mut shutdown: Shutdown) {
        if let Err(e) = self.register().await {
            tracing::warn!(subscriber = self.name(), error = %e, "could not register checkpoint; will retry");
        }
        let mut failures: u32 = 0;
        // After a wake-up the horizon may still be held by a transaction that commits
        // without notifying (another runner's batch, say): look again a few times soon.
        const FOLLOW_UPS: [u64; 3] = [5, 25, 100];
        let mut follow_up: Option<usize> = Some(0);
        let mut last_read: Option<tokio::time::Instant> = None;
        while !shutdown.is_triggered() {
            if let Some(at) = last_read {
                let due = at + self.config.min_interval;
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = shutdown.wait() => continue,
                }
            }
            last_read = Some(tokio::time::Instant::now());
            let delay = match self.run_once().await {
                Ok(Batch::Applied { events, .. }) => {
                    failures = 0;
                    follow_up = Some(0);
                    // A full batch means a backlog: go on at once. Otherwise more may be
                    // coming: read again once the interval is up.
                    if events as i64 >= self.config.batch_size {
                        last_read = None;
                    }
                    continue;
                }
                Ok(Batch::Idle) | Ok(Batch::Busy) => {
                    failures = 0;
                    match follow_up {
                        Some(i) if i < FOLLOW_UPS.len() => {
                            follow_up = Some(i + 1);
                            Duration::from_millis(FOLLOW_UPS[i])
                        }
                        _ => {
                            follow_up = None;
                            self.config.poll_interval
                        }
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(subscriber = self.name(), error = %e, "batch failed; retrying");
                    self.record_error(&e).await;
                    Duration::from_millis(100u64 << failures.min(6))
                }
            };
            if delay.is_zero() {
                continue;
            }
            tokio::select! {
                () = wakeups.next() => follow_up = Some(0),
                () = tokio::time::sleep(delay) => {}
                () = shutdown.wait() => {}
            }
        }
        tracing::debug!(subscriber = self.name(), "runner stopped");
    }

    async fn record_error(&self, error: &RunnerError) {
        let result = sqlx::query(
            "UPDATE public.subscription_checkpoints SET last_error = $2, last_error_at = now()
              WHERE subscriber = $1",
        )
        .bind(self.name())
        .bind(error.to_string())
        .execute(&self.pool)
        .await;
        if let Err(e) = result {
            tracing::warn!(subscriber = self.name(), error = %e, "could not record the failure");
        }
    }
}
