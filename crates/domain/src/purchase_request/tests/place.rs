//! Placing a paid request: recorded once, and refused for one's own listing.

use super::*;

#[test]
fn placing_a_paid_request_records_it_with_the_trade_price_and_payment() {
    given(vec![])
        .when(place(PAYMENT))
        .then_expect_events(vec![requested()]);
}

#[test]
fn a_placed_request_is_requested_and_remembers_its_trade_price_and_payment() {
    let request = current(Requested);
    assert_eq!(request.status(), Requested);
    assert_eq!(request.trade(), trade());
    assert_eq!(request.price(), Some(price()));
    assert_eq!(request.payment_id(), Some(PAYMENT));
}

#[test]
fn placing_it_again_with_the_same_payment_records_nothing() {
    given_status(Requested)
        .when(place(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn placing_it_again_with_another_payment_is_refused_whatever_its_status() {
    for status in EXISTING {
        given_status(status)
            .when(place(OTHER_PAYMENT))
            .then_expect_error(PurchaseRequestError::AlreadyExists);
    }
}

#[test]
fn requesting_ones_own_listing_is_refused() {
    let own = Trade {
        buyer_id: SELLER,
        ..trade()
    };
    given(vec![])
        .when(PurchaseRequestCommand::PlaceRequest {
            trade: own,
            price: price(),
            payment_id: PAYMENT,
        })
        .then_expect_error(PurchaseRequestError::OwnListing);
}
