//! The `Payment` aggregate: one purchase request's money in escrow.
//!
//! Started (the write-ahead intent, in the log before the gateway is called) → captured
//! (held), declined, `unknown` (no answer that proves anything; reconciled later with the
//! same idempotency key), or aborted (the gateway refused the first call before charging).
//! Held → refunded to the buyer, or paid out to the seller; the two are exclusive and
//! final, and the amount never changes after the start. The aggregate calls the gateway
//! port itself, always with the key derived from its own id and the recorded amount.
//!
//! A refund or payout the gateway declines stays held, the decline recorded: the gateway
//! answers a key with its first outcome, so sending it again would be declined forever. An
//! operator either retries it under a new attempt (a new key, `refund:<id>:2`), or records
//! that it was settled outside Carrot; both are events, with who and why.

mod commands;
mod error;
mod escrow;
mod events;
pub mod gateway;

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::PaymentCommand;
pub use error::PaymentError;
pub use events::{PaymentEvent, VERSIONS};
pub use gateway::{
    CaptureOrder, CaptureStatus, GatewayError, Movement, MovementKind, PaymentGateway, Receipt,
    TransferOrder,
};

use crate::{Clock, Money, PaymentId, Trade};
use escrow::Transfer;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Not attempted yet (the aggregate's empty state).
    #[default]
    None,
    /// The capture is recorded as started and may be at the gateway now.
    Started,
    /// The gateway refused the capture before charging: nothing moved.
    Aborted,
    /// Charged and held in escrow.
    Captured,
    /// Given back to the buyer (final).
    Refunded,
    /// Paid out to the seller (final).
    PaidOut,
    /// Declined: no money moved.
    Failed,
    /// The capture timed out: the gateway may or may not have charged.
    Unknown,
}

impl PaymentStatus {
    /// The statuses a payment shows clients once its request exists (a capture recorded as
    /// started, aborted or unanswered has no request yet).
    pub const SHOWN: [PaymentStatus; 4] = [
        PaymentStatus::Captured,
        PaymentStatus::Refunded,
        PaymentStatus::PaidOut,
        PaymentStatus::Failed,
    ];

    /// The status as clients see it.
    pub fn name(&self) -> &'static str {
        match self {
            PaymentStatus::None => "none",
            PaymentStatus::Started => "started",
            PaymentStatus::Aborted => "aborted",
            PaymentStatus::Captured => "captured",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::PaidOut => "paid_out",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Unknown => "unknown",
        }
    }
}

/// A payment's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    id: PaymentId,
    trade: Trade,
    amount: Money,
    status: PaymentStatus,
    decline_reason: Option<String>,
    /// The current attempt at a refund or payout (0 and 1 both mean the first).
    #[serde(default)]
    transfer_attempt: u32,
    /// The current attempt's decline, if the gateway declined it.
    #[serde(default)]
    declined_transfer: Option<DeclinedTransfer>,
    /// The outside reference, when an operator recorded it settled outside Carrot.
    #[serde(default)]
    settled_outside: Option<String>,
}

/// A refund or payout the gateway declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclinedTransfer {
    /// Which way the money was to go.
    pub kind: MovementKind,
    /// The gateway's reason.
    pub reason: String,
}

/// What the payment aggregate needs from the outside world.
#[derive(Clone)]
pub struct PaymentServices {
    /// The gateway (already wrapped in its timeout and circuit breaker).
    pub gateway: Arc<dyn PaymentGateway>,
    /// The time source for event timestamps.
    pub clock: Arc<dyn Clock>,
}

impl Payment {
    /// The payment's id (the default id before anything was recorded).
    pub fn id(&self) -> PaymentId {
        self.id
    }

    /// Where the payment stands.
    pub fn status(&self) -> PaymentStatus {
        self.status
    }

    /// The amount (fixed at capture).
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// Who trades what.
    pub fn trade(&self) -> Trade {
        self.trade
    }

    /// Why the gateway declined, when it did.
    pub fn decline_reason(&self) -> Option<&str> {
        self.decline_reason.as_deref()
    }

    /// The refund or payout the gateway declined, while nobody has acted on it.
    pub fn declined_transfer(&self) -> Option<&DeclinedTransfer> {
        self.declined_transfer.as_ref()
    }

    /// The outside reference, if an operator recorded the money settled outside Carrot.
    pub fn settled_outside(&self) -> Option<&str> {
        self.settled_outside.as_deref()
    }

    /// The attempt a refund or payout is at (1 for the first).
    pub fn transfer_attempt(&self) -> u32 {
        self.transfer_attempt.max(1)
    }

    /// The declined transfer an operator acts on, while the money is still held.
    fn declined_for_operator(&self) -> Result<&DeclinedTransfer, PaymentError> {
        self.require_captured()?;
        self.declined_transfer
            .as_ref()
            .ok_or(PaymentError::NoDeclinedTransfer)
    }

    fn require_captured(&self) -> Result<(), PaymentError> {
        match self.status {
            PaymentStatus::Captured => Ok(()),
            PaymentStatus::None => Err(PaymentError::NotFound),
            PaymentStatus::Refunded => Err(PaymentError::AlreadyRefunded),
            PaymentStatus::PaidOut => Err(PaymentError::AlreadyPaidOut),
            other => Err(PaymentError::NotCaptured(other.name())),
        }
    }

    async fn decide(
        &self,
        command: PaymentCommand,
        services: &PaymentServices,
    ) -> Result<Option<PaymentEvent>, PaymentError> {
        let event = match command {
            PaymentCommand::StartCapture {
                payment_id,
                trade,
                amount,
            } => {
                let (trade, amount) = match self.status {
                    PaymentStatus::None => (trade, amount),
                    _ if self.id != payment_id => return Err(PaymentError::AlreadyExists),
                    // A retry after an abort starts again (the gateway never charged the
                    // key), with the order the key was first sent with.
                    PaymentStatus::Aborted => (self.trade, self.amount),
                    // Started or settled already: the retry goes on from there.
                    _ => return Ok(None),
                };
                PaymentEvent::PaymentCaptureStarted {
                    payment_id,
                    trade,
                    amount,
                    idempotency_key: gateway::capture_key(payment_id),
                    started_at: services.clock.now(),
                }
            }
            PaymentCommand::CapturePayment {
                payment_id,
                first_attempt,
            } => return self.capture(payment_id, first_attempt, services).await,
            PaymentCommand::RecordDiscoveredCapture {
                payment_id,
                buyer_id,
                amount,
                reference,
            } => {
                if self.status != PaymentStatus::None {
                    return Ok(None);
                }
                PaymentEvent::PaymentCaptureDiscovered {
                    payment_id,
                    trade: Trade {
                        buyer_id,
                        ..Trade::default()
                    },
                    amount,
                    reference,
                    discovered_at: services.clock.now(),
                }
            }
            PaymentCommand::ReconcileCapture => return self.reconcile(services).await,
            PaymentCommand::RefundPayment => {
                return self.transfer(Transfer::Refund, services).await
            }
            PaymentCommand::PayOutPayment => {
                return self.transfer(Transfer::Payout, services).await
            }
            PaymentCommand::RetryTransfer { reason, by } => {
                let declined = self.declined_for_operator()?;
                PaymentEvent::PaymentTransferRetried {
                    payment_id: self.id,
                    trade: self.trade,
                    amount: self.amount,
                    kind: declined.kind,
                    attempt: self.transfer_attempt() + 1,
                    reason,
                    by,
                    retried_at: services.clock.now(),
                }
            }
            PaymentCommand::SettleOutside {
                reference,
                reason,
                by,
            } => {
                if self.settled_outside.as_deref() == Some(reference.as_str()) {
                    return Ok(None);
                }
                let declined = self.declined_for_operator()?;
                PaymentEvent::PaymentSettledOutside {
                    payment_id: self.id,
                    trade: self.trade,
                    amount: self.amount,
                    kind: declined.kind,
                    reference,
                    reason,
                    by,
                    settled_at: services.clock.now(),
                }
            }
        };
        Ok(Some(event))
    }
}

impl Aggregate for Payment {
    const TYPE: &'static str = "payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = PaymentServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command, services).await? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use PaymentEvent as E;
        let status = match &event {
            E::PaymentCaptureStarted { .. } => PaymentStatus::Started,
            E::PaymentCaptureAborted { .. } => PaymentStatus::Aborted,
            E::PaymentCaptureDiscovered { .. } | E::PaymentCaptured { .. } => {
                PaymentStatus::Captured
            }
            E::PaymentDeclined { reason, .. } => {
                self.decline_reason = Some(reason.clone());
                PaymentStatus::Failed
            }
            E::PaymentCaptureTimedOut { .. } => PaymentStatus::Unknown,
            E::PaymentRefunded { .. } => PaymentStatus::Refunded,
            E::PaymentPaidOut { .. } => PaymentStatus::PaidOut,
            E::PaymentTransferDeclined { kind, reason, .. } => {
                self.declined_transfer = Some(DeclinedTransfer {
                    kind: *kind,
                    reason: reason.clone(),
                });
                return;
            }
            E::PaymentTransferRetried { attempt, .. } => {
                self.declined_transfer = None;
                self.transfer_attempt = *attempt;
                return;
            }
            E::PaymentSettledOutside {
                kind, reference, ..
            } => {
                self.declined_transfer = None;
                self.settled_outside = Some(reference.clone());
                self.status = match kind {
                    MovementKind::Payout => PaymentStatus::PaidOut,
                    _ => PaymentStatus::Refunded,
                };
                return;
            }
        };
        // Every step of a capture restates the order it is for (a payment first seen at
        // its outcome, in a log older than write-ahead capture, included); a transfer
        // never changes it.
        if !matches!(status, PaymentStatus::Refunded | PaymentStatus::PaidOut) {
            self.id = event.payment_id();
            self.trade = *event.trade();
            self.amount = event.amount();
        }
        self.status = status;
    }
}

#[cfg(test)]
mod tests;
