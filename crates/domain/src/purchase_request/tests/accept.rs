//! Accepting a request: by the seller or the system, only while it is requested.

use super::*;

#[test]
fn the_seller_accepts_a_requested_request() {
    given_status(Requested)
        .when(accept(seller()))
        .then_expect_events(vec![accepted()]);
}

#[test]
fn the_system_may_accept_a_requested_request() {
    given_status(Requested)
        .when(accept(Actor::System))
        .then_expect_events(vec![accepted()]);
}

#[test]
fn accepting_a_request_twice_records_nothing_the_second_time() {
    for actor in [seller(), Actor::System] {
        given_status(Accepted)
            .when(accept(actor))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_buyer_cannot_accept_their_own_request() {
    given_status(Requested)
        .when(accept(buyer()))
        .then_expect_error(PurchaseRequestError::NotYourListing);
}

#[test]
fn a_stranger_accepting_is_told_there_is_no_such_request() {
    given_status(Requested)
        .when(accept(stranger()))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn accepting_an_unknown_request_is_refused() {
    for actor in [seller(), Actor::System] {
        given(vec![])
            .when(accept(actor))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn accepting_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Rejected, Completed, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(accept(seller()))
            .then_expect_error(invalid("accept", status));
    }
}
