//! The saga's reactions to the payment's own events: a capture started (the reconciler's
//! deadline), aborted, discovered by reconciliation (refunded), captured or declined (the
//! request must follow), unknown, refunded or paid out.

use carrot_domain::payment::{MovementKind, PaymentEvent};
use carrot_domain::{PaymentId, Trade};
use chrono::{DateTime, Utc};

use super::state::PaymentRow;
use super::{Batch, SagaCommand};

impl Batch<'_> {
    pub(super) fn on_payment(&mut self, event: PaymentEvent) {
        let payment_id = event.payment_id();
        let trade = *event.trade();
        match event {
            // The write-ahead intent: whatever becomes of the call, the reconciler asks the
            // gateway once the call should long have ended.
            PaymentEvent::PaymentCaptureStarted {
                amount, started_at, ..
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "started", None);
                self.state.set_deadline(
                    trade.request_id.as_uuid(),
                    "reconcile",
                    started_at + self.config.reconcile_after,
                );
            }
            PaymentEvent::PaymentCaptureAborted { amount, reason, .. } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "aborted", Some(reason));
                self.state
                    .clear_deadline(trade.request_id.as_uuid(), "reconcile");
            }
            // Money the log never knew of: there is no request to hold it for.
            PaymentEvent::PaymentCaptureDiscovered { amount, .. } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "captured", None);
                self.state.decide(SagaCommand::RefundPayment {
                    request_id: trade.request_id,
                    payment_id,
                });
            }
            PaymentEvent::PaymentCaptured {
                amount,
                captured_at: at,
                ..
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "captured", None);
                self.state
                    .clear_deadline(trade.request_id.as_uuid(), "reconcile");
                self.await_placement(&trade, at);
            }
            PaymentEvent::PaymentDeclined {
                amount,
                reason,
                declined_at: at,
                ..
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "failed", Some(reason));
                self.state
                    .clear_deadline(trade.request_id.as_uuid(), "reconcile");
                self.await_placement(&trade, at);
            }
            PaymentEvent::PaymentCaptureTimedOut {
                amount,
                timed_out_at,
                ..
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "unknown", None);
                self.state.set_deadline(
                    trade.request_id.as_uuid(),
                    "reconcile",
                    timed_out_at + self.config.reconcile_after,
                );
            }
            PaymentEvent::PaymentRefunded { .. } | PaymentEvent::PaymentPaidOut { .. } => {
                let status = match event {
                    PaymentEvent::PaymentRefunded { .. } => "refunded",
                    _ => "paid_out",
                };
                if let Some(row) = self.state.payments.change(payment_id.as_uuid()) {
                    row.status = status.into();
                }
            }
            // The dispatcher dead-letters the declined command itself; the operator's
            // answer comes as one of the two events below.
            PaymentEvent::PaymentTransferDeclined { .. } => {}
            // Retried under a new key: run the dead command again.
            PaymentEvent::PaymentTransferRetried { kind, .. } => {
                self.state.revive(transfer_command_id(kind, payment_id));
            }
            // Settled outside: the command is done, with the reference to show for it.
            PaymentEvent::PaymentSettledOutside {
                kind, reference, ..
            } => {
                let status = match kind {
                    MovementKind::Payout => "paid_out",
                    _ => "refunded",
                };
                if let Some(row) = self.state.payments.change(payment_id.as_uuid()) {
                    row.status = status.into();
                }
                self.state.close(
                    transfer_command_id(kind, payment_id),
                    format!("settled outside Carrot: {reference}"),
                );
            }
        }
    }

    fn set_payment(
        &mut self,
        payment_id: PaymentId,
        trade: &Trade,
        amount: i64,
        status: &str,
        reason: Option<String>,
    ) {
        match self.state.payments.change(payment_id.as_uuid()) {
            Some(row) => {
                row.status = status.into();
                row.reason = reason;
            }
            None => self.state.payments.put(PaymentRow {
                payment_id: payment_id.as_uuid(),
                request_id: trade.request_id.as_uuid(),
                listing_id: trade.listing_id.as_uuid(),
                buyer_id: trade.buyer_id.as_uuid(),
                seller_id: trade.seller_id.as_uuid(),
                amount,
                status: status.into(),
                reason,
            }),
        }
    }

    /// A payment has an outcome: unless its request is recorded by `orphan_after`, the
    /// timer abandons or fails it.
    fn await_placement(&mut self, trade: &Trade, at: DateTime<Utc>) {
        if self.state.trades.get(trade.request_id.as_uuid()).is_some() {
            return;
        }
        self.state.set_deadline(
            trade.request_id.as_uuid(),
            "check_placement",
            at + self.config.orphan_after,
        );
    }
}

/// The id of the saga's command moving a payment's money `kind`'s way.
fn transfer_command_id(kind: MovementKind, payment_id: PaymentId) -> String {
    let request_id = carrot_domain::RequestId::default();
    match kind {
        MovementKind::Payout => SagaCommand::PayOutPayment {
            request_id,
            payment_id,
        },
        _ => SagaCommand::RefundPayment {
            request_id,
            payment_id,
        },
    }
    .id()
}
