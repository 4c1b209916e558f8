//! Releasing a reservation: the listing is available again, or nothing happens.

use super::*;

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
