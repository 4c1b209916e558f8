//! Withdrawing a listing: by its seller, while it is available.

use super::*;

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
