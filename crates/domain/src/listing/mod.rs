//! The `Listing` aggregate: one item for sale, from registration to sale or withdrawal.

mod commands;
mod error;
mod events;
pub mod fields;

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::ListingCommand;
pub use error::ListingError;
pub use events::ListingEvent;

use crate::{Clock, ListingId, Price, UserId};

/// Where a listing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Not registered yet (the aggregate's empty state).
    #[default]
    Unregistered,
    /// Open for purchase requests.
    Available,
}

/// A listing's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    id: ListingId,
    seller_id: UserId,
    price: Option<Price>,
    status: ListingStatus,
}

/// What the listing aggregate needs from the outside world.
#[derive(Clone)]
pub struct ListingServices {
    /// The time source for `registered_at`.
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
        match command {
            ListingCommand::RegisterListing {
                listing_id,
                seller_id,
                title,
                description,
                price,
                category,
            } => {
                if self.status != ListingStatus::Unregistered {
                    return Err(ListingError::AlreadyRegistered);
                }
                let event = ListingEvent::ListingRegistered {
                    listing_id,
                    seller_id,
                    title,
                    description,
                    price,
                    category,
                    registered_at: services.clock.now(),
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ListingEvent::ListingRegistered {
                listing_id,
                seller_id,
                price,
                ..
            } => {
                self.id = listing_id;
                self.seller_id = seller_id;
                self.price = Some(price);
                self.status = ListingStatus::Available;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fields::{Description, ListingTitle};
    use super::*;
    use crate::FixedClock;
    use chrono::{TimeZone, Utc};
    use cqrs_es::test::TestFramework;

    type ListingTest = TestFramework<Listing>;

    fn services() -> (ListingServices, chrono::DateTime<Utc>) {
        let now = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .unwrap_or_default();
        (
            ListingServices {
                clock: Arc::new(FixedClock::at(now)),
            },
            now,
        )
    }

    fn register(listing_id: ListingId, seller_id: UserId) -> ListingCommand {
        ListingCommand::RegisterListing {
            listing_id,
            seller_id,
            title: ListingTitle::parse("Desk lamp").unwrap(),
            description: Description::parse("Warm light").unwrap(),
            price: Price::parse(15_000).unwrap(),
            category: None,
        }
    }

    fn registered(
        listing_id: ListingId,
        seller_id: UserId,
        at: chrono::DateTime<Utc>,
    ) -> ListingEvent {
        ListingEvent::ListingRegistered {
            listing_id,
            seller_id,
            title: ListingTitle::parse("Desk lamp").unwrap(),
            description: Description::parse("Warm light").unwrap(),
            price: Price::parse(15_000).unwrap(),
            category: None,
            registered_at: at,
        }
    }

    #[test]
    fn registering_a_new_listing_records_it_with_the_clock_time() {
        let (services, now) = services();
        let (listing, seller) = (ListingId::new(), UserId::new());
        ListingTest::with(services)
            .given_no_previous_events()
            .when(register(listing, seller))
            .then_expect_events(vec![registered(listing, seller, now)]);
    }

    #[test]
    fn registering_twice_is_refused() {
        let (services, now) = services();
        let (listing, seller) = (ListingId::new(), UserId::new());
        ListingTest::with(services)
            .given(vec![registered(listing, seller, now)])
            .when(register(listing, seller))
            .then_expect_error(ListingError::AlreadyRegistered);
    }
}
