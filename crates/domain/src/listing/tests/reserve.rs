//! Reserving a listing for a purchase request: once, and only while it is available.

use super::*;

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
