//! Completing a request: by the buyer or the system, only once it is accepted.

use super::*;

#[test]
fn the_buyer_completes_an_accepted_request() {
    given_status(Accepted)
        .when(complete(buyer()))
        .then_expect_events(vec![completed(false)]);
}

#[test]
fn the_system_completes_an_accepted_request_automatically() {
    given_due(history(Accepted))
        .when(complete(Actor::System))
        .then_expect_events(vec![completed(true)]);
}

#[test]
fn completing_a_request_twice_records_nothing_the_second_time() {
    for actor in [buyer(), Actor::System] {
        given_status(Completed)
            .when(complete(actor))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_seller_cannot_complete_a_request() {
    given_status(Accepted)
        .when(complete(seller()))
        .then_expect_error(PurchaseRequestError::NotYourRequest);
}

#[test]
fn a_stranger_completing_is_told_there_is_no_such_request() {
    given_status(Accepted)
        .when(complete(stranger()))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn completing_an_unknown_request_is_refused() {
    for actor in [buyer(), Actor::System] {
        given(vec![])
            .when(complete(actor))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn completing_from_any_status_but_accepted_is_an_invalid_transition() {
    for status in [Requested, Rejected, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(complete(buyer()))
            .then_expect_error(invalid("complete", status));
    }
}
