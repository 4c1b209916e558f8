//! Registering a listing: recorded once, with its category; refused over a taken id.

use super::*;
use crate::listing::fields::Category;

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
