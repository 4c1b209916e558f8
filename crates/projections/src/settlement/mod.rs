//! The settlement saga: the process manager, keyed by request id, that makes the money
//! follow the trade.
//!
//! It is a subscriber of the ordered log like the projections: in the runner's batch
//! transaction it updates its own state (`settlement.*`) and writes the commands it decides
//! on into its outbox, so state, decisions and checkpoint move together, exactly once. The
//! [`Dispatcher`] executes the outbox; the [`Timer`] turns due deadlines into commands.
//!
//! Reactions:
//! - rejected, cancelled, expired (or abandoned) → refund the payment;
//! - completed (by the buyer or automatically) → pay the seller out;
//! - accepted → reject every other pending request on the listing (`listing_reserved`);
//! - listing withdrawn → reject its pending requests (`listing_withdrawn`);
//! - a request placed on a listing no longer available → reject it (`listing_<status>`);
//! - requested → expire after `request_ttl`; accepted → complete after `completion_ttl`;
//! - crash repairs, after `repair_after`: a listing held for a request that is still pending
//!   is accepted for it, held for one that closed is released, held for one that completed
//!   is marked sold; a payment whose request never got recorded is abandoned (then refunded)
//!   or recorded as failed, after `orphan_after`; a capture that timed out is reconciled
//!   with the gateway after `reconcile_after`.

pub mod commands;
pub mod dispatcher;
pub mod outbox;
pub mod timer;

use async_trait::async_trait;
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent};
use carrot_domain::{ListingId, PaymentId, RequestId, Trade};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use sqlx::PgConnection;
use uuid::Uuid;

pub use commands::SagaCommand;
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use timer::Timer;

/// The name of the saga's dispatcher wake-up channel (`NOTIFY` on outbox inserts).
pub const OUTBOX_CHANNEL: &str = "carrot_outbox";

use crate::log::StoredEvent;
use crate::runner::{ApplyError, Subscriber};

/// The subscriber's name, its checkpoint row and its schema.
pub const SETTLEMENT: &str = "settlement";

/// The saga's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaConfig {
    /// A request nobody answers expires after this (default 48 h).
    pub request_ttl: Duration,
    /// An accepted request nobody completes is completed after this (default 7 days).
    pub completion_ttl: Duration,
    /// How long a listing may be held in a state that needs repair (a crash between two
    /// commands of one flow) before the saga repairs it.
    pub repair_after: Duration,
    /// How long a payment's outcome may wait for its request to be recorded.
    pub orphan_after: Duration,
    /// How long after a capture timed out the gateway is asked what became of it.
    pub reconcile_after: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        SagaConfig {
            request_ttl: Duration::hours(48),
            completion_ttl: Duration::days(7),
            repair_after: Duration::seconds(10),
            orphan_after: Duration::seconds(60),
            reconcile_after: Duration::seconds(10),
        }
    }
}

/// The saga as a subscriber.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettlementSaga {
    config: SagaConfig,
}

impl SettlementSaga {
    /// The saga with these deadlines.
    pub fn new(config: SagaConfig) -> Self {
        SettlementSaga { config }
    }
}

#[async_trait]
impl Subscriber for SettlementSaga {
    fn name(&self) -> &'static str {
        SETTLEMENT
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let events = decode(events)?;
        // Listings registered in this batch, in one statement first: a registration comes
        // before everything else of its listing, and leads to no decision.
        let registered: Vec<Uuid> = events
            .iter()
            .filter_map(|e| match e {
                Event::Listing(ListingEvent::ListingRegistered { listing_id, .. }) => {
                    Some(listing_id.as_uuid())
                }
                _ => None,
            })
            .collect();
        if !registered.is_empty() {
            sqlx::query(
                "INSERT INTO settlement.listings (listing_id, status)
                 SELECT unnest($1::uuid[]), 'available' ON CONFLICT DO NOTHING",
            )
            .bind(&registered)
            .execute(&mut *tx)
            .await?;
        }
        // Requests this batch records: their payments need no check that they were.
        let recorded = events
            .iter()
            .filter_map(|e| match e {
                Event::Request(
                    event @ (PurchaseRequestEvent::PurchaseRequested { .. }
                    | PurchaseRequestEvent::PurchaseRequestPaymentFailed { .. }
                    | PurchaseRequestEvent::PurchaseRequestAbandoned { .. }),
                ) => Some(event.trade().request_id),
                _ => None,
            })
            .collect();
        let mut saga = Batch {
            tx,
            config: &self.config,
            recorded,
        };
        // Then one event at a time: each decision reads the state the previous one left.
        for event in events {
            match event {
                Event::Listing(ListingEvent::ListingRegistered { .. }) => {}
                Event::Listing(event) => saga.on_listing(event).await?,
                Event::Request(event) => saga.on_request(event).await?,
                Event::Payment(event) => saga.on_payment(event).await?,
            }
        }
        Ok(())
    }
}

/// An event the saga reads.
enum Event {
    Listing(ListingEvent),
    Request(PurchaseRequestEvent),
    Payment(PaymentEvent),
}

fn decode(events: &[StoredEvent]) -> Result<Vec<Event>, ApplyError> {
    let mut decoded = Vec::with_capacity(events.len());
    for event in events {
        let payload = |e| ApplyError::payload(event, e);
        decoded.push(match event.aggregate_type.as_str() {
            Listing::TYPE => Event::Listing(event.decode().map_err(payload)?),
            PurchaseRequest::TYPE => Event::Request(event.decode().map_err(payload)?),
            Payment::TYPE => Event::Payment(event.decode().map_err(payload)?),
            _ => continue,
        });
    }
    Ok(decoded)
}

/// The saga inside one batch transaction.
struct Batch<'a> {
    tx: &'a mut PgConnection,
    config: &'a SagaConfig,
    /// Requests recorded in this batch.
    recorded: std::collections::HashSet<RequestId>,
}

type Sql = Result<(), sqlx::Error>;

impl Batch<'_> {
    async fn on_listing(&mut self, event: ListingEvent) -> Sql {
        match event {
            // Inserted for the whole batch before its events are read one by one.
            ListingEvent::ListingRegistered { .. } => {}
            ListingEvent::ListingReserved {
                listing_id,
                request_id,
                reserved_at,
            } => {
                self.set_listing(listing_id, "reserved", Some(request_id))
                    .await?;
                // The accept flow accepts the request right after: if it died in between,
                // the repair finishes (or undoes) it.
                self.deadline(
                    request_id,
                    "check_listing",
                    reserved_at + self.config.repair_after,
                )
                .await?;
            }
            ListingEvent::ListingReleased { listing_id, .. } => {
                self.set_listing(listing_id, "available", None).await?;
            }
            ListingEvent::ListingSold {
                listing_id,
                request_id,
                ..
            } => {
                self.set_listing(listing_id, "sold", Some(request_id))
                    .await?
            }
            ListingEvent::ListingWithdrawn { listing_id, .. } => {
                self.set_listing(listing_id, "withdrawn", None).await?;
                self.reject_pending(listing_id, None, "listing_withdrawn")
                    .await?;
            }
            ListingEvent::ListingEdited { .. } => {}
        }
        Ok(())
    }

    async fn on_request(&mut self, event: PurchaseRequestEvent) -> Sql {
        use PurchaseRequestEvent as E;
        let trade = *event.trade();
        let request_id = trade.request_id;
        match event {
            E::PurchaseRequested {
                price,
                payment_id,
                requested_at,
                ..
            } => {
                self.record(&trade, payment_id, price.as_krw(), "requested")
                    .await?;
                self.deadline(request_id, "expire", requested_at + self.config.request_ttl)
                    .await?;
                // Placed after its listing stopped being available (a race with an
                // accept, a sale or a withdrawal): it cannot be accepted any more.
                if let Some(status) = self.listing_unavailable(&trade).await? {
                    let reason = format!("listing_{status}");
                    self.decide(SagaCommand::RejectRequest { request_id, reason })
                        .await?;
                }
            }
            E::PurchaseRequestPaymentFailed {
                price, payment_id, ..
            } => {
                self.record(&trade, payment_id, price.as_krw(), "payment_failed")
                    .await?;
            }
            E::PurchaseRequestAbandoned {
                price, payment_id, ..
            } => {
                self.record(&trade, payment_id, price.as_krw(), "expired")
                    .await?;
                self.refund(request_id).await?;
            }
            E::PurchaseRequestAccepted { accepted_at, .. } => {
                self.set_status(request_id, "accepted").await?;
                self.clear_deadline(request_id, "expire").await?;
                self.deadline(
                    request_id,
                    "complete",
                    accepted_at + self.config.completion_ttl,
                )
                .await?;
                self.reject_pending(trade.listing_id, Some(request_id), "listing_reserved")
                    .await?;
            }
            E::PurchaseRequestRejected {
                rejected_at: at, ..
            }
            | E::PurchaseRequestCancelled {
                cancelled_at: at, ..
            }
            | E::PurchaseRequestExpired { expired_at: at, .. } => {
                let status = match event {
                    E::PurchaseRequestRejected { .. } => "rejected",
                    E::PurchaseRequestCancelled { .. } => "cancelled",
                    _ => "expired",
                };
                self.close(&trade, status, at).await?;
                self.refund(request_id).await?;
            }
            E::PurchaseRequestCompleted {
                completed_at,
                automatic,
                ..
            } => {
                self.close(&trade, "completed", completed_at).await?;
                // The buyer's complete call marks the listing sold itself (a crash in
                // between is repaired after the grace period); an automatic completion
                // has no call behind it.
                if automatic {
                    self.decide(SagaCommand::MarkListingSold {
                        listing_id: trade.listing_id,
                        request_id,
                    })
                    .await?;
                }
                if let Some(payment_id) = self.payment_of(request_id).await? {
                    self.decide(SagaCommand::PayOutPayment {
                        request_id,
                        payment_id,
                    })
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn on_payment(&mut self, event: PaymentEvent) -> Sql {
        match event {
            PaymentEvent::PaymentCaptured {
                payment_id,
                trade,
                amount,
                captured_at: at,
                ..
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "captured", None)
                    .await?;
                self.await_placement(&trade, at).await?;
            }
            PaymentEvent::PaymentDeclined {
                payment_id,
                trade,
                amount,
                reason,
                declined_at: at,
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "failed", Some(&reason))
                    .await?;
                self.await_placement(&trade, at).await?;
            }
            PaymentEvent::PaymentCaptureTimedOut {
                payment_id,
                trade,
                amount,
                timed_out_at,
            } => {
                self.set_payment(payment_id, &trade, amount.as_krw(), "unknown", None)
                    .await?;
                self.deadline(
                    trade.request_id,
                    "reconcile",
                    timed_out_at + self.config.reconcile_after,
                )
                .await?;
            }
            PaymentEvent::PaymentRefunded { payment_id, .. }
            | PaymentEvent::PaymentPaidOut { payment_id, .. } => {
                let status = match event {
                    PaymentEvent::PaymentRefunded { .. } => "refunded",
                    _ => "paid_out",
                };
                sqlx::query("UPDATE settlement.payments SET status = $2 WHERE payment_id = $1")
                    .bind(payment_id.as_uuid())
                    .bind(status)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        Ok(())
    }

    async fn decide(&mut self, command: SagaCommand) -> Sql {
        outbox::enqueue(self.tx, &command).await
    }

    async fn record(
        &mut self,
        trade: &Trade,
        payment_id: PaymentId,
        amount: i64,
        status: &str,
    ) -> Sql {
        sqlx::query(
            "INSERT INTO settlement.trades
                    (request_id, listing_id, buyer_id, seller_id, payment_id, amount, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (request_id) DO NOTHING",
        )
        .bind(trade.request_id.as_uuid())
        .bind(trade.listing_id.as_uuid())
        .bind(trade.buyer_id.as_uuid())
        .bind(trade.seller_id.as_uuid())
        .bind(payment_id.as_uuid())
        .bind(amount)
        .bind(status)
        .execute(&mut *self.tx)
        .await?;
        self.clear_deadline(trade.request_id, "check_placement")
            .await
    }

    async fn set_status(&mut self, request_id: RequestId, status: &str) -> Sql {
        sqlx::query(
            "UPDATE settlement.trades SET status = $2, updated_at = now() WHERE request_id = $1",
        )
        .bind(request_id.as_uuid())
        .bind(status)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A request reached an end: its timers stop, and a listing it still holds is checked
    /// after the grace period (the flow releases or sells it itself unless it died).
    async fn close(&mut self, trade: &Trade, status: &str, at: DateTime<Utc>) -> Sql {
        self.set_status(trade.request_id, status).await?;
        sqlx::query("DELETE FROM settlement.deadlines WHERE request_id = $1 AND kind IN ('expire', 'complete')")
            .bind(trade.request_id.as_uuid())
            .execute(&mut *self.tx)
            .await?;
        let held: Option<bool> = sqlx::query_scalar(
            "SELECT coalesce(holder = $2, false) FROM settlement.listings WHERE listing_id = $1",
        )
        .bind(trade.listing_id.as_uuid())
        .bind(trade.request_id.as_uuid())
        .fetch_optional(&mut *self.tx)
        .await?;
        if held == Some(true) {
            self.deadline(
                trade.request_id,
                "check_listing",
                at + self.config.repair_after,
            )
            .await?;
        }
        Ok(())
    }

    async fn refund(&mut self, request_id: RequestId) -> Sql {
        match self.payment_of(request_id).await? {
            Some(payment_id) => {
                self.decide(SagaCommand::RefundPayment {
                    request_id,
                    payment_id,
                })
                .await
            }
            None => Ok(()),
        }
    }

    async fn payment_of(
        &mut self,
        request_id: RequestId,
    ) -> Result<Option<PaymentId>, sqlx::Error> {
        let payment: Option<Uuid> =
            sqlx::query_scalar("SELECT payment_id FROM settlement.trades WHERE request_id = $1")
                .bind(request_id.as_uuid())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(payment.map(PaymentId::from_uuid))
    }

    /// Rejects every pending request on `listing_id` but `keep`.
    async fn reject_pending(
        &mut self,
        listing_id: ListingId,
        keep: Option<RequestId>,
        reason: &str,
    ) -> Sql {
        let pending: Vec<Uuid> = sqlx::query_scalar(
            "SELECT request_id FROM settlement.trades
              WHERE listing_id = $1 AND status = 'requested' AND request_id IS DISTINCT FROM $2
              ORDER BY request_id",
        )
        .bind(listing_id.as_uuid())
        .bind(keep.map(|k| k.as_uuid()))
        .fetch_all(&mut *self.tx)
        .await?;
        for request in pending {
            self.decide(SagaCommand::RejectRequest {
                request_id: RequestId::from_uuid(request),
                reason: reason.to_owned(),
            })
            .await?;
        }
        Ok(())
    }

    /// The listing's status when it is no longer open to this request.
    async fn listing_unavailable(&mut self, trade: &Trade) -> Result<Option<String>, sqlx::Error> {
        let row: Option<(String, Option<Uuid>)> =
            sqlx::query_as("SELECT status, holder FROM settlement.listings WHERE listing_id = $1")
                .bind(trade.listing_id.as_uuid())
                .fetch_optional(&mut *self.tx)
                .await?;
        Ok(match row {
            Some((status, _)) if status == "available" => None,
            Some((_, holder)) if holder == Some(trade.request_id.as_uuid()) => None,
            Some((status, _)) => Some(status),
            None => None,
        })
    }

    async fn set_listing(
        &mut self,
        listing_id: ListingId,
        status: &str,
        holder: Option<RequestId>,
    ) -> Sql {
        sqlx::query(
            "INSERT INTO settlement.listings (listing_id, status, holder) VALUES ($1, $2, $3)
             ON CONFLICT (listing_id) DO UPDATE SET status = $2, holder = $3",
        )
        .bind(listing_id.as_uuid())
        .bind(status)
        .bind(holder.map(|h| h.as_uuid()))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn set_payment(
        &mut self,
        payment_id: PaymentId,
        trade: &Trade,
        amount: i64,
        status: &str,
        reason: Option<&str>,
    ) -> Sql {
        sqlx::query(
            "INSERT INTO settlement.payments
                    (payment_id, request_id, listing_id, buyer_id, seller_id, amount, status, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (payment_id) DO UPDATE SET status = $7, reason = $8",
        )
        .bind(payment_id.as_uuid())
        .bind(trade.request_id.as_uuid())
        .bind(trade.listing_id.as_uuid())
        .bind(trade.buyer_id.as_uuid())
        .bind(trade.seller_id.as_uuid())
        .bind(amount)
        .bind(status)
        .bind(reason)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// A payment has an outcome: unless its request is recorded by `orphan_after`, the
    /// timer abandons or fails it.
    async fn await_placement(&mut self, trade: &Trade, at: DateTime<Utc>) -> Sql {
        if self.recorded.contains(&trade.request_id) {
            return Ok(());
        }
        let recorded: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM settlement.trades WHERE request_id = $1)",
        )
        .bind(trade.request_id.as_uuid())
        .fetch_one(&mut *self.tx)
        .await?;
        if recorded {
            return Ok(());
        }
        self.deadline(
            trade.request_id,
            "check_placement",
            at + self.config.orphan_after,
        )
        .await
    }

    async fn deadline(&mut self, request_id: RequestId, kind: &str, due_at: DateTime<Utc>) -> Sql {
        sqlx::query(
            "INSERT INTO settlement.deadlines (request_id, kind, due_at) VALUES ($1, $2, $3)
             ON CONFLICT (request_id, kind) DO UPDATE SET due_at = $3",
        )
        .bind(request_id.as_uuid())
        .bind(kind)
        .bind(due_at)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    async fn clear_deadline(&mut self, request_id: RequestId, kind: &str) -> Sql {
        sqlx::query("DELETE FROM settlement.deadlines WHERE request_id = $1 AND kind = $2")
            .bind(request_id.as_uuid())
            .bind(kind)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }
}
