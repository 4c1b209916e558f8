//! Event schemas: the version each event type is written with, and the chain of upcasters
//! that brings an event stored under an older version to the shape the code reads today.
//!
//! An event log is forever; the code that reads it is not. Every read of the log (the event
//! store loading an aggregate, the ordered reader feeding every subscriber and the saga,
//! `carrot replay`, `carrot events`) passes each stored `(type, version, payload)` through
//! [`upcast`] first. Changing an event's shape means three things, and the shape lock
//! (`lock.rs`, over `crates/domain/schemas/`) fails until all three are done: bump the
//! type's version in its aggregate's `VERSIONS`, add an upcaster from the old version
//! (`upcasters.rs`), and regenerate the lock. docs/DESIGN.md, "Changing an event", walks
//! through the one change made so far.

#[cfg(test)]
mod lock;
pub mod personal;
mod upcasters;

use cqrs_es::Aggregate;
use serde_json::Value;

use crate::account::{self, Account};
use crate::dead_letter::{self, DeadLetter};
use crate::listing::{self, Listing};
use crate::payment::{self, Payment};
use crate::purchase_request::{self, PurchaseRequest};

/// Every aggregate type, with its event types and the version each is written with today.
pub const EVENTS: [(&str, &[(&str, &str)]); 5] = [
    (<Listing as Aggregate>::TYPE, listing::VERSIONS),
    (
        <PurchaseRequest as Aggregate>::TYPE,
        purchase_request::VERSIONS,
    ),
    (<Payment as Aggregate>::TYPE, payment::VERSIONS),
    (<Account as Aggregate>::TYPE, account::VERSIONS),
    (<DeadLetter as Aggregate>::TYPE, dead_letter::VERSIONS),
];

/// The version of an aggregate's state as its snapshots hold it. Moved whenever the
/// aggregate's fields change: the event store ignores a snapshot of another version and
/// replays the aggregate from its events instead.
pub trait StateVersion {
    /// The version of the state this code holds.
    const STATE_VERSION: i32;
}

impl StateVersion for Listing {
    const STATE_VERSION: i32 = 1;
}

impl StateVersion for PurchaseRequest {
    const STATE_VERSION: i32 = 1;
}

impl StateVersion for Payment {
    const STATE_VERSION: i32 = 1;
}

impl StateVersion for Account {
    const STATE_VERSION: i32 = 1;
}

impl StateVersion for DeadLetter {
    const STATE_VERSION: i32 = 1;
}

/// Why this code cannot read a stored event. Never skipped: a reader stops on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// The aggregate has no such event type in this code (written by newer code).
    #[error("{aggregate_type} has no event type {event_type} in this code")]
    UnknownType {
        /// The aggregate's type.
        aggregate_type: String,
        /// The stored event type.
        event_type: String,
    },
    /// Written under a version newer than this code reads.
    #[error("{event_type} {version} is newer than this code reads ({current})")]
    Newer {
        /// The stored event type.
        event_type: String,
        /// The stored version.
        version: String,
        /// The version this code writes.
        current: &'static str,
    },
    /// No upcaster leads from the stored version to the current one.
    #[error("no upcaster reads {event_type} {version} (this code writes {current})")]
    NoPath {
        /// The stored event type.
        event_type: String,
        /// The stored version.
        version: String,
        /// The version this code writes.
        current: &'static str,
    },
}

/// The version `event_type` is written with, among an aggregate's `versions`; events no
/// table names (a bug the shape lock catches) are written `unversioned`, which no code reads.
pub fn version_in(versions: &[(&str, &str)], event_type: &str) -> String {
    versions
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or("unversioned", |(_, v)| v)
        .to_owned()
}

/// The version `event_type` of `aggregate_type` is written with today, if this code knows
/// the aggregate and the type.
pub fn current_version(aggregate_type: &str, event_type: &str) -> Option<&'static str> {
    let (_, versions) = EVENTS.iter().find(|(a, _)| *a == aggregate_type)?;
    versions
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
}

/// `major.minor`, ordered.
fn parse(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Brings a stored payload (`{"EventType": {...}}`) to the shape of its type's current
/// version, through each upcaster on the way. Events of aggregate types this code does not
/// own are returned as stored. A payload that is not the expected object is left for the
/// decoder to refuse (a damaged event is a poison, not an unknown version).
pub fn upcast(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    mut payload: Value,
) -> Result<Value, Unreadable> {
    if !EVENTS.iter().any(|(a, _)| *a == aggregate_type) {
        return Ok(payload);
    }
    let current =
        current_version(aggregate_type, event_type).ok_or_else(|| Unreadable::UnknownType {
            aggregate_type: aggregate_type.to_owned(),
            event_type: event_type.to_owned(),
        })?;
    let no_path = || Unreadable::NoPath {
        event_type: event_type.to_owned(),
        version: version.to_owned(),
        current,
    };
    let (Some(mut at), Some(target)) = (parse(version), parse(current)) else {
        return Err(no_path());
    };
    if at > target {
        return Err(Unreadable::Newer {
            event_type: event_type.to_owned(),
            version: version.to_owned(),
            current,
        });
    }
    while at < target {
        let step = upcasters::UPCASTERS
            .iter()
            .find(|u| {
                u.aggregate_type == aggregate_type
                    && u.event_type == event_type
                    && parse(u.from) == Some(at)
            })
            .ok_or_else(no_path)?;
        if let Some(body) = payload.get_mut(event_type).and_then(Value::as_object_mut) {
            (step.apply)(body);
        }
        at = parse(step.to).ok_or_else(no_path)?;
    }
    Ok(payload)
}

/// The upcasters as cqrs-es's [`EventUpcaster`](cqrs_es::persist::EventUpcaster), for a
/// store of cqrs-es's own reading Carrot's log (postgres-es's
/// `PersistedEventStore::with_upcasters(vec![Box::new(CqrsUpcaster)])`). It runs the whole
/// chain at once; an event it cannot bring up is left as stored, for the decoder to refuse.
#[derive(Debug, Clone, Copy, Default)]
pub struct CqrsUpcaster;

impl CqrsUpcaster {
    /// The aggregate an event type belongs to (event types are unique across aggregates).
    fn aggregate_of(event_type: &str) -> Option<&'static str> {
        EVENTS
            .iter()
            .find(|(_, types)| types.iter().any(|(t, _)| *t == event_type))
            .map(|(aggregate, _)| *aggregate)
    }
}

impl cqrs_es::persist::EventUpcaster for CqrsUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        let current = Self::aggregate_of(event_type)
            .and_then(|aggregate| current_version(aggregate, event_type))
            .and_then(parse);
        matches!((parse(event_version), current), (Some(at), Some(today)) if at < today)
    }

    fn upcast(
        &self,
        mut event: cqrs_es::persist::SerializedEvent,
    ) -> cqrs_es::persist::SerializedEvent {
        let (aggregate, event_type) = (&event.aggregate_type, &event.event_type);
        let stored = event.payload.clone();
        if let Ok(payload) = bring_up(aggregate, event_type, &mut event.event_version, stored) {
            event.payload = payload;
        }
        event
    }
}

/// [`upcast`], and `version` set to the type's current one: what every reader of stored
/// events does with one.
pub fn bring_up(
    aggregate_type: &str,
    event_type: &str,
    version: &mut String,
    payload: Value,
) -> Result<Value, Unreadable> {
    let payload = upcast(aggregate_type, event_type, version, payload)?;
    if let Some(current) = current_version(aggregate_type, event_type) {
        current.clone_into(version);
    }
    Ok(payload)
}

/// Why a stored event does not read as today's event.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No upcaster chain reads it.
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
    /// Upcast, it still does not decode as its aggregate's event.
    #[error("does not decode as today's event: {0}")]
    Decode(#[from] serde_json::Error),
}

/// Upcasts a stored event and decodes it as its aggregate's event; the decoded event,
/// serialized again (today's shape, every field present). For checks of the whole log
/// (`carrot events --check`) and the shape lock.
pub fn read(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: Value,
) -> Result<Value, ReadError> {
    let payload = upcast(aggregate_type, event_type, version, payload)?;
    fn again<E: serde::de::DeserializeOwned + serde::Serialize>(
        payload: Value,
    ) -> Result<Value, serde_json::Error> {
        serde_json::to_value(serde_json::from_value::<E>(payload)?)
    }
    Ok(match aggregate_type {
        <Listing as Aggregate>::TYPE => again::<listing::ListingEvent>(payload)?,
        <PurchaseRequest as Aggregate>::TYPE => {
            again::<purchase_request::PurchaseRequestEvent>(payload)?
        }
        <Payment as Aggregate>::TYPE => again::<payment::PaymentEvent>(payload)?,
        _ => payload,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn todays_events_pass_as_stored_and_other_aggregates_are_left_alone() {
        let payload = json!({"ListingWithdrawn": {"listing_id": "x", "withdrawn_at": "t"}});
        let read = upcast("listing", "ListingWithdrawn", "1.0", payload.clone());
        assert_eq!(read, Ok(payload.clone()));
        assert_eq!(
            upcast("strict", "Anything", "9.9", payload.clone()),
            Ok(payload)
        );
    }

    #[test]
    fn an_event_this_code_cannot_know_is_unreadable_never_skipped() {
        let payload = json!({});
        assert!(matches!(
            upcast("listing", "ListingPainted", "1.0", payload.clone()),
            Err(Unreadable::UnknownType { .. })
        ));
        assert!(matches!(
            upcast("listing", "ListingWithdrawn", "7.0", payload.clone()),
            Err(Unreadable::Newer { current: "1.0", .. })
        ));
        assert!(matches!(
            upcast("listing", "ListingWithdrawn", "one", payload.clone()),
            Err(Unreadable::NoPath { .. })
        ));
        assert!(matches!(
            upcast("listing", "ListingWithdrawn", "0.9", payload),
            Err(Unreadable::NoPath { .. })
        ));
    }

    #[test]
    fn every_upcaster_steps_up_within_one_known_type() {
        for step in upcasters::UPCASTERS {
            let current = current_version(step.aggregate_type, step.event_type);
            let current = current.and_then(parse);
            assert!(
                current.is_some(),
                "{} is not an event type",
                step.event_type
            );
            assert!(
                parse(step.from) < parse(step.to),
                "{} steps down",
                step.event_type
            );
            assert!(
                parse(step.to) <= current,
                "{} steps past today",
                step.event_type
            );
        }
    }
}
