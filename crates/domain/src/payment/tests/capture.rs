//! Starting and capturing a payment: charged once, by one key, whatever the gateway says.

use std::time::Duration;

use super::*;
use crate::{DomainError, ErrorKind};

#[test]
fn capturing_charges_the_buyer_once_and_holds_the_money() {
    let gateway = ok_gateway();
    when(&gateway, vec![started()], capture()).then_expect_events(vec![captured()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    let payment = current(vec![captured()]);
    assert_eq!(payment.status(), PaymentStatus::Captured);
    assert_eq!((payment.amount(), payment.trade()), (AMOUNT, trade()));
}

#[test]
fn a_declined_capture_records_the_decline_and_its_reason() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Declined]));
    when(&gateway, vec![started()], capture()).then_expect_events(vec![declined()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    let payment = current(vec![declined()]);
    assert_eq!(payment.status(), PaymentStatus::Failed);
    assert_eq!(payment.decline_reason(), Some("insufficient funds"));
}

#[test]
fn a_capture_that_times_out_leaves_the_payment_unknown() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout]));
    when(&gateway, vec![started()], capture()).then_expect_events(vec![timed_out()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    assert_eq!(current(vec![timed_out()]).status(), PaymentStatus::Unknown);
}

#[test]
fn nothing_reaches_the_gateway_before_the_start_is_recorded() {
    let gateway = ok_gateway();
    when(&gateway, vec![], start()).then_expect_events(vec![started()]);
    assert_eq!(gateway.calls(), [], "the intent is recorded first, alone");
    when(&gateway, vec![], capture()).then_expect_error(PaymentError::NotStarted);
    assert_eq!(gateway.calls(), []);
    assert_eq!(current(vec![started()]).status(), PaymentStatus::Started);
}

#[test]
fn a_refusal_before_charging_on_the_first_call_aborts_the_capture() {
    let cases = [
        (
            Answer::Unavailable,
            "payment gateway unavailable: 503 from gateway",
        ),
        (CIRCUIT_OPEN, "payment gateway circuit open; retry in 30s"),
    ];
    for (answer, reason) in cases {
        let gateway = Arc::new(FakeGateway::new().capturing(&[answer]));
        when(&gateway, vec![started()], capture()).then_expect_events(vec![aborted(reason)]);
        assert_eq!(gateway.calls(), [capture_call()]);
        assert_eq!(
            current(vec![started(), aborted(reason)]).status(),
            PaymentStatus::Aborted
        );
    }
}

#[test]
fn a_refusal_on_a_later_call_proves_nothing_and_records_nothing() {
    // A crash may have cut off an earlier call after it charged: only an answer about the
    // key itself settles the payment.
    for (answer, error) in unreachable_gateway() {
        if answer == Answer::Timeout {
            continue;
        }
        for history in [vec![started()], vec![started(), timed_out()]] {
            let gateway = Arc::new(FakeGateway::new().capturing(&[answer]));
            when(&gateway, history, capture_again()).then_expect_error(error.clone());
            assert_eq!(gateway.calls(), [capture_call()]);
        }
    }
}

#[test]
fn a_capture_decided_again_after_a_lost_race_is_a_later_call() {
    // Its first decision asked the gateway: deciding again is no first call any more.
    assert_eq!(capture().again(), capture_again());
    assert_eq!(capture_again().again(), capture_again());
    for other in [
        start(),
        PaymentCommand::RefundPayment,
        PaymentCommand::PayOutPayment,
    ] {
        assert_eq!(other.again(), other);
    }
}

#[test]
fn an_aborted_capture_started_again_under_its_id_charges_once_with_the_same_key() {
    let reason = "payment gateway unavailable: 503 from gateway";
    let history = vec![started(), aborted(reason)];
    let gateway = ok_gateway();
    when(&gateway, history.clone(), capture()).then_expect_events(vec![]);
    assert_eq!(
        gateway.calls(),
        [],
        "aborted: nothing to send until started again"
    );
    when(&gateway, history.clone(), start()).then_expect_events(vec![started()]);
    let mut again = history;
    again.push(started());
    when(&gateway, again, capture()).then_expect_events(vec![captured()]);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn an_open_circuit_asks_to_wait_at_least_a_second_even_when_it_closes_sooner() {
    for retry_after in [
        Duration::ZERO,
        Duration::from_millis(200),
        Duration::from_millis(999),
    ] {
        let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::CircuitOpen(retry_after)]));
        when(&gateway, vec![started()], capture_again()).then_expect_error(
            PaymentError::CircuitOpen {
                retry_after_secs: 1,
            },
        );
    }
    let error = PaymentError::circuit_open(Duration::from_secs(30));
    assert_eq!(
        (error.kind(), error.code(), error.retry_after_secs()),
        (ErrorKind::Unavailable, "payment_unavailable", Some(30))
    );
}

#[test]
fn an_open_circuit_rounds_the_wait_up_to_whole_seconds() {
    let error = PaymentError::circuit_open(Duration::from_millis(1_900));
    assert_eq!(error.retry_after_secs(), Some(2));
}

#[test]
fn an_open_circuit_that_stays_open_for_ages_asks_to_wait_as_long_as_it_can_say() {
    let forever = PaymentError::circuit_open(Duration::from_secs(u64::MAX));
    assert_eq!(forever.retry_after_secs(), Some(u32::MAX));
}

#[test]
fn capturing_a_settled_payment_again_records_nothing_and_does_not_call_the_gateway() {
    for history in settled() {
        let gateway = ok_gateway();
        when(&gateway, history, capture()).then_expect_events(vec![]);
        assert_eq!(gateway.calls(), []);
    }
}

#[test]
fn starting_or_capturing_another_payment_under_a_taken_id_is_refused_without_calling_the_gateway() {
    let other_start = PaymentCommand::StartCapture {
        payment_id: OTHER_PAYMENT,
        trade: trade(),
        amount: AMOUNT,
    };
    let other_capture = PaymentCommand::CapturePayment {
        payment_id: OTHER_PAYMENT,
        first_attempt: false,
    };
    for history in [vec![started(), captured()], vec![started(), timed_out()]] {
        for command in [other_start.clone(), other_capture.clone()] {
            let gateway = ok_gateway();
            when(&gateway, history.clone(), command).then_expect_error(PaymentError::AlreadyExists);
            assert_eq!(gateway.calls(), []);
        }
    }
}

#[test]
fn retrying_an_unknown_capture_asks_again_with_the_same_key_and_records_the_capture() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout, Answer::Ok]));
    when(&gateway, vec![started()], capture()).then_expect_events(vec![timed_out()]);
    when(&gateway, vec![started(), timed_out()], capture_again())
        .then_expect_events(vec![captured()]);
    assert_eq!(gateway.calls(), [capture_call(), capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_that_times_out_again_records_nothing_more() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout]));
    when(&gateway, vec![started(), timed_out()], capture()).then_expect_events(vec![]);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_that_was_declined_records_the_decline() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Declined]));
    when(&gateway, vec![started(), timed_out()], capture()).then_expect_events(vec![declined()]);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_while_the_gateway_is_down_records_nothing() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Unavailable]));
    when(&gateway, vec![started(), timed_out()], capture())
        .then_expect_error(PaymentError::GatewayUnavailable("503 from gateway".into()));
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_while_the_circuit_is_open_records_nothing_and_stays_unknown() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[CIRCUIT_OPEN]));
    when(&gateway, vec![started(), timed_out()], capture()).then_expect_error(RETRY_IN_30S);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn a_started_capture_sends_the_recorded_order_whatever_a_retry_asks_for() {
    // The gateway answers a repeated key with the first attempt's outcome: recording the
    // retry's amount or trade would hold money that was never charged.
    let other_amount = PaymentCommand::StartCapture {
        payment_id: PAYMENT,
        trade: trade(),
        amount: Money::krw(1),
    };
    let other_trade = PaymentCommand::StartCapture {
        payment_id: PAYMENT,
        trade: Trade {
            buyer_id: UserId::from_uuid(Uuid::from_u128(0xb0c)),
            ..trade()
        },
        amount: AMOUNT,
    };
    for history in [vec![started()], vec![started(), timed_out()]] {
        for command in [other_amount.clone(), other_trade.clone()] {
            let gateway = ok_gateway();
            when(&gateway, history.clone(), command).then_expect_events(vec![]);
        }
        let gateway = ok_gateway();
        when(&gateway, history, capture_again()).then_expect_events(vec![captured()]);
        assert_eq!(gateway.calls(), [capture_call()]);
    }
}
