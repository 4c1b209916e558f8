//! Expiring an unanswered request, only while it is requested.

use super::*;

#[test]
fn an_unanswered_request_expires() {
    given_due(history(Requested))
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![expired()]);
}

#[test]
fn expiring_a_request_twice_records_nothing_the_second_time() {
    given_status(Expired)
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![]);
}

#[test]
fn expiring_an_unknown_request_is_refused() {
    given(vec![])
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn expiring_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Accepted, Rejected, Completed, Cancelled, PaymentFailed] {
        given_status(status)
            .when(PurchaseRequestCommand::ExpireRequest)
            .then_expect_error(invalid("expire", status));
    }
}
