//! What a payment's outcome asks of its purchase request
//! (`PurchaseRequestCommand::after_payment`): the rule the request flow and its joint
//! append share.

use cqrs_es::Aggregate;

use super::*;
use crate::purchase_request::PurchaseRequestCommand;
use crate::Price;

fn after(events: Vec<PaymentEvent>) -> Option<PurchaseRequestCommand> {
    let mut payment = Payment::default();
    for event in events {
        payment.apply(event);
    }
    PurchaseRequestCommand::after_payment(&payment)
}

fn charged() -> Price {
    Price::parse(AMOUNT.as_krw()).unwrap()
}

#[test]
fn a_capture_places_the_request_at_the_amount_charged() {
    assert_eq!(
        after(vec![started(), captured()]),
        Some(PurchaseRequestCommand::PlaceRequest {
            trade: trade(),
            price: charged(),
            payment_id: PAYMENT,
        })
    );
}

#[test]
fn a_decline_records_the_failure_with_the_gateways_reason() {
    assert_eq!(
        after(vec![started(), declined_because("card expired")]),
        Some(PurchaseRequestCommand::RecordPaymentFailure {
            trade: trade(),
            price: charged(),
            payment_id: PAYMENT,
            reason: "card expired".into(),
        })
    );
}

#[test]
fn an_outcome_that_proves_nothing_or_moved_nothing_asks_nothing() {
    for events in [
        vec![started()],
        vec![started(), timed_out()],
        vec![started(), aborted("refused before charging")],
    ] {
        assert_eq!(after(events.clone()), None, "{events:?}");
    }
}
