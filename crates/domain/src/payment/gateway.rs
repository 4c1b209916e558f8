//! The payment gateway port: capture, refund and payout, each with an idempotency key
//! derived from the payment id, so a retried call never moves money twice.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Money, PaymentId, UserId};

/// Charge the buyer and hold the money.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOrder {
    /// The same key for every attempt at this capture.
    pub idempotency_key: String,
    /// Who pays.
    pub buyer_id: UserId,
    /// How much.
    pub amount: Money,
}

/// Give held money back to the buyer, or pay it out to the seller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOrder {
    /// The same key for every attempt at this transfer.
    pub idempotency_key: String,
    /// Who receives the money.
    pub recipient: UserId,
    /// How much.
    pub amount: Money,
}

/// The gateway's proof that money moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The gateway's own reference for the operation.
    pub reference: String,
}

/// Why a gateway call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The gateway refused (insufficient funds, card declined): a business answer, final.
    #[error("declined: {0}")]
    Declined(String),
    /// The gateway itself answered that it processed nothing (or could not be reached at
    /// all): nothing happened, try again later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// No answer that proves the outcome: no answer in time, a connection lost after the
    /// request left, a 5xx that is not the gateway's own "processed nothing". Unknown until
    /// asked again with the same key; never taken for "nothing moved".
    #[error("payment gateway gave no answer that proves the outcome")]
    Timeout,
    /// The circuit breaker is open: the call was not made. Try again after `retry_after`.
    #[error("payment gateway circuit open; retry in {}s", retry_after.as_secs())]
    CircuitOpen {
        /// How long until the breaker lets a trial call through.
        retry_after: std::time::Duration,
    },
}

/// What the gateway knows of a capture, asked by its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureStatus {
    /// The buyer was charged.
    Captured(Receipt),
    /// The gateway declined it.
    Declined(String),
    /// The gateway never saw the key. It is now void: a capture arriving late with it is
    /// declined, so the answer stays true.
    Voided,
}

/// What kind of money movement the gateway made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// The buyer was charged.
    Capture,
    /// Money went back to the buyer.
    Refund,
    /// Money went to the seller.
    Payout,
}

impl MovementKind {
    /// The operation's name, as keys and reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            MovementKind::Capture => "capture",
            MovementKind::Refund => "refund",
            MovementKind::Payout => "payout",
        }
    }
}

/// One movement of money as the gateway reports it (its transaction list): what the
/// reconciliation matches against the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    /// The idempotency key the movement was made under.
    pub idempotency_key: String,
    /// What moved.
    pub kind: MovementKind,
    /// Who paid (capture) or received (refund, payout).
    pub party: UserId,
    /// How much.
    pub amount: Money,
    /// The gateway's reference.
    pub reference: String,
    /// When the gateway made it (the gateway's clock).
    pub at: DateTime<Utc>,
}

/// The payment a key names, and what for: `capture:<payment id>`, `refund:<payment id>`,
/// `refund:<payment id>:<attempt>` and so on. `None` for a key Carrot did not make.
pub fn parse_key(key: &str) -> Option<(MovementKind, PaymentId)> {
    let (kind, rest) = key.split_once(':')?;
    let id = match rest.split_once(':') {
        Some((id, attempt))
            if kind != "capture" && attempt.parse::<u32>().is_ok_and(|n| n >= 2) =>
        {
            id
        }
        Some(_) => return None,
        None => rest,
    };
    let kind = match kind {
        "capture" => MovementKind::Capture,
        "refund" => MovementKind::Refund,
        "payout" => MovementKind::Payout,
        _ => return None,
    };
    Some((kind, PaymentId::from_uuid(uuid::Uuid::try_parse(id).ok()?)))
}

/// Idempotency keys: one per payment and operation, never a new one for a retry.
pub fn capture_key(payment_id: PaymentId) -> String {
    format!("capture:{payment_id}")
}

/// The refund key of a payment.
pub fn refund_key(payment_id: PaymentId) -> String {
    transfer_key(MovementKind::Refund, payment_id, 1)
}

/// The payout key of a payment.
pub fn payout_key(payment_id: PaymentId) -> String {
    transfer_key(MovementKind::Payout, payment_id, 1)
}

/// The key of one attempt at a refund or payout: the first is `refund:<payment id>`, an
/// operator's retry after a decline `refund:<payment id>:2` and on, a key the gateway has
/// not answered yet.
pub fn transfer_key(kind: MovementKind, payment_id: PaymentId, attempt: u32) -> String {
    match attempt {
        0 | 1 => format!("{}:{payment_id}", kind.name()),
        n => format!("{}:{payment_id}:{n}", kind.name()),
    }
}

/// A payment gateway (the simulated one, an HTTP one...).
#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charges the buyer and holds the money in escrow.
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError>;
    /// Returns held money to the buyer.
    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError>;
    /// Pays held money out to the seller.
    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError>;
    /// Tells what became of a capture whose answer was lost, without charging anyone.
    async fn resolve_capture(&self, idempotency_key: &str) -> Result<CaptureStatus, GatewayError>;
    /// The money it moved from `since` on (inclusive), oldest first, at most `limit`.
    async fn movements(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Movement>, GatewayError> {
        let _ = (since, limit);
        Err(GatewayError::Unavailable(
            "this gateway publishes no list of movements".into(),
        ))
    }
}
