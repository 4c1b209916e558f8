//! The payment gateway port: capture, refund and payout, each with an idempotency key
//! derived from the payment id, so a retried call never moves money twice.

use async_trait::async_trait;
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
    /// The gateway answered with an error: nothing happened, try again later.
    #[error("payment gateway unavailable: {0}")]
    Unavailable(String),
    /// No answer in time: the outcome is unknown until asked again with the same key.
    #[error("payment gateway timed out")]
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

/// Idempotency keys: one per payment and operation, never a new one for a retry.
pub fn capture_key(payment_id: PaymentId) -> String {
    format!("capture:{payment_id}")
}

/// The refund key of a payment.
pub fn refund_key(payment_id: PaymentId) -> String {
    format!("refund:{payment_id}")
}

/// The payout key of a payment.
pub fn payout_key(payment_id: PaymentId) -> String {
    format!("payout:{payment_id}")
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
}
