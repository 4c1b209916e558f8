//! Refunding a held payment to the buyer, and what an operator does with a declined one.

use super::*;
use crate::{Actor, DomainError, ErrorKind};

#[test]
fn refunding_a_held_payment_returns_the_whole_amount_to_the_buyer() {
    let gateway = ok_gateway();
    when(&gateway, vec![captured()], PaymentCommand::RefundPayment)
        .then_expect_events(vec![refunded()]);
    assert_eq!(gateway.calls(), [refund_call()]);
    assert_eq!(
        current(vec![captured(), refunded()]).status(),
        PaymentStatus::Refunded
    );
}

#[test]
fn refunding_twice_records_nothing_and_does_not_call_the_gateway() {
    let gateway = ok_gateway();
    when(
        &gateway,
        vec![captured(), refunded()],
        PaymentCommand::RefundPayment,
    )
    .then_expect_events(vec![]);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn refunding_a_paid_out_payment_is_refused_without_calling_the_gateway() {
    let gateway = ok_gateway();
    when(
        &gateway,
        vec![captured(), paid_out()],
        PaymentCommand::RefundPayment,
    )
    .then_expect_error(PaymentError::AlreadyPaidOut);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn refunding_a_payment_that_holds_no_money_is_refused_without_calling_the_gateway() {
    for (history, error) in not_held() {
        let gateway = ok_gateway();
        when(&gateway, history, PaymentCommand::RefundPayment).then_expect_error(error);
        assert_eq!(gateway.calls(), []);
    }
}

#[test]
fn a_refund_the_gateway_fails_records_nothing_and_reports_why() {
    for (answer, error) in transfer_failures() {
        let gateway = Arc::new(FakeGateway::new().refunding(&[answer]));
        when(&gateway, vec![captured()], PaymentCommand::RefundPayment).then_expect_error(error);
        assert_eq!(gateway.calls(), [refund_call()]);
    }
}

#[test]
fn a_refund_retried_after_a_gateway_failure_uses_the_same_key() {
    for (answer, error) in unreachable_gateway() {
        let gateway = Arc::new(FakeGateway::new().refunding(&[answer]));
        when(&gateway, vec![captured()], PaymentCommand::RefundPayment).then_expect_error(error);
        when(&gateway, vec![captured()], PaymentCommand::RefundPayment)
            .then_expect_events(vec![refunded()]);
        assert_eq!(gateway.calls(), [refund_call(), refund_call()]);
    }
}

#[test]
fn a_refund_refused_by_an_open_circuit_says_when_to_retry() {
    let gateway = Arc::new(FakeGateway::new().refunding(&[CIRCUIT_OPEN]));
    let refund = when(&gateway, vec![captured()], PaymentCommand::RefundPayment);
    let error = refund.inspect_result().unwrap_err();
    assert_eq!(
        (error.kind(), error.code(), error.retry_after_secs()),
        (ErrorKind::Unavailable, "payment_unavailable", Some(30))
    );
}

#[test]
fn a_declined_refund_is_recorded_held_and_never_sent_again_under_the_same_key() {
    let gateway = Arc::new(FakeGateway::new().refunding(&[Answer::Declined]));
    when(&gateway, vec![captured()], PaymentCommand::RefundPayment)
        .then_expect_events(vec![transfer_declined(MovementKind::Refund)]);
    let held = vec![captured(), transfer_declined(MovementKind::Refund)];
    assert_eq!(current(held.clone()).status(), PaymentStatus::Captured);
    when(&gateway, held, PaymentCommand::RefundPayment).then_expect_events(vec![]);
    assert_eq!(gateway.calls(), [refund_call()], "asked once");
}

#[test]
fn an_operator_retries_a_declined_refund_under_a_new_key_or_settles_it_outside() {
    let held = vec![captured(), transfer_declined(MovementKind::Refund)];
    let operator = Actor::User(UserId::from_uuid(Uuid::from_u128(0xad)));
    let retried = PaymentEvent::PaymentTransferRetried {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        kind: MovementKind::Refund,
        attempt: 2,
        reason: "account re-opened".into(),
        by: operator,
        retried_at: now(),
    };
    when(
        &ok_gateway(),
        held.clone(),
        PaymentCommand::RetryTransfer {
            reason: "account re-opened".into(),
            by: operator,
        },
    )
    .then_expect_events(vec![retried.clone()]);
    let after_retry = current([held.clone(), vec![retried]].concat());
    assert_eq!(after_retry.transfer_attempt(), 2);
    assert_eq!(after_retry.declined_transfer(), None);

    let outside = PaymentEvent::PaymentSettledOutside {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        kind: MovementKind::Refund,
        reference: "bank-1".into(),
        reason: "card closed".into(),
        by: operator,
        settled_at: now(),
    };
    let settle = PaymentCommand::SettleOutside {
        reference: "bank-1".into(),
        reason: "card closed".into(),
        by: operator,
    };
    when(&ok_gateway(), held.clone(), settle.clone()).then_expect_events(vec![outside.clone()]);
    let settled = [held, vec![outside]].concat();
    assert_eq!(current(settled.clone()).status(), PaymentStatus::Refunded);
    when(&ok_gateway(), settled, settle).then_expect_events(vec![]);
    // Nothing declined: nothing for an operator to answer.
    when(
        &ok_gateway(),
        vec![captured()],
        PaymentCommand::RetryTransfer {
            reason: "x".into(),
            by: operator,
        },
    )
    .then_expect_error(PaymentError::NoDeclinedTransfer);
}
