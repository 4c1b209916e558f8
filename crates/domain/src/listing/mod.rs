//! The `Listing` aggregate: one item for sale, from registration to sale or withdrawal.
//!
//! It is the consistency boundary for "a listing is reserved or sold for at most one
//! request": only an available listing can be reserved, and concurrent reservations race
//! on this aggregate's sequence, so exactly one wins (see docs/DESIGN.md).

mod commands;
mod error;
mod events;
pub mod fields;
mod quote;

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::ListingCommand;
pub use error::ListingError;
pub use events::{Change, ListingChanges, ListingEvent, VERSIONS};
pub use quote::QuoteRefusal;

use crate::{Clock, ListingId, Price, RequestId, UserId};
use fields::{Description, ListingTitle};

/// Where a listing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Not registered yet (the aggregate's empty state).
    #[default]
    Unregistered,
    /// Open for purchase requests.
    Available,
    /// Held for one accepted request.
    Reserved(RequestId),
    /// Sold through one request.
    Sold(RequestId),
    /// Taken off sale by the seller.
    Withdrawn,
}

impl ListingStatus {
    /// The statuses a registered listing shows clients, in the order lists show them: the
    /// names views store, filters take and the API documents.
    pub const SHOWN: [ListingStatus; 4] = [
        ListingStatus::Available,
        ListingStatus::Reserved(RequestId::from_uuid(uuid::Uuid::nil())),
        ListingStatus::Sold(RequestId::from_uuid(uuid::Uuid::nil())),
        ListingStatus::Withdrawn,
    ];

    /// The status as clients see it.
    pub fn name(&self) -> &'static str {
        match self {
            ListingStatus::Unregistered => "unregistered",
            ListingStatus::Available => "available",
            ListingStatus::Reserved(_) => "reserved",
            ListingStatus::Sold(_) => "sold",
            ListingStatus::Withdrawn => "withdrawn",
        }
    }
}

/// A listing's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    id: ListingId,
    seller_id: UserId,
    title: Option<ListingTitle>,
    description: Option<Description>,
    price: Option<Price>,
    status: ListingStatus,
}

/// What the listing aggregate needs from the outside world.
#[derive(Clone)]
pub struct ListingServices {
    /// The time source for event timestamps.
    pub clock: Arc<dyn Clock>,
}

impl Listing {
    /// Where the listing stands.
    pub fn status(&self) -> ListingStatus {
        self.status
    }

    /// The seller.
    pub fn seller_id(&self) -> UserId {
        self.seller_id
    }

    /// The asking price (none before registration).
    pub fn price(&self) -> Option<Price> {
        self.price
    }

    fn require_seller(&self, actor: UserId) -> Result<(), ListingError> {
        match self.status {
            ListingStatus::Unregistered => Err(ListingError::NotFound),
            _ if actor != self.seller_id => Err(ListingError::NotYourListing),
            _ => Ok(()),
        }
    }

    fn require_available(&self) -> Result<(), ListingError> {
        match self.status {
            ListingStatus::Available => Ok(()),
            ListingStatus::Unregistered => Err(ListingError::NotFound),
            other => Err(ListingError::NotAvailable(other.name())),
        }
    }

    fn decide(
        &self,
        command: ListingCommand,
        clock: &dyn Clock,
    ) -> Result<Option<ListingEvent>, ListingError> {
        let now = clock.now();
        let event = match command {
            ListingCommand::RegisterListing {
                listing_id,
                seller_id,
                title,
                description,
                price,
                category,
            } => {
                match self.status {
                    ListingStatus::Unregistered => {}
                    // The same seller registering the same id again is a retry (ids come
                    // from the idempotency key): already done.
                    _ if self.seller_id == seller_id && self.id == listing_id => return Ok(None),
                    _ => return Err(ListingError::AlreadyRegistered),
                }
                ListingEvent::ListingRegistered {
                    listing_id,
                    seller_id,
                    title,
                    description,
                    price,
                    category,
                    registered_at: now,
                }
            }
            ListingCommand::EditListing {
                actor,
                title,
                description,
                price,
            } => {
                self.require_seller(actor)?;
                self.require_available()?;
                let (Some(old_title), Some(old_description), Some(old_price)) =
                    (&self.title, &self.description, self.price)
                else {
                    return Err(ListingError::NotFound);
                };
                // What differs from now, each with what it was.
                fn change<T: PartialEq + Clone>(old: &T, new: Option<T>) -> Option<Change<T>> {
                    new.filter(|new| new != old).map(|to| Change {
                        from: Some(old.clone()),
                        to,
                    })
                }
                let changes = ListingChanges {
                    title: change(old_title, title),
                    description: change(old_description, description),
                    price: change(&old_price, price),
                };
                if changes.is_empty() {
                    return Ok(None);
                }
                ListingEvent::ListingEdited {
                    listing_id: self.id,
                    changes,
                    edited_at: now,
                }
            }
            ListingCommand::WithdrawListing { actor } => {
                self.require_seller(actor)?;
                self.require_available()?;
                ListingEvent::ListingWithdrawn {
                    listing_id: self.id,
                    withdrawn_at: now,
                }
            }
            ListingCommand::ReserveListing { request_id } => {
                if self.status == ListingStatus::Reserved(request_id) {
                    return Ok(None);
                }
                self.require_available()?;
                ListingEvent::ListingReserved {
                    listing_id: self.id,
                    request_id,
                    reserved_at: now,
                }
            }
            ListingCommand::ReleaseListing { request_id } => {
                if self.status != ListingStatus::Reserved(request_id) {
                    // Already released, or never held by this request: nothing to undo.
                    return Ok(None);
                }
                ListingEvent::ListingReleased {
                    listing_id: self.id,
                    request_id,
                    released_at: now,
                }
            }
            ListingCommand::MarkListingSold { request_id } => match self.status {
                ListingStatus::Sold(by) if by == request_id => return Ok(None),
                ListingStatus::Reserved(by) if by == request_id => ListingEvent::ListingSold {
                    listing_id: self.id,
                    request_id,
                    sold_at: now,
                },
                ListingStatus::Unregistered => return Err(ListingError::NotFound),
                _ => return Err(ListingError::NotReservedForRequest),
            },
        };
        Ok(Some(event))
    }
}

impl Aggregate for Listing {
    const TYPE: &'static str = "listing";
    type Command = ListingCommand;
    type Event = ListingEvent;
    type Error = ListingError;
    type Services = ListingServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command, services.clock.as_ref())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ListingEvent::ListingRegistered {
                listing_id,
                seller_id,
                title,
                description,
                price,
                ..
            } => {
                self.id = listing_id;
                self.seller_id = seller_id;
                self.title = Some(title);
                self.description = Some(description);
                self.price = Some(price);
                self.status = ListingStatus::Available;
            }
            ListingEvent::ListingEdited { changes, .. } => {
                if let Some(title) = changes.title {
                    self.title = Some(title.to);
                }
                if let Some(description) = changes.description {
                    self.description = Some(description.to);
                }
                if let Some(price) = changes.price {
                    self.price = Some(price.to);
                }
            }
            ListingEvent::ListingWithdrawn { .. } => self.status = ListingStatus::Withdrawn,
            ListingEvent::ListingReserved { request_id, .. } => {
                self.status = ListingStatus::Reserved(request_id)
            }
            ListingEvent::ListingReleased { .. } => self.status = ListingStatus::Available,
            ListingEvent::ListingSold { request_id, .. } => {
                self.status = ListingStatus::Sold(request_id)
            }
        }
    }
}

#[cfg(test)]
mod tests;
