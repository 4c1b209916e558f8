//! Cancelling a request: by the buyer before acceptance, by either party after.

use super::*;

#[test]
fn the_buyer_cancels_a_requested_request_before_acceptance() {
    given_status(Requested)
        .when(cancel(BUYER))
        .then_expect_events(vec![cancelled(Party::Buyer, false)]);
}

#[test]
fn the_buyer_cancels_an_accepted_request_after_acceptance() {
    given_status(Accepted)
        .when(cancel(BUYER))
        .then_expect_events(vec![cancelled(Party::Buyer, true)]);
}

#[test]
fn the_seller_cancels_an_accepted_request_after_acceptance() {
    given_status(Accepted)
        .when(cancel(SELLER))
        .then_expect_events(vec![cancelled(Party::Seller, true)]);
}

#[test]
fn the_seller_cannot_cancel_a_request_that_is_still_pending() {
    given_status(Requested)
        .when(cancel(SELLER))
        .then_expect_error(invalid("cancel", Requested));
}

#[test]
fn cancelling_a_request_twice_records_nothing_the_second_time() {
    for party in [BUYER, SELLER] {
        given_status(Cancelled)
            .when(cancel(party))
            .then_expect_events(vec![]);
    }
}

#[test]
fn a_stranger_cancelling_is_told_there_is_no_such_request() {
    given_status(Accepted)
        .when(cancel(STRANGER))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn cancelling_an_unknown_request_is_refused() {
    given(vec![])
        .when(cancel(BUYER))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn cancelling_a_finished_request_is_an_invalid_transition_for_either_party() {
    for status in [Rejected, Completed, Expired, PaymentFailed] {
        for party in [BUYER, SELLER] {
            given_status(status)
                .when(cancel(party))
                .then_expect_error(invalid("cancel", status));
        }
    }
}
