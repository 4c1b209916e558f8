//! A scripted fake payment gateway that records every call it receives.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::payment::{
    CaptureOrder, CaptureStatus, GatewayError, PaymentError, PaymentGateway, Receipt, TransferOrder,
};
use crate::{Money, UserId};

/// What the fake gateway answers to one call. Asked about a capture, `Ok` means it was
/// made and `Declined` that it was declined; only a capture's status can be `Voided`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Answer {
    Ok,
    Declined,
    Voided,
    Unavailable,
    Timeout,
    CircuitOpen(Duration),
}

/// The open circuit the tests meet, and what it tells callers.
pub(super) const CIRCUIT_OPEN: Answer = Answer::CircuitOpen(Duration::from_secs(30));
pub(super) const RETRY_IN_30S: PaymentError = PaymentError::CircuitOpen {
    retry_after_secs: 30,
};

/// Which gateway operation was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Capture,
    Refund,
    Payout,
}

/// One call the gateway received: the operation, its idempotency key, the buyer (capture)
/// or recipient (transfer), and the amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Call {
    pub(super) op: Op,
    pub(super) key: String,
    pub(super) party: UserId,
    pub(super) amount: Money,
}

/// A gateway that answers from a script per operation (`Ok` once a script runs out) and
/// remembers every call: those that move money in `calls`, the keys of the captures it was
/// asked about in `resolves`.
#[derive(Debug, Default)]
pub(super) struct FakeGateway {
    captures: Mutex<VecDeque<Answer>>,
    refunds: Mutex<VecDeque<Answer>>,
    payouts: Mutex<VecDeque<Answer>>,
    resolutions: Mutex<VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
    resolves: Mutex<Vec<String>>,
}

impl FakeGateway {
    pub(super) fn new() -> Self {
        Self::default()
    }

    pub(super) fn capturing(self, answers: &[Answer]) -> Self {
        self.captures.lock().unwrap().extend(answers);
        self
    }

    pub(super) fn refunding(self, answers: &[Answer]) -> Self {
        self.refunds.lock().unwrap().extend(answers);
        self
    }

    pub(super) fn paying_out(self, answers: &[Answer]) -> Self {
        self.payouts.lock().unwrap().extend(answers);
        self
    }

    pub(super) fn resolving(self, answers: &[Answer]) -> Self {
        self.resolutions.lock().unwrap().extend(answers);
        self
    }

    pub(super) fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub(super) fn resolved(&self) -> Vec<String> {
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

pub(super) fn reference(op: Op) -> String {
    format!("gw-{op:?}").to_lowercase()
}
