//! Creating a request whichever way: retries, conflicting creations and own listings.

use super::*;

#[test]
fn creating_it_again_the_same_way_with_the_same_payment_records_nothing_whatever_its_status() {
    for (way, history) in every_history() {
        given(history)
            .when(create(way, trade(), PAYMENT))
            .then_expect_events(vec![]);
    }
}

#[test]
fn creating_a_request_again_with_another_payment_is_refused_whatever_its_status_and_way() {
    for (_, history) in every_history() {
        for way in WAYS {
            given(history.clone())
                .when(create(way, trade(), OTHER_PAYMENT))
                .then_expect_error(PurchaseRequestError::AlreadyExists);
        }
    }
}

#[test]
fn creating_a_request_another_way_with_the_same_payment_is_refused_whatever_its_status() {
    for (first, history) in every_history() {
        for way in WAYS.into_iter().filter(|way| *way != first) {
            given(history.clone())
                .when(create(way, trade(), PAYMENT))
                .then_expect_error(PurchaseRequestError::AlreadyExists);
        }
    }
}

#[test]
fn a_late_placement_cannot_revive_an_abandoned_request() {
    given(vec![abandoned()])
        .when(place(PAYMENT))
        .then_expect_error(PurchaseRequestError::AlreadyExists);
}

#[test]
fn a_placed_request_that_expired_cannot_be_abandoned_though_both_end_expired() {
    given_status(Expired)
        .when(abandon(PAYMENT))
        .then_expect_error(PurchaseRequestError::AlreadyExists);
}

#[test]
fn creating_a_request_for_ones_own_listing_is_refused_whichever_way() {
    let own = Trade {
        buyer_id: SELLER,
        ..trade()
    };
    for way in WAYS {
        given(vec![])
            .when(create(way, own, PAYMENT))
            .then_expect_error(PurchaseRequestError::OwnListing);
    }
}

#[test]
fn creating_a_request_records_the_event_of_its_way() {
    for way in WAYS {
        given(vec![])
            .when(create(way, trade(), PAYMENT))
            .then_expect_events(vec![created(way)]);
    }
}
