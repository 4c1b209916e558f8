//! Paying a held payment out to the seller.

use super::*;

#[test]
fn paying_out_a_held_payment_sends_the_whole_amount_to_the_seller() {
    let gateway = ok_gateway();
    when(&gateway, vec![captured()], PaymentCommand::PayOutPayment)
        .then_expect_events(vec![paid_out()]);
    assert_eq!(gateway.calls(), [payout_call()]);
    assert_eq!(
        current(vec![captured(), paid_out()]).status(),
        PaymentStatus::PaidOut
    );
}

#[test]
fn paying_out_twice_records_nothing_and_does_not_call_the_gateway() {
    let gateway = ok_gateway();
    when(
        &gateway,
        vec![captured(), paid_out()],
        PaymentCommand::PayOutPayment,
    )
    .then_expect_events(vec![]);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn paying_out_a_refunded_payment_is_refused_without_calling_the_gateway() {
    let gateway = ok_gateway();
    when(
        &gateway,
        vec![captured(), refunded()],
        PaymentCommand::PayOutPayment,
    )
    .then_expect_error(PaymentError::AlreadyRefunded);
    assert_eq!(gateway.calls(), []);
}

#[test]
fn paying_out_a_payment_that_holds_no_money_is_refused_without_calling_the_gateway() {
    for (history, error) in not_held() {
        let gateway = ok_gateway();
        when(&gateway, history, PaymentCommand::PayOutPayment).then_expect_error(error);
        assert_eq!(gateway.calls(), []);
    }
}

#[test]
fn a_payout_the_gateway_fails_records_nothing_and_reports_why() {
    for (answer, error) in transfer_failures() {
        let gateway = Arc::new(FakeGateway::new().paying_out(&[answer]));
        when(&gateway, vec![captured()], PaymentCommand::PayOutPayment).then_expect_error(error);
        assert_eq!(gateway.calls(), [payout_call()]);
    }
}
