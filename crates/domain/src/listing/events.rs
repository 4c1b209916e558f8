//! What has happened to a listing, in the past tense; the payloads are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::fields::{Category, Description, ListingTitle};
use crate::{ListingId, Price, RequestId, UserId};

/// One field's change: its value before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    /// The value before; unknown (`None`) for edits recorded before `ListingEdited` 2.0,
    /// which kept only the values after.
    pub from: Option<T>,
    /// The value after.
    pub to: T,
}

/// What an edit changed; the fields it left alone are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListingChanges {
    /// The title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<Change<ListingTitle>>,
    /// The description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Change<Description>>,
    /// The asking price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Change<Price>>,
}

impl ListingChanges {
    /// Whether the edit changed nothing.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.price.is_none()
    }
}

/// An event of the `Listing` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ListingEvent {
    /// A seller registered a listing; it is available from now on.
    ListingRegistered {
        /// The listing.
        listing_id: ListingId,
        /// Who sells it.
        seller_id: UserId,
        /// Its title.
        title: ListingTitle,
        /// Its description.
        description: Description,
        /// The asking price.
        price: Price,
        /// An optional category.
        category: Option<Category>,
        /// When it was registered (from the injected clock).
        registered_at: DateTime<Utc>,
    },
    /// The seller edited the listing: what changed, each from what (version 2.0; 1.0 held
    /// the three values after the edit, and reads as changes from unknown values).
    ListingEdited {
        /// The listing.
        listing_id: ListingId,
        /// The fields the edit changed.
        changes: ListingChanges,
        /// When.
        edited_at: DateTime<Utc>,
    },
    /// The seller withdrew the listing; its pending requests are to be rejected.
    ListingWithdrawn {
        /// The listing.
        listing_id: ListingId,
        /// When.
        withdrawn_at: DateTime<Utc>,
    },
    /// The listing is held for one accepted request.
    ListingReserved {
        /// The listing.
        listing_id: ListingId,
        /// The accepted request.
        request_id: RequestId,
        /// When.
        reserved_at: DateTime<Utc>,
    },
    /// The listing is available again (its accepted request was cancelled).
    ListingReleased {
        /// The listing.
        listing_id: ListingId,
        /// The request that held it.
        request_id: RequestId,
        /// When.
        released_at: DateTime<Utc>,
    },
    /// The item was sold through this request.
    ListingSold {
        /// The listing.
        listing_id: ListingId,
        /// The completed request.
        request_id: RequestId,
        /// When.
        sold_at: DateTime<Utc>,
    },
}

impl ListingEvent {
    /// The listing it happened to.
    pub fn listing_id(&self) -> ListingId {
        match self {
            ListingEvent::ListingRegistered { listing_id, .. }
            | ListingEvent::ListingEdited { listing_id, .. }
            | ListingEvent::ListingWithdrawn { listing_id, .. }
            | ListingEvent::ListingReserved { listing_id, .. }
            | ListingEvent::ListingReleased { listing_id, .. }
            | ListingEvent::ListingSold { listing_id, .. } => *listing_id,
        }
    }

    /// For an event that changes the listing's status: the status's name after it, and when.
    pub fn status_change(&self) -> Option<(&'static str, DateTime<Utc>)> {
        match self {
            ListingEvent::ListingRegistered { registered_at, .. } => {
                Some(("available", *registered_at))
            }
            ListingEvent::ListingWithdrawn { withdrawn_at, .. } => {
                Some(("withdrawn", *withdrawn_at))
            }
            ListingEvent::ListingReserved { reserved_at, .. } => Some(("reserved", *reserved_at)),
            ListingEvent::ListingReleased { released_at, .. } => Some(("available", *released_at)),
            ListingEvent::ListingSold { sold_at, .. } => Some(("sold", *sold_at)),
            ListingEvent::ListingEdited { .. } => None,
        }
    }
}

/// The version each event type is written with. A change to an event's stored shape moves
/// its version and adds an upcaster (docs/DESIGN.md, "Changing an event").
pub const VERSIONS: &[(&str, &str)] = &[
    ("ListingRegistered", "1.0"),
    ("ListingEdited", "2.0"),
    ("ListingWithdrawn", "1.0"),
    ("ListingReserved", "1.0"),
    ("ListingReleased", "1.0"),
    ("ListingSold", "1.0"),
];

impl DomainEvent for ListingEvent {
    fn event_type(&self) -> String {
        match self {
            ListingEvent::ListingRegistered { .. } => "ListingRegistered",
            ListingEvent::ListingEdited { .. } => "ListingEdited",
            ListingEvent::ListingWithdrawn { .. } => "ListingWithdrawn",
            ListingEvent::ListingReserved { .. } => "ListingReserved",
            ListingEvent::ListingReleased { .. } => "ListingReleased",
            ListingEvent::ListingSold { .. } => "ListingSold",
        }
        .into()
    }

    fn event_version(&self) -> String {
        crate::schema::version_in(VERSIONS, &self.event_type())
    }
}
