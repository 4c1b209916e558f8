//! Carrot's pure domain: money, ids, the clock port and the event-sourced aggregates.
//!
//! Nothing here touches a database, HTTP or a runtime; the aggregates are driven by
//! cqrs-es and tested with its given/when/then `TestFramework`.
#![forbid(unsafe_code)]

pub mod account;
pub mod actor;
pub mod clock;
pub mod dead_letter;
pub mod ids;
pub mod listing;
pub mod metadata;
pub mod money;
pub mod payment;
pub mod purchase_request;
pub mod schema;
pub mod trade;

pub use actor::Actor;
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{ListingId, PaymentId, RequestId, UserId};
pub use money::{Money, Price};
pub use trade::Trade;

/// The class of a refused command, so the edge can choose a status without knowing each error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input breaks a rule (422).
    Invalid,
    /// The caller may not do this (403).
    Forbidden,
    /// The thing does not exist, or the caller may not see it (404).
    NotFound,
    /// The current state does not allow it (409).
    Conflict,
    /// A dependency (the payment gateway) is unavailable; try again later (503).
    Unavailable,
}

/// What every aggregate's error tells the edge: its class and a stable code. Domain errors
/// know nothing of HTTP.
pub trait DomainError: std::error::Error {
    /// The class of refusal.
    fn kind(&self) -> ErrorKind;
    /// A stable machine-readable code (`listing_not_available`, ...).
    fn code(&self) -> &'static str;
    /// For `Unavailable`: how many seconds a caller should wait before trying again.
    fn retry_after_secs(&self) -> Option<u32> {
        None
    }
}
