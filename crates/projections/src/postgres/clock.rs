//! The production clock: the database's time, carried forward by this process's monotonic
//! clock between readings.
//!
//! Every process (API replicas, workers) stamps events and decides deadlines by one clock,
//! the database's: a replica's wall clock that is off, or steps forward (a bad NTP sync, a
//! VM resumed), moves nothing. Between readings, time is the last reading plus the elapsed
//! `Instant`, which no wall-clock step moves; readings every few seconds keep it within a
//! round trip of the database's own `clock_timestamp()`.

use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::{Duration, Instant};

use carrot_domain::Clock;
use chrono::{DateTime, Utc};

use super::Db;

/// How often the database's time is read again.
const EVERY: Duration = Duration::from_secs(10);

/// The database's time as this process tells it.
#[derive(Debug, Clone)]
pub struct DatabaseClock {
    reading: Arc<RwLock<Reading>>,
}

/// The database's time at one instant of this process's monotonic clock.
#[derive(Debug, Clone, Copy)]
struct Reading {
    database: DateTime<Utc>,
    at: Instant,
}

impl DatabaseClock {
    /// Reads the database's time, and keeps reading it in the background for as long as the
    /// clock (or a clone) lives. Needs a tokio runtime.
    pub async fn start(pool: &Db) -> Result<Self, sqlx::Error> {
        let clock = DatabaseClock {
            reading: Arc::new(RwLock::new(read(pool).await?)),
        };
        let weak = Arc::downgrade(&clock.reading);
        tokio::spawn(refresh(pool.clone(), weak));
        Ok(clock)
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> DateTime<Utc> {
        let reading = *self.reading.read().unwrap_or_else(PoisonError::into_inner);
        let elapsed = chrono::Duration::from_std(reading.at.elapsed()).unwrap_or_default();
        reading.database + elapsed
    }
}

/// One reading, placed half-way through its round trip.
async fn read(pool: &Db) -> Result<Reading, sqlx::Error> {
    let sent = Instant::now();
    let database: DateTime<Utc> = sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await?;
    let round_trip = sent.elapsed();
    Ok(Reading {
        database,
        at: sent + round_trip / 2,
    })
}

/// Reads again every `EVERY` until the clock is dropped. A failed reading keeps the last
/// one, which the monotonic clock keeps carrying forward.
async fn refresh(pool: Db, reading: Weak<RwLock<Reading>>) {
    loop {
        tokio::time::sleep(EVERY).await;
        let Some(shared) = reading.upgrade() else {
            return;
        };
        match read(&pool).await {
            Ok(fresh) => *shared.write().unwrap_or_else(PoisonError::into_inner) = fresh,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the database's time; going on from the last reading")
            }
        }
    }
}
