//! What has happened to a purchase request; every event carries the whole trade.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::trade::Party;
use crate::{Actor, PaymentId, Price, Trade};

/// An event of the `PurchaseRequest` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PurchaseRequestEvent {
    /// A buyer requested a listing and paid; the money is held in escrow.
    PurchaseRequested {
        /// Who trades what.
        trade: Trade,
        /// The agreed price, fixed now.
        price: Price,
        /// The captured payment.
        payment_id: PaymentId,
        /// When.
        requested_at: DateTime<Utc>,
    },
    /// The buyer's payment was declined; the request ends here.
    PurchaseRequestPaymentFailed {
        /// Who trades what.
        trade: Trade,
        /// The price that was to be paid.
        price: Price,
        /// The declined payment.
        payment_id: PaymentId,
        /// The gateway's reason.
        reason: String,
        /// When.
        failed_at: DateTime<Utc>,
    },
    /// The seller accepted; the listing is reserved for this request.
    PurchaseRequestAccepted {
        /// Who trades what.
        trade: Trade,
        /// When.
        accepted_at: DateTime<Utc>,
    },
    /// The request was rejected; the payment is to be refunded.
    PurchaseRequestRejected {
        /// Who trades what.
        trade: Trade,
        /// The seller, or the system (`listing_reserved`, `listing_withdrawn`).
        by: Actor,
        /// Why, if said.
        reason: Option<String>,
        /// When.
        rejected_at: DateTime<Utc>,
    },
    /// The trade is done; the payment is to be paid out to the seller.
    PurchaseRequestCompleted {
        /// Who trades what.
        trade: Trade,
        /// True when the completion deadline did it, not the buyer.
        automatic: bool,
        /// When.
        completed_at: DateTime<Utc>,
    },
    /// The request was cancelled; the payment is to be refunded.
    PurchaseRequestCancelled {
        /// Who trades what.
        trade: Trade,
        /// Which side cancelled.
        by: Party,
        /// Whether it had been accepted (then the listing is released).
        after_acceptance: bool,
        /// When.
        cancelled_at: DateTime<Utc>,
    },
    /// Nobody answered in time; the payment is to be refunded.
    PurchaseRequestExpired {
        /// Who trades what.
        trade: Trade,
        /// When.
        expired_at: DateTime<Utc>,
    },
    /// The payment was captured but the request never got recorded; it ends expired and
    /// the payment is to be refunded.
    PurchaseRequestAbandoned {
        /// Who trades what.
        trade: Trade,
        /// The amount captured.
        price: Price,
        /// The captured payment.
        payment_id: PaymentId,
        /// When.
        abandoned_at: DateTime<Utc>,
    },
}

impl PurchaseRequestEvent {
    /// The trade the event belongs to.
    pub fn trade(&self) -> &Trade {
        match self {
            PurchaseRequestEvent::PurchaseRequested { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestPaymentFailed { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestAccepted { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestRejected { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestCompleted { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestCancelled { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestExpired { trade, .. }
            | PurchaseRequestEvent::PurchaseRequestAbandoned { trade, .. } => trade,
        }
    }
}

/// The version each event type is written with. A change to an event's stored shape moves
/// its version and adds an upcaster (docs/DESIGN.md, "Changing an event").
pub const VERSIONS: &[(&str, &str)] = &[
    ("PurchaseRequested", "1.0"),
    ("PurchaseRequestPaymentFailed", "1.0"),
    ("PurchaseRequestAccepted", "1.0"),
    ("PurchaseRequestRejected", "1.0"),
    ("PurchaseRequestCompleted", "1.0"),
    ("PurchaseRequestCancelled", "1.0"),
    ("PurchaseRequestExpired", "1.0"),
    ("PurchaseRequestAbandoned", "1.0"),
];

impl DomainEvent for PurchaseRequestEvent {
    fn event_type(&self) -> String {
        match self {
            PurchaseRequestEvent::PurchaseRequested { .. } => "PurchaseRequested",
            PurchaseRequestEvent::PurchaseRequestPaymentFailed { .. } => {
                "PurchaseRequestPaymentFailed"
            }
            PurchaseRequestEvent::PurchaseRequestAccepted { .. } => "PurchaseRequestAccepted",
            PurchaseRequestEvent::PurchaseRequestRejected { .. } => "PurchaseRequestRejected",
            PurchaseRequestEvent::PurchaseRequestCompleted { .. } => "PurchaseRequestCompleted",
            PurchaseRequestEvent::PurchaseRequestCancelled { .. } => "PurchaseRequestCancelled",
            PurchaseRequestEvent::PurchaseRequestExpired { .. } => "PurchaseRequestExpired",
            PurchaseRequestEvent::PurchaseRequestAbandoned { .. } => "PurchaseRequestAbandoned",
        }
        .into()
    }

    fn event_version(&self) -> String {
        crate::schema::version_in(VERSIONS, &self.event_type())
    }
}
