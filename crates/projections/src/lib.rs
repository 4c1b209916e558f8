//! Everything that reacts to Carrot's event log: the ordered reader, the subscription
//! runner with checkpoints, the views and their queries, the settlement saga, and the
//! wiring shared with the api crate (the write side's command frameworks, pools,
//! migrations, the embedded cluster).
#![forbid(unsafe_code)]

pub mod catalog;
pub mod checkpoint;
pub mod commands;
pub mod consistency;
pub mod log;
pub mod metrics;
pub mod mypage;
pub mod notifications;
pub mod notify;
pub mod page;
pub mod payments;
pub mod postgres;
pub mod quarantine;
pub mod replay;
pub mod runner;
pub mod settlement;
pub mod signals;
pub mod status;
pub mod statuses;
pub mod store;
pub mod subscriber;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod timeline;
pub mod view;

pub use log::{Checkpoint, StoredEvent};
pub use runner::{Runner, RunnerConfig, Shutdown, ShutdownTrigger, Subscriber, Wakeups};

use std::sync::Arc;

/// Every view's projection, in one place so `serve`, replay and the tests agree. The
/// settlement saga is a subscriber too, but not a view: its effects are commands, so it is
/// never rebuilt.
pub fn views() -> Vec<Arc<dyn Subscriber>> {
    vec![
        Arc::new(catalog::CatalogProjection),
        Arc::new(payments::PaymentsProjection),
        Arc::new(mypage::MyPageProjection),
        Arc::new(timeline::TimelineProjection),
        Arc::new(notifications::NotificationsProjection),
    ]
}

/// Every subscriber's name: the views', then the saga's.
pub fn subscriber_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = views().iter().map(|v| v.name()).collect();
    names.push(settlement::SETTLEMENT);
    names
}
