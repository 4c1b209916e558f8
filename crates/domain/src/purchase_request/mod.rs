//! The `PurchaseRequest` aggregate: one buyer's request for one listing, from the paid
//! request to its end (accepted and completed, or rejected, cancelled, expired).
//!
//! It is only ever created with a payment outcome: `PurchaseRequested` needs a captured
//! payment, a declined one gives `PurchaseRequestPaymentFailed`. The price is a snapshot
//! taken at request time. Every event carries the trade (request, listing, buyer, seller).
//!
//! The request keeps its own deadlines ([`Deadlines`]): once `request_ttl` has passed since
//! it was requested, it can only expire; once `completion_ttl` has passed since it was
//! accepted, it can only complete. A late accept, reject or cancel is refused
//! (`deadline_passed`) whether or not the saga's timer has acted yet, and an early expiry
//! or automatic completion is refused too (`not_due`): which way the money goes depends on
//! the deadlines alone, not on when the workers ran.

mod commands;
mod deadlines;
mod error;
mod events;

use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

pub use commands::PurchaseRequestCommand;
pub use deadlines::Deadlines;
pub use error::PurchaseRequestError;
pub use events::{PurchaseRequestEvent, VERSIONS};

use chrono::{DateTime, Utc};

use crate::trade::Party;
use crate::{Actor, Clock, PaymentId, Price, Trade, UserId};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Not created yet (the aggregate's empty state).
    #[default]
    None,
    /// Paid and waiting for the seller.
    Requested,
    /// The seller accepted; the listing is reserved for it.
    Accepted,
    /// The seller (or Carrot, for a reserved or withdrawn listing) rejected it.
    Rejected,
    /// The buyer (or Carrot, after the completion deadline) completed it.
    Completed,
    /// The buyer or, once accepted, the seller cancelled it.
    Cancelled,
    /// Nobody answered before the request deadline.
    Expired,
    /// The payment was declined; the request never became pending.
    PaymentFailed,
}

impl RequestStatus {
    /// The statuses a request shows clients, in the order counts list them.
    pub const SHOWN: [RequestStatus; 7] = [
        RequestStatus::Requested,
        RequestStatus::Accepted,
        RequestStatus::Rejected,
        RequestStatus::Completed,
        RequestStatus::Cancelled,
        RequestStatus::Expired,
        RequestStatus::PaymentFailed,
    ];

    /// The status as clients see it.
    pub fn name(&self) -> &'static str {
        match self {
            RequestStatus::None => "none",
            RequestStatus::Requested => "requested",
            RequestStatus::Accepted => "accepted",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Completed => "completed",
            RequestStatus::Cancelled => "cancelled",
            RequestStatus::Expired => "expired",
            RequestStatus::PaymentFailed => "payment_failed",
        }
    }

    /// Whether the request still binds the buyer's money and the seller's attention.
    pub fn is_open(&self) -> bool {
        matches!(self, RequestStatus::Requested | RequestStatus::Accepted)
    }
}

/// A purchase request's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PurchaseRequest {
    trade: Trade,
    price: Option<Price>,
    payment_id: Option<PaymentId>,
    status: RequestStatus,
    origin: Option<Origin>,
    /// When it was requested (absent from snapshots written before deadlines were kept:
    /// such a request is left to the timer, as before).
    #[serde(default)]
    requested_at: Option<DateTime<Utc>>,
    /// When it was accepted.
    #[serde(default)]
    accepted_at: Option<DateTime<Utc>>,
}

/// How a request came to exist. Creating it again the same way, with the same payment, is
/// a retry and already done; any other creation is refused (a late `PlaceRequest` must not
/// revive a request the saga abandoned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Origin {
    Placed,
    PaymentFailed,
    Abandoned,
}

impl Origin {
    fn status(self) -> RequestStatus {
        match self {
            Origin::Placed => RequestStatus::Requested,
            Origin::PaymentFailed => RequestStatus::PaymentFailed,
            Origin::Abandoned => RequestStatus::Expired,
        }
    }
}

/// What the request aggregate needs from the outside world.
#[derive(Clone)]
pub struct PurchaseRequestServices {
    /// The time source for event timestamps and deadlines.
    pub clock: Arc<dyn Clock>,
    /// The deadlines.
    pub deadlines: Deadlines,
}

impl PurchaseRequest {
    /// Where the request stands.
    pub fn status(&self) -> RequestStatus {
        self.status
    }

    /// Who trades what.
    pub fn trade(&self) -> Trade {
        self.trade
    }

    /// The escrowed payment.
    pub fn payment_id(&self) -> Option<PaymentId> {
        self.payment_id
    }

    /// The agreed price.
    pub fn price(&self) -> Option<Price> {
        self.price
    }

    /// Whether `command` would be accepted now: the same rules as `handle`, nothing recorded.
    /// Lets a caller check a request before touching another aggregate for it.
    pub fn check(
        &self,
        command: &PurchaseRequestCommand,
        services: &PurchaseRequestServices,
    ) -> Result<(), PurchaseRequestError> {
        self.decide(command.clone(), services).map(|_| ())
    }

    /// The caller's part in the trade; strangers learn nothing (not found).
    fn party_of(&self, user: UserId) -> Result<Party, PurchaseRequestError> {
        if self.status == RequestStatus::None {
            return Err(PurchaseRequestError::NotFound);
        }
        self.trade.party(user).ok_or(PurchaseRequestError::NotFound)
    }

    fn require_seller(&self, actor: Actor) -> Result<(), PurchaseRequestError> {
        match actor {
            Actor::System => self.exists(),
            Actor::User(user) => match self.party_of(user)? {
                Party::Seller => Ok(()),
                Party::Buyer => Err(PurchaseRequestError::NotYourListing),
            },
        }
    }

    fn require_buyer(&self, actor: Actor) -> Result<(), PurchaseRequestError> {
        match actor {
            Actor::System => self.exists(),
            Actor::User(user) => match self.party_of(user)? {
                Party::Buyer => Ok(()),
                Party::Seller => Err(PurchaseRequestError::NotYourRequest),
            },
        }
    }

    fn exists(&self) -> Result<(), PurchaseRequestError> {
        if self.status == RequestStatus::None {
            Err(PurchaseRequestError::NotFound)
        } else {
            Ok(())
        }
    }

    /// Whether a request may be created `origin`'s way with this payment: `Ok(false)` when
    /// it was, the same way with the same payment (a retry, already done).
    fn may_create(
        &self,
        trade: &Trade,
        payment_id: PaymentId,
        origin: Origin,
    ) -> Result<bool, PurchaseRequestError> {
        if self.status != RequestStatus::None {
            return if self.payment_id == Some(payment_id) && self.origin == Some(origin) {
                Ok(false)
            } else {
                Err(PurchaseRequestError::AlreadyExists)
            };
        }
        if trade.buyer_id == trade.seller_id {
            return Err(PurchaseRequestError::OwnListing);
        }
        Ok(true)
    }

    fn create(&mut self, trade: Trade, price: Price, payment_id: PaymentId, origin: Origin) {
        self.trade = trade;
        self.price = Some(price);
        self.payment_id = Some(payment_id);
        self.status = origin.status();
        self.origin = Some(origin);
    }

    fn require_status(
        &self,
        allowed: &[RequestStatus],
        action: &'static str,
    ) -> Result<(), PurchaseRequestError> {
        if allowed.contains(&self.status) {
            Ok(())
        } else {
            Err(PurchaseRequestError::InvalidTransition {
                action,
                status: self.status.name(),
            })
        }
    }

    fn decide(
        &self,
        command: PurchaseRequestCommand,
        services: &PurchaseRequestServices,
    ) -> Result<Option<PurchaseRequestEvent>, PurchaseRequestError> {
        use PurchaseRequestCommand as C;
        use PurchaseRequestEvent as E;
        use RequestStatus as S;
        let at = services.clock.now();
        let deadlines = &services.deadlines;
        let trade = self.trade;
        let event = match command {
            C::PlaceRequest {
                trade,
                price,
                payment_id,
            } => {
                if !self.may_create(&trade, payment_id, Origin::Placed)? {
                    return Ok(None);
                }
                E::PurchaseRequested {
                    trade,
                    price,
                    payment_id,
                    requested_at: at,
                }
            }
            C::RecordPaymentFailure {
                trade,
                price,
                payment_id,
                reason,
            } => {
                if !self.may_create(&trade, payment_id, Origin::PaymentFailed)? {
                    return Ok(None);
                }
                E::PurchaseRequestPaymentFailed {
                    trade,
                    price,
                    payment_id,
                    reason,
                    failed_at: at,
                }
            }
            C::AcceptRequest { actor } => {
                self.require_seller(actor)?;
                if self.status == S::Accepted {
                    return Ok(None);
                }
                self.require_status(&[S::Requested], "accept")?;
                self.before_deadline("accept", at, deadlines)?;
                E::PurchaseRequestAccepted {
                    trade,
                    accepted_at: at,
                }
            }
            C::RejectRequest { actor, reason } => {
                self.require_seller(actor)?;
                if self.status == S::Rejected {
                    return Ok(None);
                }
                self.require_status(&[S::Requested], "reject")?;
                self.before_deadline("reject", at, deadlines)?;
                E::PurchaseRequestRejected {
                    trade,
                    by: actor,
                    reason,
                    rejected_at: at,
                }
            }
            C::CompleteRequest { actor } => {
                self.require_buyer(actor)?;
                if self.status == S::Completed {
                    return Ok(None);
                }
                self.require_status(&[S::Accepted], "complete")?;
                // The buyer may complete late (the money goes the same way); Carrot only
                // once the deadline has come.
                if actor == Actor::System {
                    self.due("complete", at, deadlines)?;
                }
                E::PurchaseRequestCompleted {
                    trade,
                    automatic: actor == Actor::System,
                    completed_at: at,
                }
            }
            C::CancelRequest { actor } => {
                let by = self.party_of(actor)?;
                if self.status == S::Cancelled {
                    return Ok(None);
                }
                match by {
                    Party::Buyer => self.require_status(&[S::Requested, S::Accepted], "cancel")?,
                    // A pending request is the seller's to reject, not to cancel.
                    Party::Seller => self.require_status(&[S::Accepted], "cancel")?,
                }
                self.before_deadline("cancel", at, deadlines)?;
                E::PurchaseRequestCancelled {
                    trade,
                    by,
                    after_acceptance: self.status == S::Accepted,
                    cancelled_at: at,
                }
            }
            C::AbandonRequest {
                trade,
                price,
                payment_id,
            } => {
                if !self.may_create(&trade, payment_id, Origin::Abandoned)? {
                    return Ok(None);
                }
                E::PurchaseRequestAbandoned {
                    trade,
                    price,
                    payment_id,
                    abandoned_at: at,
                }
            }
            C::ExpireRequest => {
                self.exists()?;
                if self.status == S::Expired {
                    return Ok(None);
                }
                self.require_status(&[S::Requested], "expire")?;
                self.due("expire", at, deadlines)?;
                E::PurchaseRequestExpired {
                    trade,
                    expired_at: at,
                }
            }
        };
        Ok(Some(event))
    }
}

impl Aggregate for PurchaseRequest {
    const TYPE: &'static str = "purchase_request";
    type Command = PurchaseRequestCommand;
    type Event = PurchaseRequestEvent;
    type Error = PurchaseRequestError;
    type Services = PurchaseRequestServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let Some(event) = self.decide(command, services)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use PurchaseRequestEvent as E;
        match event {
            E::PurchaseRequested {
                trade,
                price,
                payment_id,
                requested_at,
            } => {
                self.create(trade, price, payment_id, Origin::Placed);
                self.requested_at = Some(requested_at);
            }
            E::PurchaseRequestPaymentFailed {
                trade,
                price,
                payment_id,
                ..
            } => self.create(trade, price, payment_id, Origin::PaymentFailed),
            E::PurchaseRequestAbandoned {
                trade,
                price,
                payment_id,
                ..
            } => self.create(trade, price, payment_id, Origin::Abandoned),
            E::PurchaseRequestAccepted { accepted_at, .. } => {
                self.status = RequestStatus::Accepted;
                self.accepted_at = Some(accepted_at);
            }
            E::PurchaseRequestRejected { .. } => self.status = RequestStatus::Rejected,
            E::PurchaseRequestCompleted { .. } => self.status = RequestStatus::Completed,
            E::PurchaseRequestCancelled { .. } => self.status = RequestStatus::Cancelled,
            E::PurchaseRequestExpired { .. } => self.status = RequestStatus::Expired,
        }
    }
}

#[cfg(test)]
mod tests;
