//! What can be asked of a payment.

use crate::{Money, PaymentId, Trade};

/// A command on the `Payment` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentCommand {
    /// Charge the buyer and hold the money (the purchase request's own call).
    CapturePayment {
        /// The payment (also the aggregate id and the root of its idempotency keys).
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount to hold.
        amount: Money,
    },
    /// Give the held money back to the buyer.
    RefundPayment,
    /// Pay the held money out to the seller.
    PayOutPayment,
    /// Settle an `unknown` capture by asking the gateway what became of its key, without
    /// charging anyone: captured, declined, or never seen (then void).
    ReconcileCapture,
}
