//! Given/when/then tests of the payment aggregate, against a scripted fake gateway that
//! records every call it receives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateResultValidator, TestFramework};
use uuid::Uuid;

use super::*;
use crate::{Actor, DomainError, ErrorKind, FixedClock, ListingId, RequestId, UserId};

const PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a1));
const OTHER_PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a2));
const BUYER: UserId = UserId::from_uuid(Uuid::from_u128(0xb0b));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const AMOUNT: Money = Money::krw(15_000);

/// What the fake gateway answers to one call. Asked about a capture, `Ok` means it was
/// made and `Declined` that it was declined; only a capture's status can be `Voided`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok,
    Declined,
    Voided,
    Unavailable,
    Timeout,
    CircuitOpen(Duration),
}

/// The open circuit the tests meet, and what it tells callers.
const CIRCUIT_OPEN: Answer = Answer::CircuitOpen(Duration::from_secs(30));
const RETRY_IN_30S: PaymentError = PaymentError::CircuitOpen {
    retry_after_secs: 30,
};

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
/// remembers every call: those that move money in `calls`, the keys of the captures it was
/// asked about in `resolves`.
#[derive(Debug, Default)]
struct FakeGateway {
    captures: Mutex<VecDeque<Answer>>,
    refunds: Mutex<VecDeque<Answer>>,
    payouts: Mutex<VecDeque<Answer>>,
    resolutions: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
    resolves: Mutex<Vec<String>>,
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

    fn resolving(self, answers: &[Answer]) -> Self {
        self.resolutions.lock().unwrap().extend(answers);
        self
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn resolved(&self) -> Vec<String> {
        self.resolves.lock().unwrap().clone()
    }

    fn answer(&self, call: Call) -> Result<Receipt, GatewayError> {
        let script = match call.op {
            Op::Capture => &self.captures,
            Op::Refund => &self.refunds,
            Op::Payout => &self.payouts,
        };
        let op = call.op;
        self.calls.lock().unwrap().push(call);
        match next(script) {
            Answer::Ok => Ok(Receipt {
                reference: reference(op),
            }),
            Answer::Declined => Err(GatewayError::Declined("insufficient funds".into())),
            Answer::Voided => panic!("only a capture's status can be void"),
            failure => Err(failure_of(failure)),
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

    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        self.resolves.lock().unwrap().push(key.to_owned());
        match next(&self.resolutions) {
            Answer::Ok => Ok(CaptureStatus::Captured(Receipt {
                reference: reference(Op::Capture),
            })),
            Answer::Declined => Ok(CaptureStatus::Declined("insufficient funds".into())),
            Answer::Voided => Ok(CaptureStatus::Voided),
            failure => Err(failure_of(failure)),
        }
    }
}

fn next(script: &Mutex<VecDeque<Answer>>) -> Answer {
    script.lock().unwrap().pop_front().unwrap_or(Answer::Ok)
}

/// The error of an answer that says the gateway could not be reached.
fn failure_of(answer: Answer) -> GatewayError {
    match answer {
        Answer::Unavailable => GatewayError::Unavailable("503 from gateway".into()),
        Answer::Timeout => GatewayError::Timeout,
        Answer::CircuitOpen(retry_after) => GatewayError::CircuitOpen { retry_after },
        other => panic!("{other:?} is an answer, not a failure"),
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

fn start() -> PaymentCommand {
    PaymentCommand::StartCapture {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
    }
}

/// The purchase request's own call, right after it recorded the start.
fn capture() -> PaymentCommand {
    PaymentCommand::CapturePayment {
        payment_id: PAYMENT,
        first_attempt: true,
    }
}

/// A retry or a repair: the start was recorded by someone else, perhaps long ago.
fn capture_again() -> PaymentCommand {
    PaymentCommand::CapturePayment {
        payment_id: PAYMENT,
        first_attempt: false,
    }
}

// Events.

fn started() -> PaymentEvent {
    PaymentEvent::PaymentCaptureStarted {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        idempotency_key: format!("capture:{PAYMENT}"),
        started_at: now(),
    }
}

fn aborted(reason: &str) -> PaymentEvent {
    PaymentEvent::PaymentCaptureAborted {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reason: reason.into(),
        aborted_at: now(),
    }
}

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
    declined_because("insufficient funds")
}

fn declined_because(reason: &str) -> PaymentEvent {
    PaymentEvent::PaymentDeclined {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        reason: reason.into(),
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

/// The ways the gateway can fail to answer at all, and the error each becomes.
fn unreachable_gateway() -> [(Answer, PaymentError); 3] {
    [
        (
            Answer::Unavailable,
            PaymentError::GatewayUnavailable("503 from gateway".into()),
        ),
        (Answer::Timeout, PaymentError::GatewayTimeout),
        (CIRCUIT_OPEN, RETRY_IN_30S),
    ]
}

/// The failures a refund or payout can meet at the gateway that prove nothing final, and
/// the error each becomes (a decline is final, and recorded: see the tests below).
fn transfer_failures() -> Vec<(Answer, PaymentError)> {
    unreachable_gateway().to_vec()
}

/// A refund or payout the gateway declined, at attempt 1.
fn transfer_declined(kind: MovementKind) -> PaymentEvent {
    PaymentEvent::PaymentTransferDeclined {
        payment_id: PAYMENT,
        trade: trade(),
        amount: AMOUNT,
        kind,
        attempt: 1,
        idempotency_key: gateway::transfer_key(kind, PAYMENT, 1),
        reason: "insufficient funds".into(),
        declined_at: now(),
    }
}

/// Payments whose capture is settled: captured (at once or once reconciled), declined
/// (likewise), refunded or paid out.
fn settled() -> [Vec<PaymentEvent>; 6] {
    [
        vec![captured()],
        vec![declined()],
        vec![timed_out(), captured()],
        vec![timed_out(), declined()],
        vec![captured(), refunded()],
        vec![captured(), paid_out()],
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

// Reconcile.

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
    assert_eq!(
        class(RETRY_IN_30S),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
}

#[test]
fn only_an_open_circuit_says_when_to_retry() {
    assert_eq!(RETRY_IN_30S.retry_after_secs(), Some(30));
    let others = [
        PaymentError::NotFound,
        PaymentError::AlreadyExists,
        PaymentError::NotCaptured("failed"),
        PaymentError::AlreadyRefunded,
        PaymentError::AlreadyPaidOut,
        PaymentError::GatewayUnavailable("down".into()),
        PaymentError::GatewayTimeout,
        PaymentError::GatewayRefused("no".into()),
    ];
    for error in others {
        assert_eq!(error.retry_after_secs(), None, "{error:?}");
    }
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
