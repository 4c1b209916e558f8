//! Given/when/then tests of the payment aggregate, against a scripted fake gateway that
//! records every call it receives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateResultValidator, TestFramework};
use uuid::Uuid;

use super::*;
use crate::{DomainError, ErrorKind, FixedClock, ListingId, RequestId, UserId};

const PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a1));
const OTHER_PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a2));
const BUYER: UserId = UserId::from_uuid(Uuid::from_u128(0xb0b));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const AMOUNT: Money = Money::krw(15_000);

/// What the fake gateway answers to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Declined,
    Unavailable,
    Timeout,
}

/// Which gateway operation was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Capture,
    Refund,
    Payout,
}

/// One call the gateway received: the operation, its idempotency key, the buyer (capture)
/// or recipient (transfer), and the amount.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    op: Op,
    key: String,
    party: UserId,
    amount: Money,
}

/// A gateway that answers from a script per operation (`Ok` once a script runs out) and
/// remembers every call.
#[derive(Debug, Default)]
struct FakeGateway {
    captures: Mutex<VecDeque<Answer>>,
    refunds: Mutex<VecDeque<Answer>>,
    payouts: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
}

impl FakeGateway {
    fn new() -> Self {
        Self::default()
    }

    fn capturing(self, answers: &[Answer]) -> Self {
        self.captures.lock().unwrap().extend(answers);
        self
    }

    fn refunding(self, answers: &[Answer]) -> Self {
        self.refunds.lock().unwrap().extend(answers);
        self
    }

    fn paying_out(self, answers: &[Answer]) -> Self {
        self.payouts.lock().unwrap().extend(answers);
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, call: Call) -> Result<Receipt, GatewayError> {
        let script = match call.op {
            Op::Capture => &self.captures,
            Op::Refund => &self.refunds,
            Op::Payout => &self.payouts,
        };
        let answer = script.lock().unwrap().pop_front().unwrap_or(Answer::Ok);
        let op = call.op;
        self.calls.lock().unwrap().push(call);
        match answer {
            Answer::Ok => Ok(Receipt {
                reference: reference(op),
            }),
            Answer::Declined => Err(GatewayError::Declined("insufficient funds".into())),
            Answer::Unavailable => Err(GatewayError::Unavailable("503 from gateway".into())),
            Answer::Timeout => Err(GatewayError::Timeout),
        }
    }

    fn transfer(&self, op: Op, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.answer(Call {
            op,
            key: order.idempotency_key,
            party: order.recipient,
            amount: order.amount,
        })
    }
}

#[async_trait]
impl PaymentGateway for FakeGateway {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        self.answer(Call {
            op: Op::Capture,
            key: order.idempotency_key,
            party: order.buyer_id,
            amount: order.amount,
        })
    }

    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.transfer(Op::Refund, order)
    }

    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.transfer(Op::Payout, order)
    }
}

fn reference(op: Op) -> String {
    format!("gw-{op:?}").to_lowercase()
}

fn trade() -> Trade {
    Trade {
        request_id: RequestId::from_uuid(Uuid::from_u128(0x4e01)),
        listing_id: ListingId::from_uuid(Uuid::from_u128(0x1157)),
        buyer_id: BUYER,
        seller_id: SELLER,
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

/// Runs `command` on a payment that has lived through `history`, against `gateway`.
fn when(
    gateway: &Arc<FakeGateway>,
    history: Vec<PaymentEvent>,
    command: PaymentCommand,
) -> AggregateResultValidator<Payment> {
    let services = PaymentServices {
        gateway: gateway.clone(),
        clock: Arc::new(FixedClock::at(now())),
    };
    TestFramework::<Payment>::with(services)
        .given(history)
        .when(command)
}

/// A gateway answering `Ok` to everything.
fn ok_gateway() -> Arc<FakeGateway> {
    Arc::new(FakeGateway::new())
}

// Calls the gateway should receive.

fn capture_call() -> Call {
    Call {
        op: Op::Capture,
        key: format!("capture:{PAYMENT}"),
        party: BUYER,
        amount: AMOUNT,
    }
}

fn refund_call() -> Call {
    Call {
        op: Op::Refund,
        key: format!("refund:{PAYMENT}"),
        party: BUYER,
        amount: AMOUNT,
    }
}

fn payout_call() -> Call {
    Call {
        op: Op::Payout,
        key: format!("payout:{PAYMENT}"),
        party: SELLER,
        amount: AMOUNT,
    }
}

// Commands.

fn capture() -> PaymentCommand {
    PaymentCommand::CapturePayment {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
    }
}

// Events.

fn captured() -> PaymentEvent {
    PaymentEvent::PaymentCaptured {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reference: reference(Op::Capture),
        captured_at: now(),
    }
}

fn declined() -> PaymentEvent {
    PaymentEvent::PaymentDeclined {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reason: "insufficient funds".into(),
        declined_at: now(),
    }
}

fn timed_out() -> PaymentEvent {
    PaymentEvent::PaymentCaptureTimedOut {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        timed_out_at: now(),
    }
}

fn refunded() -> PaymentEvent {
    PaymentEvent::PaymentRefunded {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reference: reference(Op::Refund),
        refunded_at: now(),
    }
}

fn paid_out() -> PaymentEvent {
    PaymentEvent::PaymentPaidOut {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reference: reference(Op::Payout),
        paid_out_at: now(),
    }
}

fn current(history: Vec<PaymentEvent>) -> Payment {
    let mut payment = Payment::default();
    history.into_iter().for_each(|event| payment.apply(event));
    payment
}

/// The failures a refund or payout can meet at the gateway, and the error each becomes.
fn transfer_failures() -> [(Answer, PaymentError); 3] {
    [
        (
            Answer::Unavailable,
            PaymentError::GatewayUnavailable("503 from gateway".into()),
        ),
        (Answer::Timeout, PaymentError::GatewayTimeout),
        (
            Answer::Declined,
            PaymentError::GatewayRefused("insufficient funds".into()),
        ),
    ]
}

/// Payments that hold no money, with the error a refund or payout of them gives.
fn not_held() -> [(Vec<PaymentEvent>, PaymentError); 3] {
    [
        (vec![], PaymentError::NotFound),
        (vec![timed_out()], PaymentError::NotCaptured("unknown")),
        (vec![declined()], PaymentError::NotCaptured("failed")),
    ]
}

// Capture.

#[test]
fn capturing_charges_the_buyer_once_and_holds_the_money() {
    let gateway = ok_gateway();
    when(&gateway, vec![], capture()).then_expect_events(vec![captured()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    let payment = current(vec![captured()]);
    assert_eq!(payment.status(), PaymentStatus::Captured);
    assert_eq!((payment.amount(), payment.trade()), (AMOUNT, trade()));
}

#[test]
fn a_declined_capture_records_the_decline_and_its_reason() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Declined]));
    when(&gateway, vec![], capture()).then_expect_events(vec![declined()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    let payment = current(vec![declined()]);
    assert_eq!(payment.status(), PaymentStatus::Failed);
    assert_eq!(payment.decline_reason(), Some("insufficient funds"));
}

#[test]
fn a_capture_that_times_out_leaves_the_payment_unknown() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout]));
    when(&gateway, vec![], capture()).then_expect_events(vec![timed_out()]);
    assert_eq!(gateway.calls(), [capture_call()]);
    assert_eq!(current(vec![timed_out()]).status(), PaymentStatus::Unknown);
}

#[test]
fn an_unavailable_gateway_records_nothing_and_says_so() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Unavailable]));
    when(&gateway, vec![], capture())
        .then_expect_error(PaymentError::GatewayUnavailable("503 from gateway".into()));
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn capturing_a_settled_payment_again_records_nothing_and_does_not_call_the_gateway() {
    let histories = [
        vec![captured()],
        vec![declined()],
        vec![captured(), refunded()],
        vec![captured(), paid_out()],
    ];
    for history in histories {
        let gateway = ok_gateway();
        when(&gateway, history, capture()).then_expect_events(vec![]);
        assert_eq!(gateway.calls(), []);
    }
}

#[test]
fn capturing_another_payment_under_a_taken_id_is_refused_without_calling_the_gateway() {
    let other = PaymentCommand::CapturePayment {
        payment_id: OTHER_PAYMENT,
        trade: trade(),
        amount: AMOUNT,
    };
    for history in [vec![captured()], vec![timed_out()]] {
        let gateway = ok_gateway();
        when(&gateway, history, other.clone()).then_expect_error(PaymentError::AlreadyExists);
        assert_eq!(gateway.calls(), []);
    }
}

#[test]
fn retrying_an_unknown_capture_asks_again_with_the_same_key_and_records_the_capture() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout, Answer::Ok]));
    when(&gateway, vec![], capture()).then_expect_events(vec![timed_out()]);
    when(&gateway, vec![timed_out()], capture()).then_expect_events(vec![captured()]);
    assert_eq!(gateway.calls(), [capture_call(), capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_that_times_out_again_records_nothing_more() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Timeout]));
    when(&gateway, vec![timed_out()], capture()).then_expect_events(vec![]);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_that_was_declined_records_the_decline() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Declined]));
    when(&gateway, vec![timed_out()], capture()).then_expect_events(vec![declined()]);
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_while_the_gateway_is_down_records_nothing() {
    let gateway = Arc::new(FakeGateway::new().capturing(&[Answer::Unavailable]));
    when(&gateway, vec![timed_out()], capture())
        .then_expect_error(PaymentError::GatewayUnavailable("503 from gateway".into()));
    assert_eq!(gateway.calls(), [capture_call()]);
}

#[test]
fn retrying_an_unknown_capture_asks_about_the_order_already_made_whatever_the_retry_says() {
    // The gateway answers a repeated key with the first attempt's outcome: recording the
    // retry's amount or trade would hold money that was never charged.
    let other_amount = PaymentCommand::CapturePayment {
        payment_id: PAYMENT,
        trade: trade(),
        amount: Money::krw(1),
    };
    let other_trade = PaymentCommand::CapturePayment {
        payment_id: PAYMENT,
        trade: Trade {
            buyer_id: UserId::from_uuid(Uuid::from_u128(0xb0c)),
            ..trade()
        },
        amount: AMOUNT,
    };
    for command in [other_amount, other_trade] {
        let gateway = ok_gateway();
        when(&gateway, vec![timed_out()], command).then_expect_events(vec![captured()]);
        assert_eq!(gateway.calls(), [capture_call()]);
    }
}

// Refund.

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
    let gateway = Arc::new(FakeGateway::new().refunding(&[Answer::Timeout]));
    when(&gateway, vec![captured()], PaymentCommand::RefundPayment)
        .then_expect_error(PaymentError::GatewayTimeout);
    when(&gateway, vec![captured()], PaymentCommand::RefundPayment)
        .then_expect_events(vec![refunded()]);
    assert_eq!(gateway.calls(), [refund_call(), refund_call()]);
}

// Pay out.

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

// Errors.

#[test]
fn every_refusal_has_a_class_and_a_stable_code() {
    let class = |error: PaymentError| (error.kind(), error.code());
    assert_eq!(
        class(PaymentError::NotFound),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(
        class(PaymentError::AlreadyExists),
        (ErrorKind::Conflict, "payment_already_exists")
    );
    assert_eq!(
        class(PaymentError::NotCaptured("failed")),
        (ErrorKind::Conflict, "payment_not_captured")
    );
    assert_eq!(
        class(PaymentError::AlreadyRefunded),
        (ErrorKind::Conflict, "payment_already_refunded")
    );
    assert_eq!(
        class(PaymentError::AlreadyPaidOut),
        (ErrorKind::Conflict, "payment_already_paid_out")
    );
    assert_eq!(
        class(PaymentError::GatewayUnavailable("down".into())),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
    assert_eq!(
        class(PaymentError::GatewayTimeout),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
    assert_eq!(
        class(PaymentError::GatewayRefused("no".into())),
        (ErrorKind::Conflict, "payment_refused")
    );
}

#[test]
fn idempotency_keys_are_derived_from_the_payment_id_per_operation() {
    assert_eq!(gateway::capture_key(PAYMENT), format!("capture:{PAYMENT}"));
    assert_eq!(gateway::refund_key(PAYMENT), format!("refund:{PAYMENT}"));
    assert_eq!(gateway::payout_key(PAYMENT), format!("payout:{PAYMENT}"));
    assert_ne!(
        gateway::capture_key(PAYMENT),
        gateway::capture_key(OTHER_PAYMENT)
    );
}
