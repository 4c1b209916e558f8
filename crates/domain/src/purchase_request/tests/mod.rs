//! Given/when/then tests of the purchase request aggregate: the fixtures each module shares.

mod abandon;
mod accept;
mod across_commands;
mod cancel;
mod complete;
mod creation;
mod deadlines;
mod expire;
mod payment_failure;
mod place;
mod reject;

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::{FixedClock, ListingId, RequestId};

const REQUEST: RequestId = RequestId::from_uuid(Uuid::from_u128(0x4e01));
const LISTING: ListingId = ListingId::from_uuid(Uuid::from_u128(0x1157));
const BUYER: UserId = UserId::from_uuid(Uuid::from_u128(0xb0b));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const STRANGER: UserId = UserId::from_uuid(Uuid::from_u128(0x0bad));
const PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a1));
const OTHER_PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a2));

use RequestStatus::{Accepted, Cancelled, Completed, Expired, PaymentFailed, Rejected, Requested};

/// Every status a request can have once it exists.
const EXISTING: [RequestStatus; 7] = [
    Requested,
    Accepted,
    Rejected,
    Completed,
    Cancelled,
    Expired,
    PaymentFailed,
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

fn trade() -> Trade {
    Trade {
        request_id: REQUEST,
        listing_id: LISTING,
        buyer_id: BUYER,
        seller_id: SELLER,
    }
}

fn price() -> Price {
    Price::parse(15_000).unwrap()
}

/// A test whose request has lived through `history`, at `now()`, with the usual deadlines
/// (every event of `history` happens at `now()` too: no deadline has passed).
fn given(history: Vec<PurchaseRequestEvent>) -> AggregateTestExecutor<PurchaseRequest> {
    given_at(history, now(), Deadlines::default())
}

/// A test whose request's deadline has come: deadlines of zero, so `now()` is due.
fn given_due(history: Vec<PurchaseRequestEvent>) -> AggregateTestExecutor<PurchaseRequest> {
    let due = Deadlines {
        request_ttl: chrono::Duration::zero(),
        completion_ttl: chrono::Duration::zero(),
    };
    given_at(history, now(), due)
}

fn given_at(
    history: Vec<PurchaseRequestEvent>,
    at: DateTime<Utc>,
    deadlines: Deadlines,
) -> AggregateTestExecutor<PurchaseRequest> {
    TestFramework::<PurchaseRequest>::with(services(at, deadlines)).given(history)
}

fn services(at: DateTime<Utc>, deadlines: Deadlines) -> PurchaseRequestServices {
    PurchaseRequestServices {
        clock: Arc::new(FixedClock::at(at)),
        deadlines,
    }
}

/// A test whose request stands at `status`, reached the usual way.
fn given_status(status: RequestStatus) -> AggregateTestExecutor<PurchaseRequest> {
    given(history(status))
}

fn history(status: RequestStatus) -> Vec<PurchaseRequestEvent> {
    match status {
        RequestStatus::None => vec![],
        Requested => vec![requested()],
        Accepted => vec![requested(), accepted()],
        Rejected => vec![requested(), rejected(Actor::User(SELLER), None)],
        Completed => vec![requested(), accepted(), completed(false)],
        Cancelled => vec![requested(), cancelled(Party::Buyer, false)],
        Expired => vec![requested(), expired()],
        PaymentFailed => vec![payment_failed()],
    }
}

fn invalid(action: &'static str, status: RequestStatus) -> PurchaseRequestError {
    PurchaseRequestError::InvalidTransition {
        action,
        status: status.name(),
    }
}

fn seller() -> Actor {
    Actor::User(SELLER)
}

fn buyer() -> Actor {
    Actor::User(BUYER)
}

fn stranger() -> Actor {
    Actor::User(STRANGER)
}

/// The three ways a request comes to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Placed,
    PaymentFailed,
    Abandoned,
}

const WAYS: [Way; 3] = [Way::Placed, Way::PaymentFailed, Way::Abandoned];

/// The command creating a request `way`, for `trade`.
fn create(way: Way, trade: Trade, payment_id: PaymentId) -> PurchaseRequestCommand {
    let price = price();
    match way {
        Way::Placed => PurchaseRequestCommand::PlaceRequest {
            trade,
            price,
            payment_id,
        },
        Way::PaymentFailed => PurchaseRequestCommand::RecordPaymentFailure {
            trade,
            price,
            payment_id,
            reason: "insufficient funds".into(),
        },
        Way::Abandoned => PurchaseRequestCommand::AbandonRequest {
            trade,
            price,
            payment_id,
        },
    }
}

/// The event of a request created `way` with `PAYMENT`.
fn created(way: Way) -> PurchaseRequestEvent {
    match way {
        Way::Placed => requested(),
        Way::PaymentFailed => payment_failed(),
        Way::Abandoned => abandoned(),
    }
}

/// The histories of requests created with `PAYMENT`, each with how it was created: every
/// status reached the usual way, and the abandoned request.
fn every_history() -> Vec<(Way, Vec<PurchaseRequestEvent>)> {
    let way = |status| match status {
        PaymentFailed => Way::PaymentFailed,
        _ => Way::Placed,
    };
    let usual = EXISTING.map(|status| (way(status), history(status)));
    let mut histories = usual.to_vec();
    histories.push((Way::Abandoned, vec![abandoned()]));
    histories
}

// Commands.

fn place(payment_id: PaymentId) -> PurchaseRequestCommand {
    create(Way::Placed, trade(), payment_id)
}

fn record_failure(payment_id: PaymentId) -> PurchaseRequestCommand {
    create(Way::PaymentFailed, trade(), payment_id)
}

fn abandon(payment_id: PaymentId) -> PurchaseRequestCommand {
    create(Way::Abandoned, trade(), payment_id)
}

fn accept(actor: Actor) -> PurchaseRequestCommand {
    PurchaseRequestCommand::AcceptRequest { actor }
}

fn reject(actor: Actor, reason: Option<&str>) -> PurchaseRequestCommand {
    PurchaseRequestCommand::RejectRequest {
        actor,
        reason: reason.map(str::to_owned),
    }
}

fn complete(actor: Actor) -> PurchaseRequestCommand {
    PurchaseRequestCommand::CompleteRequest { actor }
}

fn cancel(actor: UserId) -> PurchaseRequestCommand {
    PurchaseRequestCommand::CancelRequest { actor }
}

// Events.

fn requested() -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequested {
        trade: trade(),
        price: price(),
        payment_id: PAYMENT,
        requested_at: now(),
    }
}

fn payment_failed() -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestPaymentFailed {
        trade: trade(),
        price: price(),
        payment_id: PAYMENT,
        reason: "insufficient funds".into(),
        failed_at: now(),
    }
}

fn accepted() -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestAccepted {
        trade: trade(),
        accepted_at: now(),
    }
}

fn rejected(by: Actor, reason: Option<&str>) -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestRejected {
        trade: trade(),
        by,
        reason: reason.map(str::to_owned),
        rejected_at: now(),
    }
}

fn completed(automatic: bool) -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestCompleted {
        trade: trade(),
        automatic,
        completed_at: now(),
    }
}

fn cancelled(by: Party, after_acceptance: bool) -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestCancelled {
        trade: trade(),
        by,
        after_acceptance,
        cancelled_at: now(),
    }
}

fn expired() -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestExpired {
        trade: trade(),
        expired_at: now(),
    }
}

fn abandoned() -> PurchaseRequestEvent {
    PurchaseRequestEvent::PurchaseRequestAbandoned {
        trade: trade(),
        price: price(),
        payment_id: PAYMENT,
        abandoned_at: now(),
    }
}

fn current(status: RequestStatus) -> PurchaseRequest {
    replayed(history(status))
}

fn replayed(history: Vec<PurchaseRequestEvent>) -> PurchaseRequest {
    let mut request = PurchaseRequest::default();
    history.into_iter().for_each(|event| request.apply(event));
    request
}
