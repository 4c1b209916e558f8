//! Money into and out of escrow at the gateway: sending the recorded capture, reconciling a
//! capture of unknown outcome, and refunding or paying out the held money.

use super::{
    gateway, CaptureOrder, CaptureStatus, GatewayError, MovementKind, Payment, PaymentError,
    PaymentEvent, PaymentServices, PaymentStatus, TransferOrder,
};
use crate::PaymentId;

/// Which way held money leaves escrow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// Back to the buyer.
    Refund,
    /// On to the seller.
    Payout,
}

impl Payment {
    /// Sends the recorded capture, always the recorded trade and amount under the recorded
    /// key, and records what the answer proves.
    pub(super) async fn capture(
        &self,
        payment_id: PaymentId,
        first_attempt: bool,
        services: &PaymentServices,
    ) -> Result<Option<PaymentEvent>, PaymentError> {
        match self.status {
            PaymentStatus::None => return Err(PaymentError::NotStarted),
            _ if self.id != payment_id => return Err(PaymentError::AlreadyExists),
            PaymentStatus::Started | PaymentStatus::Unknown => {}
            // Settled, or aborted and not started again: nothing to send.
            _ => return Ok(None),
        }
        let order = CaptureOrder {
            idempotency_key: gateway::capture_key(payment_id),
            buyer_id: self.trade.buyer_id,
            amount: self.amount,
        };
        let outcome = services.gateway.capture(order).await;
        let (trade, amount, at) = (self.trade, self.amount, services.clock.now());
        let proves_nothing_moved = first_attempt && self.status == PaymentStatus::Started;
        Ok(Some(match outcome {
            Ok(receipt) => PaymentEvent::PaymentCaptured {
                payment_id,
                trade,
                amount,
                reference: receipt.reference,
                captured_at: at,
            },
            Err(GatewayError::Declined(reason)) => PaymentEvent::PaymentDeclined {
                payment_id,
                trade,
                amount,
                reason,
                declined_at: at,
            },
            // Still no proof either way: it stays unknown, recorded once.
            Err(GatewayError::Timeout) if self.status == PaymentStatus::Unknown => return Ok(None),
            Err(GatewayError::Timeout) => PaymentEvent::PaymentCaptureTimedOut {
                payment_id,
                trade,
                amount,
                timed_out_at: at,
            },
            // Refused before charging, on the only call ever made with this key.
            Err(e @ (GatewayError::Unavailable(_) | GatewayError::CircuitOpen { .. }))
                if proves_nothing_moved =>
            {
                PaymentEvent::PaymentCaptureAborted {
                    payment_id,
                    trade,
                    amount,
                    reason: e.to_string(),
                    aborted_at: at,
                }
            }
            // A refusal now says nothing of an earlier call with the key (a crash may have
            // cut it off after it charged): record nothing, the reconciler will ask.
            Err(e) => return Err(PaymentError::from_transfer(e)),
        }))
    }

    /// Settles a started or unknown capture from what the gateway says of its key (an
    /// unseen key is voided at the gateway, so a late capture with it can no longer charge).
    pub(super) async fn reconcile(
        &self,
        services: &PaymentServices,
    ) -> Result<Option<PaymentEvent>, PaymentError> {
        match self.status {
            PaymentStatus::Started | PaymentStatus::Unknown => {}
            PaymentStatus::None => return Err(PaymentError::NotFound),
            // Settled already (a retry of the same payment asked first): nothing to do.
            _ => return Ok(None),
        }
        let status = services
            .gateway
            .resolve_capture(&gateway::capture_key(self.id))
            .await
            .map_err(PaymentError::from_transfer)?;
        let (payment_id, trade, amount, at) =
            (self.id, self.trade, self.amount, services.clock.now());
        Ok(Some(match status {
            CaptureStatus::Captured(receipt) => PaymentEvent::PaymentCaptured {
                payment_id,
                trade,
                amount,
                reference: receipt.reference,
                captured_at: at,
            },
            CaptureStatus::Declined(reason) => PaymentEvent::PaymentDeclined {
                payment_id,
                trade,
                amount,
                reason,
                declined_at: at,
            },
            CaptureStatus::Voided => PaymentEvent::PaymentDeclined {
                payment_id,
                trade,
                amount,
                reason: "the capture never reached the gateway; it was voided".into(),
                declined_at: at,
            },
        }))
    }

    /// Moves the held money one way, once: again the same way is already done, the other
    /// way is refused, and the gateway sees the key of this payment and direction.
    pub(super) async fn transfer(
        &self,
        direction: Transfer,
        services: &PaymentServices,
    ) -> Result<Option<PaymentEvent>, PaymentError> {
        let (done, kind, recipient) = match direction {
            Transfer::Refund => (
                PaymentStatus::Refunded,
                MovementKind::Refund,
                self.trade.buyer_id,
            ),
            Transfer::Payout => (
                PaymentStatus::PaidOut,
                MovementKind::Payout,
                self.trade.seller_id,
            ),
        };
        if self.status == done {
            return Ok(None);
        }
        self.require_captured()?;
        // Declined for this attempt: the gateway would only say so again.
        if self
            .declined_transfer
            .as_ref()
            .is_some_and(|d| d.kind == kind)
        {
            return Ok(None);
        }
        let attempt = self.transfer_attempt();
        let key = gateway::transfer_key(kind, self.id, attempt);
        let order = TransferOrder {
            idempotency_key: key.clone(),
            recipient,
            amount: self.amount,
        };
        let answer = match direction {
            Transfer::Refund => services.gateway.refund(order).await,
            Transfer::Payout => services.gateway.payout(order).await,
        };
        let (payment_id, trade, amount, at) =
            (self.id, self.trade, self.amount, services.clock.now());
        let receipt = match answer {
            Ok(receipt) => receipt,
            Err(GatewayError::Declined(reason)) => {
                return Ok(Some(PaymentEvent::PaymentTransferDeclined {
                    payment_id,
                    trade,
                    amount,
                    kind,
                    attempt,
                    idempotency_key: key,
                    reason,
                    declined_at: at,
                }))
            }
            Err(e) => return Err(PaymentError::from_transfer(e)),
        };
        Ok(Some(match direction {
            Transfer::Refund => PaymentEvent::PaymentRefunded {
                payment_id,
                trade,
                amount,
                reference: receipt.reference,
                refunded_at: at,
            },
            Transfer::Payout => PaymentEvent::PaymentPaidOut {
                payment_id,
                trade,
                amount,
                reference: receipt.reference,
                paid_out_at: at,
            },
        }))
    }
}
