//! Reconciling a capture of unknown outcome: asking the gateway, never charging again.

use super::*;

/// Reconciles the timed-out capture with a gateway that says `answer` of it, and checks
/// that the gateway was asked once, by the capture's key, and charged no one.
fn reconcile_unknown(answer: Answer) -> AggregateResultValidator<Payment> {
    let gateway = Arc::new(FakeGateway::new().resolving(&[answer]));
    let result = when(
        &gateway,
        vec![timed_out()],
        PaymentCommand::ReconcileCapture,
    );
    assert_eq!(gateway.resolved(), [capture_call().key]);
    assert_eq!(gateway.calls(), [], "a reconcile moved money");
    result
}

#[test]
fn a_started_capture_whose_caller_vanished_is_reconciled_like_an_unknown_one() {
    for (answer, outcome) in [
        (Answer::Ok, captured()),
        (Answer::Declined, declined()),
        (
            Answer::Voided,
            declined_because("the capture never reached the gateway; it was voided"),
        ),
    ] {
        let gateway = Arc::new(FakeGateway::new().resolving(&[answer]));
        when(&gateway, vec![started()], PaymentCommand::ReconcileCapture)
            .then_expect_events(vec![outcome]);
        assert_eq!(gateway.resolved(), [capture_call().key]);
        assert_eq!(gateway.calls(), [], "a reconcile moved money");
    }
}

#[test]
fn a_discovered_capture_is_held_for_its_buyer_alone_and_recorded_once() {
    let gateway = ok_gateway();
    let record = PaymentCommand::RecordDiscoveredCapture {
        payment_id: PAYMENT,
        buyer_id: BUYER,
        amount: AMOUNT,
        reference: "gw-capture".into(),
    };
    let discovered = PaymentEvent::PaymentCaptureDiscovered {
        payment_id: PAYMENT,
        trade: Trade {
            buyer_id: BUYER,
            ..Trade::default()
        },
        amount: AMOUNT,
        reference: "gw-capture".into(),
        discovered_at: now(),
    };
    when(&gateway, vec![], record.clone()).then_expect_events(vec![discovered.clone()]);
    when(&gateway, vec![started(), captured()], record).then_expect_events(vec![]);
    let payment = current(vec![discovered]);
    assert_eq!(payment.status(), PaymentStatus::Captured);
    when(&gateway, vec![], PaymentCommand::RefundPayment).then_expect_error(PaymentError::NotFound);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn reconciling_an_unknown_capture_the_gateway_made_records_it_without_charging_again() {
    reconcile_unknown(Answer::Ok).then_expect_events(vec![captured()]);
    let payment = current(vec![timed_out(), captured()]);
    assert_eq!(payment.status(), PaymentStatus::Captured);
    assert_eq!((payment.amount(), payment.trade()), (AMOUNT, trade()));
}

#[test]
fn reconciling_an_unknown_capture_the_gateway_declined_records_the_decline_and_its_reason() {
    reconcile_unknown(Answer::Declined).then_expect_events(vec![declined()]);
    let payment = current(vec![timed_out(), declined()]);
    assert_eq!(payment.status(), PaymentStatus::Failed);
    assert_eq!(payment.decline_reason(), Some("insufficient funds"));
}

#[test]
fn reconciling_an_unknown_capture_the_gateway_never_saw_records_a_decline_as_it_is_now_void() {
    let reason = "the capture never reached the gateway; it was voided";
    reconcile_unknown(Answer::Voided).then_expect_events(vec![declined_because(reason)]);
    let payment = current(vec![timed_out(), declined_because(reason)]);
    assert_eq!(payment.status(), PaymentStatus::Failed);
    assert_eq!(payment.decline_reason(), Some(reason));
}

#[test]
fn reconciling_while_the_gateway_cannot_answer_records_nothing_and_reports_why() {
    for (answer, error) in unreachable_gateway() {
        reconcile_unknown(answer).then_expect_error(error);
    }
}

#[test]
fn a_reconcile_retried_after_a_gateway_failure_asks_again_by_the_same_key() {
    let gateway = Arc::new(FakeGateway::new().resolving(&[Answer::Timeout, CIRCUIT_OPEN]));
    let reconcile = || {
        when(
            &gateway,
            vec![timed_out()],
            PaymentCommand::ReconcileCapture,
        )
    };
    reconcile().then_expect_error(PaymentError::GatewayTimeout);
    reconcile().then_expect_error(RETRY_IN_30S);
    reconcile().then_expect_events(vec![captured()]);
    assert_eq!(gateway.resolved(), vec![capture_call().key; 3]);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn reconciling_a_payment_that_was_never_attempted_is_refused_without_calling_the_gateway() {
    let gateway = ok_gateway();
    when(&gateway, vec![], PaymentCommand::ReconcileCapture)
        .then_expect_error(PaymentError::NotFound);
    assert_eq!((gateway.calls(), gateway.resolved()), (vec![], vec![]));
}

#[test]
fn reconciling_a_settled_payment_records_nothing_and_does_not_call_the_gateway() {
    for history in settled() {
        let gateway = ok_gateway();
        when(&gateway, history, PaymentCommand::ReconcileCapture).then_expect_events(vec![]);
        assert_eq!((gateway.calls(), gateway.resolved()), (vec![], vec![]));
    }
}

#[test]
fn a_capture_retried_after_a_reconcile_found_it_void_does_not_call_the_gateway() {
    let void = declined_because("the capture never reached the gateway; it was voided");
    let gateway = ok_gateway();
    when(&gateway, vec![timed_out(), void], capture()).then_expect_events(vec![]);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn a_reconciled_capture_is_refunded_like_any_other() {
    let gateway = ok_gateway();
    when(
        &gateway,
        vec![timed_out(), captured()],
        PaymentCommand::RefundPayment,
    )
    .then_expect_events(vec![refunded()]);
    assert_eq!(gateway.calls(), [refund_call()]);
}
