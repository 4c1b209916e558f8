//! What can be asked of a payment.

use crate::{Actor, Money, PaymentId, Trade, UserId};

/// A command on the `Payment` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    /// Record that a capture is about to be sent (the write-ahead intent). Nothing is sent to
    /// the gateway until this is in the log.
    StartCapture {
        /// The payment (also the aggregate id and the root of its idempotency keys).
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount to hold.
        amount: Money,
    },
    /// Send the started capture to the gateway and record its outcome (the purchase
    /// request's own call). A payment whose outcome is unknown asks again with the same key.
    CapturePayment {
        /// The payment.
        payment_id: PaymentId,
        /// The caller recorded the start itself, just now, under an id only it uses: no
        /// earlier call with this key can exist, so a refusal before charging proves that
        /// nothing moved and is recorded as aborted. Otherwise (a retry, a repair) only an
        /// answer about the key itself is recorded.
        first_attempt: bool,
    },
    /// Give the held money back to the buyer.
    RefundPayment,
    /// Pay the held money out to the seller.
    PayOutPayment,
    /// Record a capture the gateway made that the log has no payment for (found by
    /// reconciliation), so that it can be refunded.
    RecordDiscoveredCapture {
        /// The payment its key names.
        payment_id: PaymentId,
        /// The buyer charged.
        buyer_id: UserId,
        /// The amount charged.
        amount: Money,
        /// The gateway's reference.
        reference: String,
    },
    /// Settle a started or `unknown` capture by asking the gateway what became of its key, without
    /// charging anyone: captured, declined, or never seen (then void).
    ReconcileCapture,
    /// Send the declined refund or payout again under a new attempt (an operator's call,
    /// once what made the gateway decline is fixed).
    RetryTransfer {
        /// Why, for the audit trail.
        reason: String,
        /// The operator.
        by: Actor,
    },
    /// Record that the declined refund or payout was made outside Carrot.
    SettleOutside {
        /// The outside reference.
        reference: String,
        /// Why, for the audit trail.
        reason: String,
        /// The operator.
        by: Actor,
    },
}

impl PaymentCommand {
    /// The command decided again after its first decision lost the race to the log (another
    /// append to the payment, or to the request its outcome was to record, came first). A
    /// capture's first decision asked the gateway under the key, so the next one is not the
    /// only call with it any more: a refusal must no longer read as proof that nothing
    /// moved. Every other command is decided again as it was.
    pub fn again(&self) -> Self {
        match self {
            PaymentCommand::CapturePayment { payment_id, .. } => PaymentCommand::CapturePayment {
                payment_id: *payment_id,
                first_attempt: false,
            },
            other => other.clone(),
        }
    }
}
