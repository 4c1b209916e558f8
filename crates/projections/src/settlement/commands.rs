//! The commands the settlement saga decides on, as stored in its outbox: each has a
//! deterministic id (deciding it twice is a no-op) and maps onto one aggregate command.
//!
//! Executing one ends in one of four ways. Applied. Moot: the aggregate refused it because
//! the trade moved on meanwhile (a request already accepted cannot be rejected for its
//! listing): done, nothing to do. Dead at once: a refusal that means an invariant would
//! break (refunding a paid-out payment): an operator must look. Retry later: the gateway or
//! the database failed, or the circuit breaker is open.

use std::collections::HashMap;
use std::time::Duration;

use carrot_domain::listing::{Listing, ListingCommand};
use carrot_domain::metadata::{ACTOR, CAUSATION_ID, COMMAND_ID, CORRELATION_ID};
use carrot_domain::payment::{Payment, PaymentCommand, PaymentError, PaymentStatus};
use carrot_domain::purchase_request::{
    PurchaseRequest, PurchaseRequestCommand, PurchaseRequestError, RequestStatus,
};
use carrot_domain::{Actor, DomainError, ListingId, PaymentId, Price, RequestId, Trade};
use serde::{Deserialize, Serialize};

use crate::write_side::{CommandError, Routed, WriteSide};

/// A command of the saga.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum SagaCommand {
    /// Reject a pending request (its listing was reserved, sold or withdrawn).
    RejectRequest {
        /// The request.
        request_id: RequestId,
        /// `listing_reserved`, `listing_sold`, `listing_withdrawn`.
        reason: String,
    },
    /// Finish an accept whose listing reservation committed but whose request did not.
    AcceptRequest {
        /// The request.
        request_id: RequestId,
    },
    /// Nobody answered before `request_ttl`.
    ExpireRequest {
        /// The request.
        request_id: RequestId,
    },
    /// Nobody completed before `completion_ttl`: complete it for the buyer.
    CompleteRequest {
        /// The request.
        request_id: RequestId,
    },
    /// A captured payment whose request never got recorded: record it expired (refunded next).
    AbandonRequest {
        /// Who trades what.
        trade: Trade,
        /// The amount captured.
        price: Price,
        /// The payment.
        payment_id: PaymentId,
    },
    /// A declined payment whose request never got recorded: record it `payment_failed`.
    RecordPaymentFailure {
        /// Who trades what.
        trade: Trade,
        /// The amount asked.
        price: Price,
        /// The payment.
        payment_id: PaymentId,
        /// The gateway's reason.
        reason: String,
    },
    /// Give the held money back to the buyer.
    RefundPayment {
        /// The trade.
        request_id: RequestId,
        /// The payment.
        payment_id: PaymentId,
    },
    /// Pay the held money out to the seller.
    PayOutPayment {
        /// The trade.
        request_id: RequestId,
        /// The payment.
        payment_id: PaymentId,
    },
    /// Ask the gateway what became of a capture that timed out.
    ReconcileCapture {
        /// The trade.
        request_id: RequestId,
        /// The payment.
        payment_id: PaymentId,
    },
    /// Make a listing available again: the request holding it closed.
    ReleaseListing {
        /// The listing.
        listing_id: ListingId,
        /// The request that held it.
        request_id: RequestId,
    },
    /// Mark a listing sold: the request holding it completed.
    MarkListingSold {
        /// The listing.
        listing_id: ListingId,
        /// The completed request.
        request_id: RequestId,
    },
}

/// How an execution ended, when it did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Refused because the trade moved on: nothing to do (the code says why).
    Moot(String),
    /// Refused in a way that must never happen: dead-letter it now.
    Refused(String),
    /// Failed for now: retry with backoff.
    Transient(String),
    /// The gateway's breaker is open: retry after this, without counting an attempt.
    CircuitOpen(Duration),
    /// Decided a little early by the clock the aggregate reads (an expiry, an automatic
    /// completion): run it again once it is due, without counting an attempt.
    NotYet(chrono::DateTime<chrono::Utc>),
}

impl SagaCommand {
    /// The newest command version this code reads. A command kind added later is stored
    /// with a higher `version()`, and a dispatcher of an older release leaves it for one
    /// that can read it (a rolling deploy) instead of burying it as unreadable.
    pub const READABLE: i32 = 1;

    /// The version a dispatcher needs to read this command.
    pub fn version(&self) -> i32 {
        1
    }

    /// The deterministic id: the same decision always yields the same id.
    pub fn id(&self) -> String {
        match self {
            SagaCommand::RejectRequest { request_id, .. } => format!("reject:{request_id}"),
            SagaCommand::AcceptRequest { request_id } => format!("accept:{request_id}"),
            SagaCommand::ExpireRequest { request_id } => format!("expire:{request_id}"),
            SagaCommand::CompleteRequest { request_id } => format!("complete:{request_id}"),
            SagaCommand::AbandonRequest { trade, .. } => format!("abandon:{}", trade.request_id),
            SagaCommand::RecordPaymentFailure { trade, .. } => {
                format!("payment_failure:{}", trade.request_id)
            }
            SagaCommand::RefundPayment { payment_id, .. } => format!("refund:{payment_id}"),
            SagaCommand::PayOutPayment { payment_id, .. } => format!("payout:{payment_id}"),
            SagaCommand::ReconcileCapture { payment_id, .. } => format!("reconcile:{payment_id}"),
            SagaCommand::ReleaseListing {
                listing_id,
                request_id,
            } => format!("release:{listing_id}:{request_id}"),
            SagaCommand::MarkListingSold {
                listing_id,
                request_id,
            } => format!("sold:{listing_id}:{request_id}"),
        }
    }

    /// The trade it belongs to (the correlation id).
    pub fn request_id(&self) -> RequestId {
        match self {
            SagaCommand::RejectRequest { request_id, .. }
            | SagaCommand::AcceptRequest { request_id }
            | SagaCommand::ExpireRequest { request_id }
            | SagaCommand::CompleteRequest { request_id }
            | SagaCommand::RefundPayment { request_id, .. }
            | SagaCommand::PayOutPayment { request_id, .. }
            | SagaCommand::ReconcileCapture { request_id, .. }
            | SagaCommand::ReleaseListing { request_id, .. }
            | SagaCommand::MarkListingSold { request_id, .. } => *request_id,
            SagaCommand::AbandonRequest { trade, .. }
            | SagaCommand::RecordPaymentFailure { trade, .. } => trade.request_id,
        }
    }

    /// The metadata its events carry: the system acts, for the trade, caused by this command.
    fn metadata(&self) -> HashMap<String, String> {
        let id = self.id();
        HashMap::from([
            (ACTOR.to_owned(), Actor::System.to_string()),
            (CORRELATION_ID.to_owned(), self.request_id().to_string()),
            (CAUSATION_ID.to_owned(), format!("saga:{id}")),
            (COMMAND_ID.to_owned(), id),
        ])
    }

    /// Executes it through the aggregates.
    pub async fn execute(&self, write: &WriteSide) -> Result<(), Failure> {
        use PurchaseRequestCommand as R;
        let system = Actor::System;
        match self.clone() {
            SagaCommand::RejectRequest { request_id, reason } => {
                let command = R::RejectRequest {
                    actor: system,
                    reason: Some(reason),
                };
                self.on::<PurchaseRequest>(write, request_id, command, moot)
                    .await
            }
            SagaCommand::AcceptRequest { request_id } => {
                // Decided on the saga's view, which may be behind: hold the listing for this
                // request first (a no-op when it already is), so a listing released or held
                // for another request meanwhile refuses, and nothing is accepted twice.
                let request = write
                    .load::<PurchaseRequest>(&request_id.to_string())
                    .await
                    .map_err(|e| Failure::Transient(e.to_string()))?;
                if request.status() != RequestStatus::Requested {
                    return Err(Failure::Moot("request_not_pending".into()));
                }
                let reserve = ListingCommand::ReserveListing { request_id };
                self.on::<Listing>(write, request.trade().listing_id, reserve, moot)
                    .await?;
                let command = R::AcceptRequest { actor: system };
                self.on::<PurchaseRequest>(write, request_id, command, moot)
                    .await
            }
            SagaCommand::ExpireRequest { request_id } => {
                self.on::<PurchaseRequest>(write, request_id, R::ExpireRequest, moot)
                    .await
            }
            SagaCommand::CompleteRequest { request_id } => {
                let command = R::CompleteRequest { actor: system };
                self.on::<PurchaseRequest>(write, request_id, command, moot)
                    .await
            }
            SagaCommand::AbandonRequest {
                trade,
                price,
                payment_id,
            } => {
                let command = R::AbandonRequest {
                    trade,
                    price,
                    payment_id,
                };
                self.on::<PurchaseRequest>(write, trade.request_id, command, moot)
                    .await
            }
            SagaCommand::RecordPaymentFailure {
                trade,
                price,
                payment_id,
                reason,
            } => {
                let command = R::RecordPaymentFailure {
                    trade,
                    price,
                    payment_id,
                    reason,
                };
                self.on::<PurchaseRequest>(write, trade.request_id, command, moot)
                    .await
            }
            SagaCommand::RefundPayment { payment_id, .. } => {
                self.transfer(write, payment_id, PaymentCommand::RefundPayment)
                    .await
            }
            SagaCommand::PayOutPayment { payment_id, .. } => {
                self.transfer(write, payment_id, PaymentCommand::PayOutPayment)
                    .await
            }
            SagaCommand::ReconcileCapture { payment_id, .. } => {
                let command = PaymentCommand::ReconcileCapture;
                self.on::<Payment>(write, payment_id, command, payment)
                    .await
            }
            SagaCommand::ReleaseListing {
                listing_id,
                request_id,
            } => {
                let command = ListingCommand::ReleaseListing { request_id };
                self.on::<Listing>(write, listing_id, command, refused)
                    .await
            }
            SagaCommand::MarkListingSold {
                listing_id,
                request_id,
            } => {
                let command = ListingCommand::MarkListingSold { request_id };
                self.on::<Listing>(write, listing_id, command, refused)
                    .await
            }
        }
    }

    /// Moves a payment's held money; a decline (recorded by the payment) is a dead letter
    /// at once, saying what an operator can do.
    async fn transfer(
        &self,
        write: &WriteSide,
        payment_id: PaymentId,
        command: PaymentCommand,
    ) -> Result<(), Failure> {
        let id = payment_id.to_string();
        let (_, after) = write
            .execute_for::<Payment>(&id, command, self.metadata())
            .await
            .map_err(|e| failure(e, payment))?;
        match after.declined_transfer() {
            Some(declined) if after.status() == PaymentStatus::Captured => {
                Err(Failure::Refused(format!(
                    "the gateway declined the {} (attempt {}): {}; the money is held until an \
                     operator retries it under a new attempt (POST \
                     /admin/payments/{payment_id}/retry-transfer) or records it settled \
                     outside Carrot (POST /admin/payments/{payment_id}/settle-outside)",
                    declined.kind.name(),
                    after.transfer_attempt(),
                    declined.reason,
                )))
            }
            _ => Ok(()),
        }
    }

    /// Runs `command` on aggregate `id`; `refusal` classifies the aggregate's refusals.
    async fn on<A>(
        &self,
        write: &WriteSide,
        id: impl ToString,
        command: A::Command,
        refusal: fn(&A::Error) -> Failure,
    ) -> Result<(), Failure>
    where
        A: Routed,
        A::Error: DomainError + 'static,
    {
        write
            .execute::<A>(&id.to_string(), command, self.metadata())
            .await
            .map(|_| ())
            .map_err(|e| failure(e, refusal))
    }
}

/// What a failed command means to the dispatcher: a refusal as `refusal` classifies it;
/// losing a race or the database failing is worth another try.
fn failure<E: std::error::Error>(error: CommandError<E>, refusal: fn(&E) -> Failure) -> Failure {
    match error {
        CommandError::Refused(e) => refusal(&e),
        CommandError::Contended => Failure::Transient("contended".into()),
        CommandError::Failed(e) => Failure::Transient(e.to_string()),
    }
}

/// A request that refuses moved on (accepted meanwhile, already closed...): nothing to do;
/// unless the deadline the command acts on has not come yet by the aggregate's clock.
fn moot<E: DomainError + std::any::Any>(e: &E) -> Failure {
    if let Some(PurchaseRequestError::NotDue { due, .. }) =
        (e as &dyn std::any::Any).downcast_ref::<PurchaseRequestError>()
    {
        return Failure::NotYet(*due);
    }
    Failure::Moot(e.code().to_owned())
}

/// A refusal that breaks an invariant if it ever happens.
fn refused<E: DomainError>(e: &E) -> Failure {
    Failure::Refused(format!("{}: {e}", e.code()))
}

/// A payment: the gateway's passing troubles are retried; anything else must not happen.
fn payment(e: &PaymentError) -> Failure {
    match e {
        PaymentError::CircuitOpen { retry_after_secs } => {
            Failure::CircuitOpen(Duration::from_secs(u64::from(*retry_after_secs)))
        }
        PaymentError::GatewayUnavailable(_) | PaymentError::GatewayTimeout => {
            Failure::Transient(e.to_string())
        }
        other => refused(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_round_trips_through_its_stored_form_and_keeps_its_id() {
        let request_id = RequestId::new();
        let payment_id = PaymentId::new();
        let command = SagaCommand::RefundPayment {
            request_id,
            payment_id,
        };
        let stored = serde_json::to_value(&command).unwrap();
        assert_eq!(stored["command"], "refund_payment");
        let back: SagaCommand = serde_json::from_value(stored).unwrap();
        assert_eq!(back, command);
        assert_eq!(back.id(), format!("refund:{payment_id}"));
        assert_eq!(back.request_id(), request_id);
    }

    #[test]
    fn refusals_of_a_payment_are_dead_letters_unless_the_gateway_is_passing_trouble() {
        assert_eq!(
            payment(&PaymentError::CircuitOpen {
                retry_after_secs: 3
            }),
            Failure::CircuitOpen(Duration::from_secs(3))
        );
        assert!(matches!(
            payment(&PaymentError::GatewayTimeout),
            Failure::Transient(_)
        ));
        assert!(matches!(
            payment(&PaymentError::AlreadyPaidOut),
            Failure::Refused(_)
        ));
    }
}
