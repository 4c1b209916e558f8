//! The settlement saga: the process manager, keyed by request id, that makes the money
//! follow the trade.
//!
//! It is a subscriber of the ordered log like the projections: in the runner's batch
//! transaction it updates its own state (`settlement.*`) and writes the commands it decides
//! on into its outbox, so state, decisions and checkpoint move together, exactly once. A
//! batch loads the state its events touch at once, reacts to the events one by one in
//! memory, and writes the state, deadlines and commands back at once (`state.rs`). The
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
//!   or recorded as failed, after `orphan_after`; a capture started (the write-ahead
//!   intent) whose outcome is still unknown `reconcile_after` later is reconciled with the
//!   gateway, whether its process survived or not; a capture found at the gateway with no
//!   payment in the log (reconciliation) is refunded.

pub mod commands;
pub mod dispatcher;
pub mod mismatches;
mod money;
pub mod outbox;
mod reads;
pub mod reconcile;
pub mod recover;
mod state;
pub mod timer;

use async_trait::async_trait;
use carrot_domain::listing::ListingEvent;
use carrot_domain::purchase_request::{Deadlines, PurchaseRequestEvent};
use carrot_domain::{PaymentId, RequestId, Trade};
use chrono::{DateTime, Duration, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use reads::{decode, keys, Event};
use state::{ListingRow, State, TradeRow};

pub use commands::SagaCommand;
pub use dispatcher::{Dispatcher, DispatcherConfig};
pub use reconcile::{ReconcileConfig, Reconciler, Report};
pub use timer::Timer;

/// The name of the saga's dispatcher wake-up channel (`NOTIFY` on outbox inserts).
pub const OUTBOX_CHANNEL: &str = "carrot_outbox";

use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::StoredEvent;

/// The subscriber's name, its checkpoint row and its schema.
pub const SETTLEMENT: &str = "settlement";

/// The saga's deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SagaConfig {
    /// When requests expire and complete: the same values the aggregate enforces.
    pub deadlines: Deadlines,
    /// How long a listing may be held in a state that needs repair (a crash between two
    /// commands of one flow) before the saga repairs it.
    pub repair_after: Duration,
    /// How long a payment's outcome may wait for its request to be recorded.
    pub orphan_after: Duration,
    /// How long after a capture started, if its outcome is still unknown, the gateway is
    /// asked what became of it (longer than the gateway's time limit).
    pub reconcile_after: Duration,
}

impl Default for SagaConfig {
    fn default() -> Self {
        SagaConfig {
            deadlines: Deadlines::default(),
            repair_after: Duration::seconds(10),
            orphan_after: Duration::seconds(15),
            reconcile_after: Duration::seconds(10),
        }
    }
}

impl SagaConfig {
    /// These deadlines, asking about a started capture no sooner than 5 s after a call
    /// limited to `gateway_timeout` must have ended.
    pub fn reconciling_after(self, gateway_timeout: std::time::Duration) -> Self {
        let floor =
            Duration::from_std(gateway_timeout).unwrap_or(Duration::MAX) + Duration::seconds(5);
        SagaConfig {
            reconcile_after: self.reconcile_after.max(floor),
            ..self
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

    fn not_rebuildable(&self) -> Option<&'static str> {
        Some(
            "the saga is not a pure fold of the log: its state goes with an outbox of \
             effects (refunds, payouts) already run, and with deadlines the timer already \
             fired, neither of which a rebuild from the log can know. `carrot saga recover` \
             recomputes its state from the log and repairs it without running anything twice \
             (docs/DESIGN.md, \"Rebuilding the saga\")",
        )
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let events = decode(events)?;
        let state = State::load(&mut *tx, keys(&events)).await?;
        let mut saga = Batch {
            state,
            config: &self.config,
        };
        // One event at a time: each reaction sees the state the previous one left.
        for (event, at) in events {
            match event {
                Event::Listing(event) => saga.on_listing(event),
                Event::Request(event) => saga.on_request(event, at),
                Event::Payment(event) => saga.on_payment(event),
            }
        }
        saga.state.store(tx).await
    }
}

/// The saga over one batch's state.
struct Batch<'a> {
    state: State,
    config: &'a SagaConfig,
}

impl Batch<'_> {
    fn on_listing(&mut self, event: ListingEvent) {
        match event {
            ListingEvent::ListingRegistered { listing_id, .. } => {
                self.state.listings.create(ListingRow {
                    listing_id: listing_id.as_uuid(),
                    status: "available".into(),
                    holder: None,
                });
            }
            ListingEvent::ListingReserved {
                listing_id,
                request_id,
                reserved_at,
            } => {
                self.set_listing(listing_id.as_uuid(), "reserved", Some(request_id));
                // The accept flow accepts the request right after: if it died in between,
                // the repair finishes (or undoes) it.
                self.state.set_deadline(
                    request_id.as_uuid(),
                    "check_listing",
                    reserved_at + self.config.repair_after,
                );
            }
            ListingEvent::ListingReleased {
                listing_id,
                request_id,
                ..
            } => {
                self.set_listing(listing_id.as_uuid(), "available", None);
                // The flow that held the listing for the request has finished.
                self.state
                    .clear_deadline(request_id.as_uuid(), "check_listing");
            }
            ListingEvent::ListingSold {
                listing_id,
                request_id,
                ..
            } => {
                self.set_listing(listing_id.as_uuid(), "sold", Some(request_id));
                self.state
                    .clear_deadline(request_id.as_uuid(), "check_listing");
            }
            ListingEvent::ListingWithdrawn { listing_id, .. } => {
                self.set_listing(listing_id.as_uuid(), "withdrawn", None);
                self.reject_pending(listing_id.as_uuid(), None, "listing_withdrawn");
            }
            ListingEvent::ListingEdited { .. } => {}
        }
    }

    fn on_request(&mut self, event: PurchaseRequestEvent, at: DateTime<Utc>) {
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
                self.record(&trade, payment_id, price.as_krw(), "requested", at);
                self.state.set_deadline(
                    request_id.as_uuid(),
                    "expire",
                    requested_at + self.config.deadlines.request_ttl,
                );
                // Placed after its listing stopped being available (a race with an
                // accept, a sale or a withdrawal): it cannot be accepted any more.
                if let Some(status) = self.listing_unavailable(&trade) {
                    let reason = format!("listing_{status}");
                    self.state
                        .decide(SagaCommand::RejectRequest { request_id, reason });
                }
            }
            E::PurchaseRequestPaymentFailed {
                price, payment_id, ..
            } => {
                self.record(&trade, payment_id, price.as_krw(), "payment_failed", at);
            }
            E::PurchaseRequestAbandoned {
                price, payment_id, ..
            } => {
                self.record(&trade, payment_id, price.as_krw(), "expired", at);
                self.refund(request_id);
            }
            E::PurchaseRequestAccepted { accepted_at, .. } => {
                self.set_status(request_id, "accepted", at);
                let id = request_id.as_uuid();
                self.state.clear_deadline(id, "expire");
                self.state.set_deadline(
                    id,
                    "complete",
                    accepted_at + self.config.deadlines.completion_ttl,
                );
                // The listing is held for an accepted request: nothing to repair.
                if self.holds(&trade) {
                    self.state.clear_deadline(id, "check_listing");
                }
                self.reject_pending(
                    trade.listing_id.as_uuid(),
                    Some(request_id),
                    "listing_reserved",
                );
            }
            E::PurchaseRequestRejected {
                rejected_at: when, ..
            }
            | E::PurchaseRequestCancelled {
                cancelled_at: when, ..
            }
            | E::PurchaseRequestExpired {
                expired_at: when, ..
            } => {
                let status = match event {
                    E::PurchaseRequestRejected { .. } => "rejected",
                    E::PurchaseRequestCancelled { .. } => "cancelled",
                    _ => "expired",
                };
                self.close(&trade, status, when, at);
                self.refund(request_id);
            }
            E::PurchaseRequestCompleted {
                completed_at,
                automatic,
                ..
            } => {
                self.close(&trade, "completed", completed_at, at);
                // The buyer's complete call marks the listing sold itself (a crash in
                // between is repaired after the grace period); an automatic completion
                // has no call behind it.
                if automatic {
                    self.state.decide(SagaCommand::MarkListingSold {
                        listing_id: trade.listing_id,
                        request_id,
                    });
                }
                if let Some(payment_id) = self.payment_of(request_id) {
                    self.state.decide(SagaCommand::PayOutPayment {
                        request_id,
                        payment_id,
                    });
                }
            }
        }
    }

    /// Records a request (once: a repeat leaves the record as it is), and stops waiting
    /// for it to be placed.
    fn record(
        &mut self,
        trade: &Trade,
        payment_id: PaymentId,
        amount: i64,
        status: &str,
        at: DateTime<Utc>,
    ) {
        self.state.trades.create(TradeRow {
            request_id: trade.request_id.as_uuid(),
            listing_id: trade.listing_id.as_uuid(),
            buyer_id: trade.buyer_id.as_uuid(),
            seller_id: trade.seller_id.as_uuid(),
            payment_id: payment_id.as_uuid(),
            amount,
            status: status.into(),
            updated_at: at,
        });
        self.state
            .clear_deadline(trade.request_id.as_uuid(), "check_placement");
    }

    fn set_status(&mut self, request_id: RequestId, status: &str, at: DateTime<Utc>) {
        if let Some(row) = self.state.trades.change(request_id.as_uuid()) {
            row.status = status.into();
            row.updated_at = at;
        }
    }

    /// A request reached an end: its timers stop, and a listing it still holds is checked
    /// after the grace period (the flow releases or sells it itself unless it died).
    fn close(&mut self, trade: &Trade, status: &str, when: DateTime<Utc>, at: DateTime<Utc>) {
        self.set_status(trade.request_id, status, at);
        let id = trade.request_id.as_uuid();
        self.state.clear_deadline(id, "expire");
        self.state.clear_deadline(id, "complete");
        if self.holds(trade) {
            self.state
                .set_deadline(id, "check_listing", when + self.config.repair_after);
        }
    }

    /// Whether the trade's listing is held for its request.
    fn holds(&self, trade: &Trade) -> bool {
        self.state
            .listings
            .get(trade.listing_id.as_uuid())
            .is_some_and(|l| l.holder == Some(trade.request_id.as_uuid()))
    }

    fn refund(&mut self, request_id: RequestId) {
        if let Some(payment_id) = self.payment_of(request_id) {
            self.state.decide(SagaCommand::RefundPayment {
                request_id,
                payment_id,
            });
        }
    }

    fn payment_of(&self, request_id: RequestId) -> Option<PaymentId> {
        self.state
            .trades
            .get(request_id.as_uuid())
            .map(|t| PaymentId::from_uuid(t.payment_id))
    }

    /// Rejects every pending request on `listing_id` but `keep`.
    fn reject_pending(&mut self, listing_id: Uuid, keep: Option<RequestId>, reason: &str) {
        let keep = keep.map(|k| k.as_uuid());
        let mut pending: Vec<Uuid> = self
            .state
            .trades
            .rows()
            .filter(|t| t.listing_id == listing_id && t.status == "requested")
            .map(|t| t.request_id)
            .filter(|r| Some(*r) != keep)
            .collect();
        pending.sort_unstable();
        for request in pending {
            self.state.decide(SagaCommand::RejectRequest {
                request_id: RequestId::from_uuid(request),
                reason: reason.to_owned(),
            });
        }
    }

    /// The listing's status when it is no longer open to this request.
    fn listing_unavailable(&self, trade: &Trade) -> Option<String> {
        let listing = self.state.listings.get(trade.listing_id.as_uuid())?;
        if listing.status == "available" || listing.holder == Some(trade.request_id.as_uuid()) {
            None
        } else {
            Some(listing.status.clone())
        }
    }

    fn set_listing(&mut self, listing_id: Uuid, status: &str, holder: Option<RequestId>) {
        self.state.listings.put(ListingRow {
            listing_id,
            status: status.into(),
            holder: holder.map(|h| h.as_uuid()),
        });
    }
}
