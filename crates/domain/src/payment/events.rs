//! What has happened to a payment; every event carries the trade and the amount.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use super::MovementKind;
use crate::{Actor, Money, PaymentId, Trade};

/// An event of the `Payment` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PaymentEvent {
    /// A capture is about to be sent to the gateway: written before the call, so a capture
    /// whose caller vanished (a dropped connection, a crash) is never unknown to the log.
    PaymentCaptureStarted {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what (the buyer is who pays).
        trade: Trade,
        /// The amount to charge.
        amount: Money,
        /// The key the gateway sees, the same for every attempt.
        idempotency_key: String,
        /// When.
        started_at: DateTime<Utc>,
    },
    /// The gateway refused the first call of a capture before charging (it answered that it
    /// processed nothing, or the circuit breaker did not let the call out): nothing moved.
    PaymentCaptureAborted {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount that was to be charged.
        amount: Money,
        /// What the gateway (or the breaker) said.
        reason: String,
        /// When.
        aborted_at: DateTime<Utc>,
    },
    /// Reconciliation found a capture at the gateway that the log had no payment for: it is
    /// recorded as held so that it can be refunded. No request exists for it (the trade's
    /// request, listing and seller are nil).
    PaymentCaptureDiscovered {
        /// The payment named by the capture's idempotency key.
        payment_id: PaymentId,
        /// The buyer who was charged; everything else is nil.
        trade: Trade,
        /// The amount charged.
        amount: Money,
        /// The gateway's reference.
        reference: String,
        /// When reconciliation found it.
        discovered_at: DateTime<Utc>,
    },
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
    /// The capture got no answer that proves what happened (no answer in time, a connection
    /// reset after the request left, a 5xx from something other than the gateway): the
    /// outcome is unknown until reconciled with the same key.
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
    /// The gateway declined a refund or payout: final for its key, so the money stays
    /// held until an operator retries it under a new attempt or settles it outside Carrot.
    PaymentTransferDeclined {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount held.
        amount: Money,
        /// Which way the money was to go.
        kind: MovementKind,
        /// Which attempt (1 for the first).
        attempt: u32,
        /// The key the gateway declined.
        idempotency_key: String,
        /// The gateway's reason.
        reason: String,
        /// When.
        declined_at: DateTime<Utc>,
    },
    /// An operator sends a declined refund or payout again, under a new attempt (and so a
    /// new idempotency key the gateway has not answered yet).
    PaymentTransferRetried {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount held.
        amount: Money,
        /// Which way the money is to go.
        kind: MovementKind,
        /// The new attempt.
        attempt: u32,
        /// Why, in the operator's words (what changed since the decline).
        reason: String,
        /// The operator.
        by: Actor,
        /// When.
        retried_at: DateTime<Utc>,
    },
    /// An operator records that a declined refund or payout was made outside Carrot (a bank
    /// transfer, say): final, as a refund or payout through the gateway is.
    PaymentSettledOutside {
        /// The payment.
        payment_id: PaymentId,
        /// Who trades what.
        trade: Trade,
        /// The amount settled.
        amount: Money,
        /// Which way the money went.
        kind: MovementKind,
        /// The outside reference (a bank transfer's id).
        reference: String,
        /// Why, in the operator's words.
        reason: String,
        /// The operator.
        by: Actor,
        /// When.
        settled_at: DateTime<Utc>,
    },
}

impl PaymentEvent {
    /// The payment it happened to.
    pub fn payment_id(&self) -> PaymentId {
        match self {
            PaymentEvent::PaymentCaptureStarted { payment_id, .. }
            | PaymentEvent::PaymentCaptureAborted { payment_id, .. }
            | PaymentEvent::PaymentCaptureDiscovered { payment_id, .. }
            | PaymentEvent::PaymentCaptured { payment_id, .. }
            | PaymentEvent::PaymentDeclined { payment_id, .. }
            | PaymentEvent::PaymentCaptureTimedOut { payment_id, .. }
            | PaymentEvent::PaymentRefunded { payment_id, .. }
            | PaymentEvent::PaymentPaidOut { payment_id, .. }
            | PaymentEvent::PaymentTransferDeclined { payment_id, .. }
            | PaymentEvent::PaymentTransferRetried { payment_id, .. }
            | PaymentEvent::PaymentSettledOutside { payment_id, .. } => *payment_id,
        }
    }

    /// The amount of the order (captured, asked, or moved: always the same).
    pub fn amount(&self) -> Money {
        match self {
            PaymentEvent::PaymentCaptureStarted { amount, .. }
            | PaymentEvent::PaymentCaptureAborted { amount, .. }
            | PaymentEvent::PaymentCaptureDiscovered { amount, .. }
            | PaymentEvent::PaymentCaptured { amount, .. }
            | PaymentEvent::PaymentDeclined { amount, .. }
            | PaymentEvent::PaymentCaptureTimedOut { amount, .. }
            | PaymentEvent::PaymentRefunded { amount, .. }
            | PaymentEvent::PaymentPaidOut { amount, .. }
            | PaymentEvent::PaymentTransferDeclined { amount, .. }
            | PaymentEvent::PaymentTransferRetried { amount, .. }
            | PaymentEvent::PaymentSettledOutside { amount, .. } => *amount,
        }
    }

    /// The trade the payment belongs to.
    pub fn trade(&self) -> &Trade {
        match self {
            PaymentEvent::PaymentCaptureStarted { trade, .. }
            | PaymentEvent::PaymentCaptureAborted { trade, .. }
            | PaymentEvent::PaymentCaptureDiscovered { trade, .. }
            | PaymentEvent::PaymentCaptured { trade, .. }
            | PaymentEvent::PaymentDeclined { trade, .. }
            | PaymentEvent::PaymentCaptureTimedOut { trade, .. }
            | PaymentEvent::PaymentRefunded { trade, .. }
            | PaymentEvent::PaymentPaidOut { trade, .. }
            | PaymentEvent::PaymentTransferDeclined { trade, .. }
            | PaymentEvent::PaymentTransferRetried { trade, .. }
            | PaymentEvent::PaymentSettledOutside { trade, .. } => trade,
        }
    }
}

/// The version each event type is written with. A change to an event's stored shape moves
/// its version and adds an upcaster (docs/DESIGN.md, "Changing an event").
pub const VERSIONS: &[(&str, &str)] = &[
    ("PaymentCaptureStarted", "1.0"),
    ("PaymentCaptureAborted", "1.0"),
    ("PaymentCaptureDiscovered", "1.0"),
    ("PaymentCaptured", "1.0"),
    ("PaymentDeclined", "1.0"),
    ("PaymentCaptureTimedOut", "1.0"),
    ("PaymentRefunded", "1.0"),
    ("PaymentPaidOut", "1.0"),
    ("PaymentTransferDeclined", "1.0"),
    ("PaymentTransferRetried", "1.0"),
    ("PaymentSettledOutside", "1.0"),
];

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentCaptureStarted { .. } => "PaymentCaptureStarted",
            PaymentEvent::PaymentCaptureAborted { .. } => "PaymentCaptureAborted",
            PaymentEvent::PaymentCaptureDiscovered { .. } => "PaymentCaptureDiscovered",
            PaymentEvent::PaymentCaptured { .. } => "PaymentCaptured",
            PaymentEvent::PaymentDeclined { .. } => "PaymentDeclined",
            PaymentEvent::PaymentCaptureTimedOut { .. } => "PaymentCaptureTimedOut",
            PaymentEvent::PaymentRefunded { .. } => "PaymentRefunded",
            PaymentEvent::PaymentPaidOut { .. } => "PaymentPaidOut",
            PaymentEvent::PaymentTransferDeclined { .. } => "PaymentTransferDeclined",
            PaymentEvent::PaymentTransferRetried { .. } => "PaymentTransferRetried",
            PaymentEvent::PaymentSettledOutside { .. } => "PaymentSettledOutside",
        }
        .into()
    }

    fn event_version(&self) -> String {
        crate::schema::version_in(VERSIONS, &self.event_type())
    }
}
