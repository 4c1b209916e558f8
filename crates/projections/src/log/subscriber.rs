//! What a subscriber is: something that reacts to the log in batches (a view, the saga),
//! and how it says a batch could not be applied.

use async_trait::async_trait;
use sqlx::PgConnection;

use crate::log::{Checkpoint, StoredEvent};
use crate::replay::Shadow;

/// Why a subscriber could not apply a batch; the batch is rolled back and retried.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The subscriber's own tables refused the write.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A payload does not match the event type the subscriber expects.
    #[error("event payload at {at}: {source}")]
    Payload {
        /// The event.
        at: Checkpoint,
        /// What did not match.
        source: serde_json::Error,
    },
    /// A write a rebuild's fill ran aside ([`Filling`]) panicked or was cancelled.
    #[error("a write aside: {0}")]
    Aside(#[from] tokio::task::JoinError),
}

impl ApplyError {
    /// A payload of `event` that does not decode.
    pub fn payload(event: &StoredEvent, source: serde_json::Error) -> Self {
        ApplyError::Payload {
            at: event.checkpoint,
            source,
        }
    }
}

/// Something that reacts to the log: a projection or the saga.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// Its name: the key of its checkpoint row and the name of the schema holding its tables.
    fn name(&self) -> &'static str;

    /// The aggregate types whose events it reads (`None`: all). Events of other types still
    /// reach `apply`, with `null` payload and metadata: only their place in the log counts.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether applying events it has already applied changes nothing (a view whose keyed
    /// rows carry a version guard, whose other rows are keyed by log position), so that a
    /// lost checkpoint row can be re-created at the origin over its live state
    /// (`checkpoint.rs`). False unless a subscriber says so.
    fn replays_idempotently(&self) -> bool {
        false
    }

    /// Why it cannot be rebuilt from the log by the replay engine, if it cannot: a
    /// subscriber whose batches cause effects in the world (the saga's outbox) is not a
    /// pure fold. `None` (the default): it can.
    fn not_rebuildable(&self) -> Option<&'static str> {
        None
    }

    /// Unique indexes of its tables, by name, that no write of a rebuild's fill relies on
    /// (no conflict target names them, no batch reads by them): a fill leaves them, as it
    /// leaves the other indexes, to be built in one pass once it is done, and a duplicate
    /// then fails the rebuild instead of being skipped. None by default.
    fn unique_after_fill(&self) -> &'static [&'static str] {
        &[]
    }

    /// How a rebuild fills `shadow`, when not batch by batch as live (`None`, the default):
    /// see [`Filling`].
    fn filling(&self, _shadow: &Shadow) -> Option<Box<dyn Filling>> {
        None
    }

    /// Applies a batch of events, in log order, inside the batch transaction. Tables are
    /// named unqualified: the runner points `search_path` at the subscriber's schema (or,
    /// rebuilding, at a shadow copy of it). A batch lets a view fold many events into one
    /// read and one write of the rows they touch.
    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError>;
}

/// A rebuild's fill of a subscriber that keeps back, from one batch to the next, what it can
/// write in fewer, larger pieces, or aside on a connection of its own ([`Shadow::begin`])
/// while the next batches are applied: running totals, say, which no batch reads back. A
/// fill that fails waits for its writes aside to end before it returns, while the rebuild
/// still holds its lock, so none of them lands in the next attempt's shadow; what it kept
/// is lost with the shadow. The swap's last batches are applied as live.
#[async_trait]
pub trait Filling: Send {
    /// Applies a batch as [`Subscriber::apply`] would, but for what it keeps back.
    async fn apply(
        &mut self,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError>;

    /// Waits for its writes aside to end (each one's own error, if it failed).
    async fn written(&mut self) -> Result<(), ApplyError>;

    /// Writes what it kept back, once the fill has applied its last batch, and waits for
    /// every write aside to end (by default it kept nothing back: it only waits).
    async fn finish(&mut self) -> Result<(), ApplyError> {
        self.written().await
    }
}
