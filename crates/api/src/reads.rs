//! Where reads go: a read replica (`CARROT_READ_DATABASE_URL`) while it keeps up with the
//! primary, the primary otherwise. Commands, runners and the saga never read here.
//!
//! A replica holds the views and their checkpoint rows as the primary committed them, so a
//! consistency token is waited for on the replica exactly as on the primary. The one rule:
//! a read waits and reads on the same pool ([`Reads::pool`] is taken once per request), since
//! a primary is always at least as far as its replica, never the other way round.
//!
//! How far behind: every [`SAMPLE_EVERY`] the watcher notes the primary's WAL position, and
//! asks the replica how far it has replayed. The replica's lag is the age of the oldest
//! noted position it has not replayed yet (zero when it has replayed all of them), so an
//! idle primary does not look like a lagging replica. A replica further behind than
//! `max_lag`, or that does not answer, is bypassed until it is back within it; readiness and
//! `/metrics` say which pool reads use.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use serde::Serialize;

/// How often the watcher measures the replica's lag.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(200);
/// How long one measurement may take before the replica counts as unreachable.
const ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// A replica to read from, and how far behind it may fall.
#[derive(Clone, Debug)]
pub struct ReadReplica {
    /// A pool on the replica.
    pub pool: Db,
    /// Further behind than this, reads go to the primary.
    pub max_lag: Duration,
}

/// The pools reads choose from (cheap to clone).
#[derive(Clone)]
pub struct Reads {
    primary: Db,
    replica: Option<Arc<Replica>>,
}

struct Replica {
    pool: Db,
    max_lag: Duration,
    /// Whether reads use it now.
    serving: AtomicBool,
    /// Its lag at the last measurement, in milliseconds; -1: it did not answer.
    lag_ms: AtomicI64,
}

/// The pool one read uses.
#[derive(Clone, Copy)]
pub struct ReadPool<'a> {
    /// Where the read waits for its token and reads.
    pub db: &'a Db,
    /// The primary, when `db` is a replica: asked whether a token the replica has not seen
    /// names an event at all.
    pub primary: Option<&'a Db>,
}

/// The replica as readiness shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReplicaStatus {
    /// `replica` (reads go there) or `primary` (it is behind or down: bypassed).
    #[schema(example = "replica")]
    pub reads_from: &'static str,
    /// Its lag at the last measurement, in milliseconds; `null` when it did not answer.
    pub lag_ms: Option<i64>,
    /// Further behind than this, it is bypassed (`CARROT_READ_MAX_LAG_MS`).
    pub max_lag_ms: i64,
}

impl Reads {
    /// Reads from `primary`, or from `replica` while it keeps up; starts its watcher, which
    /// ends when the last clone of this value is dropped.
    pub fn new(primary: Db, replica: Option<ReadReplica>) -> Self {
        let replica = replica.map(|r| {
            let replica = Arc::new(Replica {
                pool: r.pool,
                max_lag: r.max_lag,
                // Not before the first measurement says it keeps up.
                serving: AtomicBool::new(false),
                lag_ms: AtomicI64::new(-1),
            });
            tokio::spawn(watch(primary.clone(), Arc::downgrade(&replica)));
            replica
        });
        Reads { primary, replica }
    }

    /// The pool a read waits and reads on (chosen once per request).
    pub fn choose(&self) -> ReadPool<'_> {
        match &self.replica {
            Some(r) if r.serving.load(Ordering::Relaxed) => ReadPool {
                db: &r.pool,
                primary: Some(&self.primary),
            },
            _ => ReadPool {
                db: &self.primary,
                primary: None,
            },
        }
    }

    /// The replica's state, if there is one.
    pub fn status(&self) -> Option<ReplicaStatus> {
        self.replica.as_ref().map(|r| {
            let lag = r.lag_ms.load(Ordering::Relaxed);
            ReplicaStatus {
                reads_from: if r.serving.load(Ordering::Relaxed) {
                    "replica"
                } else {
                    "primary"
                },
                lag_ms: (lag >= 0).then_some(lag),
                max_lag_ms: i64::try_from(r.max_lag.as_millis()).unwrap_or(i64::MAX),
            }
        })
    }
}

/// The primary's WAL positions noted, oldest first, each with when.
#[derive(Default)]
struct Samples(VecDeque<(Instant, i64)>);

impl Samples {
    /// Notes `position` at `at`, forgetting what is older than `keep`.
    fn note(&mut self, at: Instant, position: i64, keep: Duration) {
        self.0.push_back((at, position));
        while self
            .0
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > keep)
        {
            self.0.pop_front();
        }
    }

    /// How long ago the oldest position beyond `replayed` was noted (zero: none is).
    fn lag(&self, now: Instant, replayed: i64) -> Duration {
        self.0
            .iter()
            .find(|(_, position)| *position > replayed)
            .map_or(Duration::ZERO, |(t, _)| now.duration_since(*t))
    }
}

/// Measures the replica's lag every [`SAMPLE_EVERY`] and decides whether reads use it.
async fn watch(primary: Db, replica: Weak<Replica>) {
    let mut samples = Samples::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(r) = replica.upgrade() else { return };
        // Kept twice the bound: a lag beyond it reads as "at least the bound", enough to
        // decide.
        let keep = r.max_lag.saturating_mul(2).max(SAMPLE_EVERY * 4);
        let measured = tokio::time::timeout(ANSWER_WITHIN, async {
            let primary_at: i64 =
                sqlx::query_scalar("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
                    .fetch_one(&primary)
                    .await?;
            samples.note(Instant::now(), primary_at, keep);
            // NULL when the server is not in recovery (pointed at a primary): nothing to
            // replay, so nothing it lacks.
            let replayed: Option<i64> = sqlx::query_scalar(
                "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint",
            )
            .fetch_one(&r.pool)
            .await?;
            Ok::<_, sqlx::Error>(replayed.map_or(Duration::ZERO, |replayed| {
                samples.lag(Instant::now(), replayed)
            }))
        })
        .await;
        let lag = match measured {
            Ok(Ok(lag)) => Some(lag),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "measuring the read replica's lag failed");
                None
            }
            Err(_) => None,
        };
        let serving = lag.is_some_and(|lag| lag <= r.max_lag);
        let lag_ms = lag.map_or(-1, |l| i64::try_from(l.as_millis()).unwrap_or(i64::MAX));
        r.lag_ms.store(lag_ms, Ordering::Relaxed);
        let was = r.serving.swap(serving, Ordering::Relaxed);
        if was != serving {
            match serving {
                true => tracing::info!(lag_ms, "reads go to the replica again"),
                false => tracing::warn!(
                    lag_ms,
                    "the read replica is behind or down: reads go to the primary"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_the_age_of_the_oldest_position_not_yet_replayed() {
        let start = Instant::now();
        let keep = Duration::from_secs(10);
        let mut samples = Samples::default();
        for (ms, position) in [(0, 100), (200, 100), (400, 150), (600, 300)] {
            samples.note(start + Duration::from_millis(ms), position, keep);
        }
        let now = start + Duration::from_millis(700);
        assert_eq!(samples.lag(now, 300), Duration::ZERO, "all replayed");
        assert_eq!(samples.lag(now, 100), Duration::from_millis(300));
        assert_eq!(samples.lag(now, 99), Duration::from_millis(700));
        // An idle primary whose position stands still: the replica that has it is not behind.
        assert_eq!(
            samples.lag(start + Duration::from_secs(5), 300),
            Duration::ZERO
        );
    }

    #[test]
    fn old_positions_are_forgotten() {
        let start = Instant::now();
        let mut samples = Samples::default();
        samples.note(start, 1, Duration::from_secs(1));
        samples.note(start + Duration::from_secs(3), 2, Duration::from_secs(1));
        assert_eq!(samples.0.len(), 1);
    }
}
