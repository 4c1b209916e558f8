//! Given/when/then tests of the listing aggregate: the fixtures each command's module shares.

mod edit;
mod errors;
mod mark_sold;
mod quote;
mod register;
mod release;
mod reserve;
mod withdraw;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::fields::{Description, ListingTitle};
use super::*;
use crate::FixedClock;

const LISTING: ListingId = ListingId::from_uuid(Uuid::from_u128(0x1157));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const STRANGER: UserId = UserId::from_uuid(Uuid::from_u128(0x0bad));
const REQUEST: RequestId = RequestId::from_uuid(Uuid::from_u128(0x4e01));
const OTHER_REQUEST: RequestId = RequestId::from_uuid(Uuid::from_u128(0x4e02));

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

fn services() -> ListingServices {
    ListingServices {
        clock: Arc::new(FixedClock::at(now())),
    }
}

/// A test whose listing has lived through `history`.
fn given(history: Vec<ListingEvent>) -> AggregateTestExecutor<Listing> {
    TestFramework::<Listing>::with(services()).given(history)
}

fn title(text: &str) -> ListingTitle {
    ListingTitle::parse(text).unwrap()
}

fn description(text: &str) -> Description {
    Description::parse(text).unwrap()
}

fn price(krw: i64) -> Price {
    Price::parse(krw).unwrap()
}

// Commands.

fn register(seller_id: UserId) -> ListingCommand {
    ListingCommand::RegisterListing {
        listing_id: LISTING,
        seller_id,
        title: title("Desk lamp"),
        description: description("Warm light"),
        price: price(15_000),
        category: None,
    }
}

fn edit(
    actor: UserId,
    new_title: Option<&str>,
    new_description: Option<&str>,
    new_price: Option<i64>,
) -> ListingCommand {
    ListingCommand::EditListing {
        actor,
        title: new_title.map(title),
        description: new_description.map(description),
        price: new_price.map(price),
    }
}

fn withdraw(actor: UserId) -> ListingCommand {
    ListingCommand::WithdrawListing { actor }
}

fn reserve(request_id: RequestId) -> ListingCommand {
    ListingCommand::ReserveListing { request_id }
}

fn release(request_id: RequestId) -> ListingCommand {
    ListingCommand::ReleaseListing { request_id }
}

fn mark_sold(request_id: RequestId) -> ListingCommand {
    ListingCommand::MarkListingSold { request_id }
}

// Events.

fn registered() -> ListingEvent {
    ListingEvent::ListingRegistered {
        listing_id: LISTING,
        seller_id: SELLER,
        title: title("Desk lamp"),
        description: description("Warm light"),
        price: price(15_000),
        category: None,
        registered_at: now(),
    }
}

/// What an edit changed: `(from, to)` of each field it changed.
#[derive(Default)]
struct Edit {
    title: Option<(&'static str, &'static str)>,
    description: Option<(&'static str, &'static str)>,
    price: Option<(i64, i64)>,
}

fn edited(edit: Edit) -> ListingEvent {
    ListingEvent::ListingEdited {
        listing_id: LISTING,
        changes: ListingChanges {
            title: edit.title.map(|(from, to)| Change {
                from: Some(title(from)),
                to: title(to),
            }),
            description: edit.description.map(|(from, to)| Change {
                from: Some(description(from)),
                to: description(to),
            }),
            price: edit.price.map(|(from, to)| Change {
                from: Some(price(from)),
                to: price(to),
            }),
        },
        edited_at: now(),
    }
}

fn withdrawn() -> ListingEvent {
    ListingEvent::ListingWithdrawn {
        listing_id: LISTING,
        withdrawn_at: now(),
    }
}

fn reserved(request_id: RequestId) -> ListingEvent {
    ListingEvent::ListingReserved {
        listing_id: LISTING,
        request_id,
        reserved_at: now(),
    }
}

fn released(request_id: RequestId) -> ListingEvent {
    ListingEvent::ListingReleased {
        listing_id: LISTING,
        request_id,
        released_at: now(),
    }
}

fn sold(request_id: RequestId) -> ListingEvent {
    ListingEvent::ListingSold {
        listing_id: LISTING,
        request_id,
        sold_at: now(),
    }
}

// Histories.

fn available() -> Vec<ListingEvent> {
    vec![registered()]
}

fn reserved_for(request_id: RequestId) -> Vec<ListingEvent> {
    vec![registered(), reserved(request_id)]
}

fn released_by(request_id: RequestId) -> Vec<ListingEvent> {
    vec![registered(), reserved(request_id), released(request_id)]
}

fn sold_to(request_id: RequestId) -> Vec<ListingEvent> {
    vec![registered(), reserved(request_id), sold(request_id)]
}

fn withdrawn_listing() -> Vec<ListingEvent> {
    vec![registered(), withdrawn()]
}

/// Every history after which the listing is no longer available, with the status name
/// the refusal reports.
fn unavailable() -> Vec<(Vec<ListingEvent>, &'static str)> {
    vec![
        (reserved_for(REQUEST), "reserved"),
        (sold_to(REQUEST), "sold"),
        (withdrawn_listing(), "withdrawn"),
    ]
}

fn current(history: Vec<ListingEvent>) -> Listing {
    let mut listing = Listing::default();
    history.into_iter().for_each(|event| listing.apply(event));
    listing
}
