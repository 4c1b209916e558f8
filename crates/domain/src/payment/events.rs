//! What has happened to a payment; every event carries the trade and the amount.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::{Money, PaymentId, Trade};

/// An event of the `Payment` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// The buyer was charged; the money is held in escrow.
    PaymentCaptured {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount held.
        amount: Money,
        /// The gateway's reference.
        reference: String,
        /// When.
        captured_at: DateTime<Utc>,
    },
    /// The gateway declined the charge; no money moved.
    PaymentDeclined {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount asked.
        amount: Money,
        /// The gateway's reason.
        reason: String,
        /// When.
        declined_at: DateTime<Utc>,
    },
    /// The capture got no answer in time: the outcome is unknown until reconciled.
    PaymentCaptureTimedOut {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount asked.
        amount: Money,
        /// When.
        timed_out_at: DateTime<Utc>,
    },
    /// The held money went back to the buyer.
    PaymentRefunded {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount refunded (the amount captured).
        amount: Money,
        /// The gateway's reference.
        reference: String,
        /// When.
        refunded_at: DateTime<Utc>,
    },
    /// The held money went to the seller.
    PaymentPaidOut {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount paid out (the amount captured).
        amount: Money,
        /// The gateway's reference.
        reference: String,
        /// When.
        paid_out_at: DateTime<Utc>,
    },
}

impl PaymentEvent {
    /// The payment it happened to.
    pub fn payment_id(&self) -> PaymentId {
        match self {
            PaymentEvent::PaymentCaptured { payment_id, .. }
            | PaymentEvent::PaymentDeclined { payment_id, .. }
            | PaymentEvent::PaymentCaptureTimedOut { payment_id, .. }
            | PaymentEvent::PaymentRefunded { payment_id, .. }
            | PaymentEvent::PaymentPaidOut { payment_id, .. } => *payment_id,
        }
    }

    /// The trade the payment belongs to.
    pub fn trade(&self) -> &Trade {
        match self {
            PaymentEvent::PaymentCaptured { trade, .. }
            | PaymentEvent::PaymentDeclined { trade, .. }
            | PaymentEvent::PaymentCaptureTimedOut { trade, .. }
            | PaymentEvent::PaymentRefunded { trade, .. }
            | PaymentEvent::PaymentPaidOut { trade, .. } => trade,
        }
    }
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentCaptured { .. } => "PaymentCaptured",
            PaymentEvent::PaymentDeclined { .. } => "PaymentDeclined",
            PaymentEvent::PaymentCaptureTimedOut { .. } => "PaymentCaptureTimedOut",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
            PaymentEvent::PaymentPaidOut { .. } => "PaymentPaidOut",
        }
        .into()
    }

    fn event_version(&self) -> String {
        "1.0".into()
    }
}
