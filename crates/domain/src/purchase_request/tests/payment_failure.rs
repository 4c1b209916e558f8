//! Recording a declined payment: the request ends as payment failed.

use super::*;

#[test]
fn a_declined_payment_ends_the_request_as_payment_failed() {
    given(vec![])
        .when(record_failure(PAYMENT))
        .then_expect_events(vec![payment_failed()]);
    assert_eq!(current(PaymentFailed).status(), PaymentFailed);
    assert!(!PaymentFailed.is_open());
}

#[test]
fn recording_the_same_payment_failure_again_records_nothing() {
    given_status(PaymentFailed)
        .when(record_failure(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn recording_a_failure_of_another_payment_on_an_existing_request_is_refused() {
    for status in [Requested, PaymentFailed] {
        given_status(status)
            .when(record_failure(OTHER_PAYMENT))
            .then_expect_error(PurchaseRequestError::AlreadyExists);
    }
}
