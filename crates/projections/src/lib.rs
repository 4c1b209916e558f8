//! Everything behind the HTTP edge, one folder each:
//! - `write_side/`: the event store (`event_store.rs`), the command frameworks with their
//!   conflict retries, and the purchase-request slot claimed before money moves;
//! - `log/`: the ordered reader of the log and what follows it (the subscription runner,
//!   checkpoints, quarantine, progress, wake-ups);
//! - `views/`: the read models, their folding and queries, pages and the consistency wait;
//! - `settlement/`: the saga; `replay/`: rebuilding views;
//! - `postgres/`: pools, migrations, the log's order, roles, the embedded cluster.
#![forbid(unsafe_code)]

pub mod log;
pub mod metrics;
pub mod personal;
pub mod postgres;
pub mod replay;
pub mod settlement;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod views;
pub mod write_side;

pub use log::runner::{Runner, RunnerConfig};
pub use log::shared::SharedReads;
pub use log::signals::{Shutdown, ShutdownTrigger, Wakeups};
pub use log::subscriber::Subscriber;
pub use log::{Checkpoint, StoredEvent};

/// Every subscriber's name: the views', then the saga's.
pub fn subscriber_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = views::all().iter().map(|v| v.name()).collect();
    names.push(settlement::SETTLEMENT);
    names
}
