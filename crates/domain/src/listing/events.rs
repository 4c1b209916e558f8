//! What has happened to a listing, in the past tense; the payloads are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::fields::{Category, Description, ListingTitle};
use crate::{ListingId, Price, RequestId, UserId};

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
    /// The seller edited the listing; the event holds the values after the edit.
    ListingEdited {
        /// The listing.
        listing_id: ListingId,
        /// The title now.
        title: ListingTitle,
        /// The description now.
        description: Description,
        /// The price now.
        price: Price,
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
        "1.0".into()
    }
}
