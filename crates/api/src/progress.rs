//! The workers' progress as readiness and `/metrics` report it: each subscriber's lag and
//! the saga's outbox depth. Both endpoints answer anyone, and reading the progress counts
//! rows (up to 100,000 unapplied events per subscriber, the outbox's pending and dead
//! commands), so it is read at most once per `refresh` per process and shared: a flood of
//! probes costs one read per interval, not one per probe.

use std::sync::Arc;
use std::time::Duration;

use carrot_domain::Clock;
use carrot_projections::log::status;
use carrot_projections::log::status::SubscriberStatus;
use carrot_projections::postgres::Db;
use carrot_projections::settlement::outbox;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// What the workers have done, as of `read_at`.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Each subscriber's checkpoint, lag and last error.
    pub subscribers: Vec<SubscriberStatus>,
    /// Saga commands waiting to run.
    pub outbox_pending: i64,
    /// Saga commands that gave up.
    pub dead_letters: i64,
    /// Saga commands failing for longer than the alert threshold (money waiting out an
    /// outage; still retried).
    pub stuck: i64,
    /// When it was read.
    pub read_at: Instant,
}

/// The last progress read, reused until it is `refresh` old.
pub struct ProgressCache {
    refresh: Duration,
    clock: Arc<dyn Clock>,
    alert_after: Duration,
    // An async lock held across the read: probes arriving during a read wait for it and
    // share its result instead of starting their own.
    last: Mutex<Option<Arc<Progress>>>,
}

impl ProgressCache {
    /// A cache that reads again once its copy is `refresh` old, and counts saga commands
    /// failing for longer than `alert_after` (by `clock`) as stuck.
    pub fn new(refresh: Duration, clock: Arc<dyn Clock>, alert_after: Duration) -> Self {
        ProgressCache {
            refresh,
            clock,
            alert_after,
            last: Mutex::new(None),
        }
    }

    /// The progress, read from the database only if the copy held is `refresh` old.
    pub async fn get(&self, pool: &Db) -> Result<Arc<Progress>, sqlx::Error> {
        let mut last = self.last.lock().await;
        if let Some(progress) = last.as_ref() {
            if progress.read_at.elapsed() < self.refresh {
                return Ok(progress.clone());
            }
        }
        let subscribers = status::status(pool).await?;
        let alert_after =
            chrono::Duration::from_std(self.alert_after).unwrap_or(chrono::Duration::MAX);
        let depth = outbox::depth(pool, self.clock.now() - alert_after).await?;
        let progress = Arc::new(Progress {
            subscribers,
            outbox_pending: depth.pending,
            dead_letters: depth.dead,
            stuck: depth.stuck,
            read_at: Instant::now(),
        });
        *last = Some(progress.clone());
        Ok(progress)
    }
}
