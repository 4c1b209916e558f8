//! Everything that reacts to Carrot's event log: the ordered reader, the subscription
//! runner with checkpoints, the views and their queries, and the Postgres wiring (pools,
//! migrations, the embedded cluster) shared with the api crate.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod consistency;
pub mod log;
pub mod postgres;
pub mod runner;
#[cfg(feature = "test-support")]
pub mod testing;

pub use log::{Checkpoint, StoredEvent};
pub use runner::{Runner, RunnerConfig, Shutdown, ShutdownTrigger, Subscriber, Wakeups};

use std::sync::Arc;

/// Every subscriber the workers run, in one place so `serve` and the tests agree.
pub fn subscribers() -> Vec<Arc<dyn Subscriber>> {
    vec![Arc::new(catalog::CatalogProjection)]
}
