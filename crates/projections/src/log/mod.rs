//! The event log as its followers see it: the ordered reader (`reader.rs`, every event
//! brought to its type's current version, its payload parsed as late as it can be:
//! `payload.rs`), the whole log's check (`check.rs`), and what
//! follows it (a subscriber, the runner that feeds it batches under its checkpoint, the events it
//! holds in quarantine, its progress, and the wake-ups that spare polling).

pub mod check;
pub mod checkpoint;
pub mod notify;
mod payload;
pub mod quarantine;
pub mod reader;
pub mod runner;
pub mod shared;
pub mod signals;
pub mod status;
pub mod subscriber;
mod tail;

pub use payload::Payload;
pub use reader::{
    events_of_aggregate, events_of_aggregates, events_of_trade, last_event_of, log_head,
    read_after, read_between, Checkpoint, EventRecord, MalformedToken, StoredEvent,
    UnreadableEvent,
};
pub use tail::tail;
