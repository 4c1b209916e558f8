//! Abandoning a paid request never recorded: it ends expired, closed to every party.

use super::*;

#[test]
fn abandoning_a_paid_request_that_was_never_recorded_records_it_expired_with_its_payment() {
    given(vec![])
        .when(abandon(PAYMENT))
        .then_expect_events(vec![abandoned()]);
}

#[test]
fn an_abandoned_request_is_expired_closed_and_remembers_its_trade_price_and_payment() {
    let request = replayed(vec![abandoned()]);
    assert_eq!(request.status(), Expired);
    assert!(!request.status().is_open());
    assert_eq!(request.trade(), trade());
    assert_eq!(request.price(), Some(price()));
    assert_eq!(request.payment_id(), Some(PAYMENT));
}

#[test]
fn abandoning_it_again_with_the_same_payment_records_nothing() {
    given(vec![abandoned()])
        .when(abandon(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn expiring_an_abandoned_request_records_nothing_as_it_expired_already() {
    given(vec![abandoned()])
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![]);
}

#[test]
fn an_abandoned_request_can_be_neither_accepted_rejected_completed_nor_cancelled() {
    let refused = [
        (accept(seller()), "accept"),
        (accept(Actor::System), "accept"),
        (reject(seller(), None), "reject"),
        (reject(Actor::System, Some("listing_reserved")), "reject"),
        (complete(buyer()), "complete"),
        (complete(Actor::System), "complete"),
        (cancel(BUYER), "cancel"),
        (cancel(SELLER), "cancel"),
    ];
    for (command, action) in refused {
        given(vec![abandoned()])
            .when(command)
            .then_expect_error(invalid(action, Expired));
    }
}

#[test]
fn a_stranger_acting_on_an_abandoned_request_is_told_there_is_no_such_request() {
    for command in [accept(stranger()), complete(stranger()), cancel(STRANGER)] {
        given(vec![abandoned()])
            .when(command)
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}
