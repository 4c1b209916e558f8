//! One read of the log shared by the runners of a process.
//!
//! Every runner of a process follows the same log, and at the head they wake together: each
//! reading the same events and shipping the same payloads six times over is a large part of
//! what following costs. So the runners of a process share their reads: the first runner
//! whose checkpoint has no window reads the next events (every payload, opened and brought
//! to its current version, kept as text that each runner parses into the events it
//! decodes: `payload.rs`) and keeps them as the window; a runner whose
//! checkpoint falls inside the window takes the events after it from there.
//!
//! Why this is exact: a window is every event in `(after, last]`, read below the horizon of
//! one snapshot, and nothing can appear below the horizon later (`reader.rs`). So for any
//! checkpoint `c` in `[after, last)`, the window's events after `c` are exactly the log's
//! events after `c` up to `last`, whichever snapshot, transaction or process holds `c`.
//! Each runner still locks its own checkpoint, applies and moves it in its own
//! transaction; only the read is shared.
//!
//! A window lives at most [`WINDOW_LIFE`]: what a person typed is opened in it, and an
//! account's erasure must not find a copy of its text kept in memory for long.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgConnection;

use crate::log::reader::{next_events_of_sql, ready_rows};
use crate::log::{Checkpoint, StoredEvent};

/// How long a window may be used after it was read.
pub const WINDOW_LIFE: Duration = Duration::from_secs(1);

/// The most windows kept at once (each of one batch's events at most).
const WINDOWS: usize = 8;

/// A read of the log, kept for the process's other runners.
struct Window {
    after: Checkpoint,
    events: Arc<[StoredEvent]>,
    read_at: Instant,
}

impl Window {
    /// Where `at` starts in the window, if the window holds the log after it.
    fn start_of(&self, at: Checkpoint) -> Option<usize> {
        let last = self.events.last()?.checkpoint;
        if at < self.after || at >= last || self.read_at.elapsed() > WINDOW_LIFE {
            return None;
        }
        Some(self.events.partition_point(|e| e.checkpoint <= at))
    }
}

/// The events a batch applies: a run of a window's events, or a read of its own.
pub struct Events {
    events: Arc<[StoredEvent]>,
    start: usize,
    end: usize,
}

impl std::ops::Deref for Events {
    type Target = [StoredEvent];
    fn deref(&self) -> &[StoredEvent] {
        self.events.get(self.start..self.end).unwrap_or_default()
    }
}

impl Events {
    fn of(events: Arc<[StoredEvent]>, start: usize, limit: i64) -> Self {
        let room = usize::try_from(limit).unwrap_or(0);
        let end = events.len().min(start.saturating_add(room));
        Events { events, start, end }
    }
}

/// The reads of one process's runners. A runner given none reads for itself.
#[derive(Clone, Default)]
pub struct SharedReads {
    /// The windows read lately, newest last. Runners a few events apart each find the one
    /// that starts at or before their checkpoint, so a runner ahead of the others adds a
    /// window instead of taking theirs away.
    windows: Arc<tokio::sync::Mutex<Vec<Window>>>,
}

impl SharedReads {
    /// A place for the runners of one process (on one database) to share their reads.
    pub fn new() -> Self {
        Self::default()
    }

    /// Up to `limit` events after `at`, from a window if one holds them, else read on `tx`
    /// (whose statement's horizon bounds them) and kept as a window. `types` is what the
    /// runner's subscriber reads: when the log holds an event of another type that this
    /// code cannot read, the read is the runner's own and filtered, as without sharing, so
    /// such an event stops no one who does not read it.
    pub(crate) async fn next(
        &self,
        tx: &mut PgConnection,
        at: Checkpoint,
        limit: i64,
        types: Option<&'static [&'static str]>,
    ) -> Result<Events, sqlx::Error> {
        // Held across the read: a runner that wakes with the others waits for the one read
        // under way instead of making its own.
        let mut windows = self.windows.lock().await;
        windows.retain(|w| w.read_at.elapsed() <= WINDOW_LIFE);
        let found = windows
            .iter()
            .filter_map(|w| Some((w, w.start_of(at)?)))
            .max_by_key(|(w, start)| w.events.len() - start);
        if let Some((window, start)) = found {
            reads_from("window");
            return Ok(Events::of(window.events.clone(), start, limit));
        }
        reads_from("log");
        match read(tx, at, limit, None).await {
            Ok(events) => {
                let events: Arc<[StoredEvent]> = events.into();
                if !events.is_empty() {
                    if windows.len() >= WINDOWS {
                        windows.remove(0);
                    }
                    windows.push(Window {
                        after: at,
                        events: events.clone(),
                        read_at: Instant::now(),
                    });
                }
                Ok(Events::of(events, 0, limit))
            }
            Err(sqlx::Error::Decode(e)) if e.is::<Box<crate::log::UnreadableEvent>>() => {
                drop(windows);
                read_own(tx, at, limit, types).await
            }
            Err(e) => Err(e),
        }
    }
}

fn reads_from(source: &str) {
    crate::metrics::global().inc("carrot_subscription_reads_total", &[("from", source)]);
}

/// A runner's own read, as it was before reads were shared: payloads of the types it reads.
pub(crate) async fn read_own(
    tx: &mut PgConnection,
    at: Checkpoint,
    limit: i64,
    types: Option<&'static [&'static str]>,
) -> Result<Events, sqlx::Error> {
    let events: Arc<[StoredEvent]> = read(tx, at, limit, types).await?.into();
    Ok(Events::of(events, 0, limit))
}

/// Up to `limit` events after `at`, below the horizon of this statement's snapshot, with
/// payload and metadata only for the aggregate types in `types` (`None`: all).
pub(crate) async fn read(
    tx: &mut PgConnection,
    at: Checkpoint,
    limit: i64,
    types: Option<&'static [&'static str]>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let sql = next_events_of_sql("$1::text::xid8", "$2", "$3", Some("$4::text[]"));
    let rows = sqlx::query(&sql)
        .bind(at.transaction_id.to_string())
        .bind(at.global_position)
        .bind(limit)
        .bind(types.map(<[&str]>::to_vec))
        .fetch_all(&mut *tx)
        .await?;
    ready_rows(&mut *tx, &rows).await
}
