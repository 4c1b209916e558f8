//! Marking a listing sold: only for the request it is reserved for.

use super::*;

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
