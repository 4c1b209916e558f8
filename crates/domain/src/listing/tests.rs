//! Given/when/then tests of the listing aggregate: every transition and every refusal.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::fields::{Category, Description, ListingTitle};
use super::*;
use crate::{DomainError, ErrorKind, FixedClock};

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

fn edited(new_title: &str, new_description: &str, new_price: i64) -> ListingEvent {
    ListingEvent::ListingEdited {
        listing_id: LISTING,
        title: title(new_title),
        description: description(new_description),
        price: price(new_price),
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

// Register.

#[test]
fn registering_a_new_listing_records_it_with_the_clock_time() {
    given(vec![])
        .when(register(SELLER))
        .then_expect_events(vec![registered()]);
}

#[test]
fn registering_with_a_category_records_the_category() {
    let category = Category::parse("Furniture").ok();
    let mut command = register(SELLER);
    let mut expected = registered();
    if let ListingCommand::RegisterListing { category: c, .. } = &mut command {
        c.clone_from(&category);
    }
    if let ListingEvent::ListingRegistered { category: c, .. } = &mut expected {
        c.clone_from(&category);
    }
    given(vec![])
        .when(command)
        .then_expect_events(vec![expected]);
}

#[test]
fn a_registered_listing_is_available_with_its_seller_and_price() {
    let listing = current(available());
    assert_eq!(listing.status(), ListingStatus::Available);
    assert_eq!(listing.seller_id(), SELLER);
    assert_eq!(listing.price(), Some(price(15_000)));
}

#[test]
fn registering_the_same_listing_again_by_its_seller_records_nothing() {
    for history in [available(), sold_to(REQUEST), withdrawn_listing()] {
        given(history)
            .when(register(SELLER))
            .then_expect_events(vec![]);
    }
}

#[test]
fn registering_a_taken_listing_id_for_another_seller_is_refused() {
    given(available())
        .when(register(STRANGER))
        .then_expect_error(ListingError::AlreadyRegistered);
}

#[test]
fn registering_another_listing_id_over_an_existing_listing_is_refused() {
    let mut command = register(SELLER);
    if let ListingCommand::RegisterListing { listing_id, .. } = &mut command {
        *listing_id = ListingId::from_uuid(Uuid::from_u128(0x1158));
    }
    given(available())
        .when(command)
        .then_expect_error(ListingError::AlreadyRegistered);
}

// Edit.

#[test]
fn editing_every_field_records_the_new_values() {
    given(available())
        .when(edit(SELLER, Some("Floor lamp"), Some("Tall"), Some(20_000)))
        .then_expect_events(vec![edited("Floor lamp", "Tall", 20_000)]);
}

#[test]
fn editing_only_the_price_keeps_the_title_and_description() {
    given(available())
        .when(edit(SELLER, None, None, Some(12_000)))
        .then_expect_events(vec![edited("Desk lamp", "Warm light", 12_000)]);
}

#[test]
fn editing_only_the_title_keeps_the_description_and_price() {
    given(available())
        .when(edit(SELLER, Some("Reading lamp"), None, None))
        .then_expect_events(vec![edited("Reading lamp", "Warm light", 15_000)]);
}

#[test]
fn editing_only_the_description_keeps_the_title_and_price() {
    given(available())
        .when(edit(SELLER, None, Some(""), None))
        .then_expect_events(vec![edited("Desk lamp", "", 15_000)]);
}

#[test]
fn a_second_edit_starts_from_the_values_of_the_first() {
    given(available())
        .and(vec![edited("Floor lamp", "Tall", 20_000)])
        .when(edit(SELLER, None, None, Some(18_000)))
        .then_expect_events(vec![edited("Floor lamp", "Tall", 18_000)]);
}

#[test]
fn an_edit_is_applied_to_the_listing_state() {
    let mut history = available();
    history.push(edited("Floor lamp", "Tall", 20_000));
    assert_eq!(current(history).price(), Some(price(20_000)));
}

#[test]
fn an_edit_that_changes_nothing_records_nothing() {
    given(available())
        .when(edit(
            SELLER,
            Some("Desk lamp"),
            Some("Warm light"),
            Some(15_000),
        ))
        .then_expect_events(vec![]);
}

#[test]
fn an_edit_without_any_field_records_nothing() {
    given(available())
        .when(edit(SELLER, None, None, None))
        .then_expect_events(vec![]);
}

#[test]
fn editing_someone_elses_listing_is_refused() {
    given(available())
        .when(edit(STRANGER, None, None, Some(1)))
        .then_expect_error(ListingError::NotYourListing);
}

#[test]
fn a_stranger_is_told_the_listing_is_not_theirs_whatever_its_status() {
    for (history, _) in unavailable() {
        given(history)
            .when(edit(STRANGER, None, None, Some(1)))
            .then_expect_error(ListingError::NotYourListing);
    }
}

#[test]
fn editing_a_listing_that_is_not_available_is_refused() {
    for (history, status) in unavailable() {
        given(history)
            .when(edit(SELLER, None, None, Some(1)))
            .then_expect_error(ListingError::NotAvailable(status));
    }
}

#[test]
fn editing_an_unknown_listing_is_refused() {
    given(vec![])
        .when(edit(SELLER, None, None, Some(1)))
        .then_expect_error(ListingError::NotFound);
}

#[test]
fn editing_a_released_listing_is_allowed_again() {
    given(released_by(REQUEST))
        .when(edit(SELLER, None, None, Some(9_000)))
        .then_expect_events(vec![edited("Desk lamp", "Warm light", 9_000)]);
}

// Withdraw.

#[test]
fn withdrawing_an_available_listing_records_it() {
    given(available())
        .when(withdraw(SELLER))
        .then_expect_events(vec![withdrawn()]);
}

#[test]
fn a_withdrawn_listing_is_withdrawn() {
    assert_eq!(
        current(withdrawn_listing()).status(),
        ListingStatus::Withdrawn
    );
}

#[test]
fn withdrawing_someone_elses_listing_is_refused() {
    given(available())
        .when(withdraw(STRANGER))
        .then_expect_error(ListingError::NotYourListing);
}

#[test]
fn withdrawing_a_listing_that_is_not_available_is_refused() {
    for (history, status) in unavailable() {
        given(history)
            .when(withdraw(SELLER))
            .then_expect_error(ListingError::NotAvailable(status));
    }
}

#[test]
fn withdrawing_an_unknown_listing_is_refused() {
    given(vec![])
        .when(withdraw(SELLER))
        .then_expect_error(ListingError::NotFound);
}

#[test]
fn withdrawing_a_released_listing_is_allowed() {
    given(released_by(REQUEST))
        .when(withdraw(SELLER))
        .then_expect_events(vec![withdrawn()]);
}

// Reserve.

#[test]
fn reserving_an_available_listing_holds_it_for_the_request() {
    given(available())
        .when(reserve(REQUEST))
        .then_expect_events(vec![reserved(REQUEST)]);
    assert_eq!(
        current(reserved_for(REQUEST)).status(),
        ListingStatus::Reserved(REQUEST)
    );
}

#[test]
fn reserving_again_for_the_same_request_records_nothing() {
    given(reserved_for(REQUEST))
        .when(reserve(REQUEST))
        .then_expect_events(vec![]);
}

#[test]
fn reserving_for_another_request_while_reserved_is_refused() {
    given(reserved_for(REQUEST))
        .when(reserve(OTHER_REQUEST))
        .then_expect_error(ListingError::NotAvailable("reserved"));
}

#[test]
fn reserving_a_sold_listing_is_refused_even_for_the_request_that_bought_it() {
    for request in [REQUEST, OTHER_REQUEST] {
        given(sold_to(REQUEST))
            .when(reserve(request))
            .then_expect_error(ListingError::NotAvailable("sold"));
    }
}

#[test]
fn reserving_a_withdrawn_listing_is_refused() {
    given(withdrawn_listing())
        .when(reserve(REQUEST))
        .then_expect_error(ListingError::NotAvailable("withdrawn"));
}

#[test]
fn reserving_an_unknown_listing_is_refused() {
    given(vec![])
        .when(reserve(REQUEST))
        .then_expect_error(ListingError::NotFound);
}

#[test]
fn a_released_listing_can_be_reserved_for_another_request() {
    given(released_by(REQUEST))
        .when(reserve(OTHER_REQUEST))
        .then_expect_events(vec![reserved(OTHER_REQUEST)]);
}

// Release.

#[test]
fn releasing_a_reservation_makes_the_listing_available_again() {
    given(reserved_for(REQUEST))
        .when(release(REQUEST))
        .then_expect_events(vec![released(REQUEST)]);
    assert_eq!(
        current(released_by(REQUEST)).status(),
        ListingStatus::Available
    );
}

#[test]
fn releasing_a_listing_not_reserved_by_that_request_records_nothing() {
    let histories = [
        vec![],
        available(),
        released_by(REQUEST),
        reserved_for(OTHER_REQUEST),
        sold_to(REQUEST),
        withdrawn_listing(),
    ];
    for history in histories {
        given(history)
            .when(release(REQUEST))
            .then_expect_events(vec![]);
    }
}

// Mark sold.

#[test]
fn marking_a_reserved_listing_sold_for_its_request_records_the_sale() {
    given(reserved_for(REQUEST))
        .when(mark_sold(REQUEST))
        .then_expect_events(vec![sold(REQUEST)]);
    assert_eq!(
        current(sold_to(REQUEST)).status(),
        ListingStatus::Sold(REQUEST)
    );
}

#[test]
fn marking_sold_again_for_the_same_request_records_nothing() {
    given(sold_to(REQUEST))
        .when(mark_sold(REQUEST))
        .then_expect_events(vec![]);
}

#[test]
fn marking_sold_for_a_request_that_does_not_hold_the_listing_is_refused() {
    let histories = [
        available(),
        released_by(REQUEST),
        reserved_for(OTHER_REQUEST),
        sold_to(OTHER_REQUEST),
        withdrawn_listing(),
    ];
    for history in histories {
        given(history)
            .when(mark_sold(REQUEST))
            .then_expect_error(ListingError::NotReservedForRequest);
    }
}

#[test]
fn marking_an_unknown_listing_sold_is_refused() {
    given(vec![])
        .when(mark_sold(REQUEST))
        .then_expect_error(ListingError::NotFound);
}

// Errors.

#[test]
fn every_refusal_has_a_class_and_a_stable_code() {
    let class = |error: ListingError| (error.kind(), error.code());
    assert_eq!(
        class(ListingError::AlreadyRegistered),
        (ErrorKind::Conflict, "listing_already_registered")
    );
    assert_eq!(
        class(ListingError::NotFound),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(
        class(ListingError::NotYourListing),
        (ErrorKind::Forbidden, "not_your_listing")
    );
    assert_eq!(
        class(ListingError::NotAvailable("sold")),
        (ErrorKind::Conflict, "listing_not_available")
    );
    assert_eq!(
        class(ListingError::NotReservedForRequest),
        (ErrorKind::Conflict, "invalid_transition")
    );
}

mod quote {
    use super::*;
    use crate::listing::QuoteRefusal;

    fn listing(events: Vec<ListingEvent>) -> Listing {
        let mut listing = Listing::default();
        for event in events {
            cqrs_es::Aggregate::apply(&mut listing, event);
        }
        listing
    }

    #[test]
    fn a_buyer_pays_the_asking_price_or_a_lower_offer_never_a_higher_one() {
        let available = listing(vec![registered()]);
        let buyer = UserId::from_uuid(Uuid::from_u128(7));
        let asking = available.price().unwrap();
        assert_eq!(available.quote(buyer, None), Ok(asking));
        let lower = price(asking.as_krw() - 1);
        assert_eq!(available.quote(buyer, Some(lower)), Ok(lower));
        let higher = price(asking.as_krw() + 1);
        assert_eq!(
            available.quote(buyer, Some(higher)),
            Err(QuoteRefusal::AboveAsking(asking))
        );
    }

    #[test]
    fn the_seller_an_unknown_listing_and_a_taken_one_are_refused_in_that_order() {
        let available = listing(vec![registered()]);
        assert_eq!(
            available.quote(available.seller_id(), None),
            Err(QuoteRefusal::OwnListing)
        );
        assert_eq!(
            Listing::default().quote(UserId::from_uuid(Uuid::from_u128(7)), None),
            Err(QuoteRefusal::NotFound)
        );
        let reserved = listing(vec![
            registered(),
            reserved(RequestId::from_uuid(Uuid::from_u128(8))),
        ]);
        assert_eq!(
            reserved.quote(UserId::from_uuid(Uuid::from_u128(7)), None),
            Err(QuoteRefusal::NotAvailable("reserved"))
        );
        // Its own seller hears "your own listing" whatever its status.
        assert_eq!(
            reserved.quote(reserved.seller_id(), None),
            Err(QuoteRefusal::OwnListing)
        );
    }
}
