//! Rejecting a request: by the seller or the system, only while it is requested.

use super::*;

#[test]
fn the_seller_rejects_a_requested_request_with_a_reason() {
    given_status(Requested)
        .when(reject(seller(), Some("sold elsewhere")))
        .then_expect_events(vec![rejected(seller(), Some("sold elsewhere"))]);
}

#[test]
fn the_seller_may_reject_without_a_reason() {
    given_status(Requested)
        .when(reject(seller(), None))
        .then_expect_events(vec![rejected(seller(), None)]);
}

#[test]
fn the_system_rejects_a_request_for_a_reserved_listing() {
    given_status(Requested)
        .when(reject(Actor::System, Some("listing_reserved")))
        .then_expect_events(vec![rejected(Actor::System, Some("listing_reserved"))]);
}

#[test]
fn rejecting_a_request_twice_records_nothing_the_second_time() {
    for actor in [seller(), Actor::System] {
        given_status(Rejected)
            .when(reject(actor, Some("again")))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_buyer_cannot_reject_their_own_request() {
    given_status(Requested)
        .when(reject(buyer(), None))
        .then_expect_error(PurchaseRequestError::NotYourListing);
}

#[test]
fn a_stranger_rejecting_is_told_there_is_no_such_request() {
    given_status(Requested)
        .when(reject(stranger(), None))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn rejecting_an_unknown_request_is_refused() {
    for actor in [seller(), Actor::System] {
        given(vec![])
            .when(reject(actor, None))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn rejecting_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Accepted, Completed, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(reject(seller(), None))
            .then_expect_error(invalid("reject", status));
    }
}
