//! What has happened to a listing, in the past tense; the payloads are stored forever.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::fields::{Category, Description, ListingTitle};
use crate::{ListingId, Price, UserId};

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
}

impl DomainEvent for ListingEvent {
    fn event_type(&self) -> String {
        match self {
            ListingEvent::ListingRegistered { .. } => "ListingRegistered".into(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}
