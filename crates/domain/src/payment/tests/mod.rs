//! Given/when/then tests of the payment aggregate: the fixtures each command's module shares.

mod capture;
mod errors;
mod fake_gateway;
mod payout;
mod reconcile;
mod refund;
mod request_after;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateResultValidator, TestFramework};
use uuid::Uuid;

use super::*;
use crate::{FixedClock, ListingId, RequestId, UserId};

use fake_gateway::{reference, Answer, Call, FakeGateway, Op, CIRCUIT_OPEN, RETRY_IN_30S};

const PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a1));
const OTHER_PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a2));
const BUYER: UserId = UserId::from_uuid(Uuid::from_u128(0xb0b));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const AMOUNT: Money = Money::krw(15_000);

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
