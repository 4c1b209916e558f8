//! What can be asked of a purchase request.

use crate::payment::{Payment, PaymentStatus};
use crate::{Actor, PaymentId, Price, Trade, UserId};

/// A command on the `PurchaseRequest` aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum PurchaseRequestCommand {
    /// Record a request whose payment was captured (only then: never without it).
    PlaceRequest {
        /// Who trades what.
        trade: Trade,
        /// The agreed price (the listing's, or a lower offer).
        price: Price,
        /// The captured payment.
        payment_id: PaymentId,
    },
    /// Record a request whose payment was declined: it ends as `payment_failed`.
    RecordPaymentFailure {
        /// Who trades what.
        trade: Trade,
        /// The price that was to be paid.
        price: Price,
        /// The declined payment.
        payment_id: PaymentId,
        /// The gateway's reason.
        reason: String,
    },
    /// The seller accepts (the listing was reserved for it first).
    AcceptRequest {
        /// The seller, or the system completing an accept it had started.
        actor: Actor,
    },
    /// The seller rejects, or the system does (listing reserved or withdrawn).
    RejectRequest {
        /// Who rejects.
        actor: Actor,
        /// Why, if said.
        reason: Option<String>,
    },
    /// The buyer completes, or the system does after the completion deadline.
    CompleteRequest {
        /// Who completes.
        actor: Actor,
    },
    /// The buyer cancels (requested or accepted), or the seller (accepted).
    CancelRequest {
        /// Who cancels.
        actor: UserId,
    },
    /// Nobody answered before the request deadline.
    ExpireRequest,
    /// The payment was captured but the request was never recorded (the placing call died
    /// or answered 503): record it as expired, so the money is refunded.
    AbandonRequest {
        /// Who trades what.
        trade: Trade,
        /// The amount captured.
        price: Price,
        /// The captured payment.
        payment_id: PaymentId,
    },
}

impl PurchaseRequestCommand {
    /// What the log records of a request once its payment's outcome is known: placed on a
    /// capture, failed on a decline, at the amount charged (on a retry the listing's price
    /// may have changed since the payment started); nothing for any other outcome.
    pub fn after_payment(payment: &Payment) -> Option<Self> {
        let (trade, price) = (
            payment.trade(),
            Price::parse(payment.amount().as_krw()).ok()?,
        );
        let payment_id = payment.id();
        match payment.status() {
            PaymentStatus::Captured => Some(PurchaseRequestCommand::PlaceRequest {
                trade,
                price,
                payment_id,
            }),
            PaymentStatus::Failed => Some(PurchaseRequestCommand::RecordPaymentFailure {
                trade,
                price,
                payment_id,
                reason: payment.decline_reason().unwrap_or("declined").to_owned(),
            }),
            _ => None,
        }
    }
}
