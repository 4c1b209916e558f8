//! Given/when/then tests of the purchase request aggregate: every transition and every
//! refusal, for each party and for the system.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use cqrs_es::test::{AggregateTestExecutor, TestFramework};
use uuid::Uuid;

use super::*;
use crate::{DomainError, ErrorKind, FixedClock, ListingId, RequestId};

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

// Place.

#[test]
fn placing_a_paid_request_records_it_with_the_trade_price_and_payment() {
    given(vec![])
        .when(place(PAYMENT))
        .then_expect_events(vec![requested()]);
}

#[test]
fn a_placed_request_is_requested_and_remembers_its_trade_price_and_payment() {
    let request = current(Requested);
    assert_eq!(request.status(), Requested);
    assert_eq!(request.trade(), trade());
    assert_eq!(request.price(), Some(price()));
    assert_eq!(request.payment_id(), Some(PAYMENT));
}

#[test]
fn placing_it_again_with_the_same_payment_records_nothing() {
    given_status(Requested)
        .when(place(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn placing_it_again_with_another_payment_is_refused_whatever_its_status() {
    for status in EXISTING {
        given_status(status)
            .when(place(OTHER_PAYMENT))
            .then_expect_error(PurchaseRequestError::AlreadyExists);
    }
}

#[test]
fn requesting_ones_own_listing_is_refused() {
    let own = Trade {
        buyer_id: SELLER,
        ..trade()
    };
    given(vec![])
        .when(PurchaseRequestCommand::PlaceRequest {
            trade: own,
            price: price(),
            payment_id: PAYMENT,
        })
        .then_expect_error(PurchaseRequestError::OwnListing);
}

// Record a payment failure.

#[test]
fn a_declined_payment_ends_the_request_as_payment_failed() {
    given(vec![])
        .when(record_failure(PAYMENT))
        .then_expect_events(vec![payment_failed()]);
    assert_eq!(current(PaymentFailed).status(), PaymentFailed);
    assert!(!PaymentFailed.is_open());
}

#[test]
fn recording_the_same_payment_failure_again_records_nothing() {
    given_status(PaymentFailed)
        .when(record_failure(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn recording_a_failure_of_another_payment_on_an_existing_request_is_refused() {
    for status in [Requested, PaymentFailed] {
        given_status(status)
            .when(record_failure(OTHER_PAYMENT))
            .then_expect_error(PurchaseRequestError::AlreadyExists);
    }
}

// Abandon.

#[test]
fn abandoning_a_paid_request_that_was_never_recorded_records_it_expired_with_its_payment() {
    given(vec![])
        .when(abandon(PAYMENT))
        .then_expect_events(vec![abandoned()]);
}

#[test]
fn an_abandoned_request_is_expired_closed_and_remembers_its_trade_price_and_payment() {
    let request = replayed(vec![abandoned()]);
    assert_eq!(request.status(), Expired);
    assert!(!request.status().is_open());
    assert_eq!(request.trade(), trade());
    assert_eq!(request.price(), Some(price()));
    assert_eq!(request.payment_id(), Some(PAYMENT));
}

#[test]
fn abandoning_it_again_with_the_same_payment_records_nothing() {
    given(vec![abandoned()])
        .when(abandon(PAYMENT))
        .then_expect_events(vec![]);
}

#[test]
fn expiring_an_abandoned_request_records_nothing_as_it_expired_already() {
    given(vec![abandoned()])
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![]);
}

#[test]
fn an_abandoned_request_can_be_neither_accepted_rejected_completed_nor_cancelled() {
    let refused = [
        (accept(seller()), "accept"),
        (accept(Actor::System), "accept"),
        (reject(seller(), None), "reject"),
        (reject(Actor::System, Some("listing_reserved")), "reject"),
        (complete(buyer()), "complete"),
        (complete(Actor::System), "complete"),
        (cancel(BUYER), "cancel"),
        (cancel(SELLER), "cancel"),
    ];
    for (command, action) in refused {
        given(vec![abandoned()])
            .when(command)
            .then_expect_error(invalid(action, Expired));
    }
}

#[test]
fn a_stranger_acting_on_an_abandoned_request_is_told_there_is_no_such_request() {
    for command in [accept(stranger()), complete(stranger()), cancel(STRANGER)] {
        given(vec![abandoned()])
            .when(command)
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

// Creation, whichever way.

#[test]
fn creating_it_again_the_same_way_with_the_same_payment_records_nothing_whatever_its_status() {
    for (way, history) in every_history() {
        given(history)
            .when(create(way, trade(), PAYMENT))
            .then_expect_events(vec![]);
    }
}

#[test]
fn creating_a_request_again_with_another_payment_is_refused_whatever_its_status_and_way() {
    for (_, history) in every_history() {
        for way in WAYS {
            given(history.clone())
                .when(create(way, trade(), OTHER_PAYMENT))
                .then_expect_error(PurchaseRequestError::AlreadyExists);
        }
    }
}

#[test]
fn creating_a_request_another_way_with_the_same_payment_is_refused_whatever_its_status() {
    for (first, history) in every_history() {
        for way in WAYS.into_iter().filter(|way| *way != first) {
            given(history.clone())
                .when(create(way, trade(), PAYMENT))
                .then_expect_error(PurchaseRequestError::AlreadyExists);
        }
    }
}

#[test]
fn a_late_placement_cannot_revive_an_abandoned_request() {
    given(vec![abandoned()])
        .when(place(PAYMENT))
        .then_expect_error(PurchaseRequestError::AlreadyExists);
}

#[test]
fn a_placed_request_that_expired_cannot_be_abandoned_though_both_end_expired() {
    given_status(Expired)
        .when(abandon(PAYMENT))
        .then_expect_error(PurchaseRequestError::AlreadyExists);
}

#[test]
fn creating_a_request_for_ones_own_listing_is_refused_whichever_way() {
    let own = Trade {
        buyer_id: SELLER,
        ..trade()
    };
    for way in WAYS {
        given(vec![])
            .when(create(way, own, PAYMENT))
            .then_expect_error(PurchaseRequestError::OwnListing);
    }
}

#[test]
fn creating_a_request_records_the_event_of_its_way() {
    for way in WAYS {
        given(vec![])
            .when(create(way, trade(), PAYMENT))
            .then_expect_events(vec![created(way)]);
    }
}

// Accept.

#[test]
fn the_seller_accepts_a_requested_request() {
    given_status(Requested)
        .when(accept(seller()))
        .then_expect_events(vec![accepted()]);
}

#[test]
fn the_system_may_accept_a_requested_request() {
    given_status(Requested)
        .when(accept(Actor::System))
        .then_expect_events(vec![accepted()]);
}

#[test]
fn accepting_a_request_twice_records_nothing_the_second_time() {
    for actor in [seller(), Actor::System] {
        given_status(Accepted)
            .when(accept(actor))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_buyer_cannot_accept_their_own_request() {
    given_status(Requested)
        .when(accept(buyer()))
        .then_expect_error(PurchaseRequestError::NotYourListing);
}

#[test]
fn a_stranger_accepting_is_told_there_is_no_such_request() {
    given_status(Requested)
        .when(accept(stranger()))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn accepting_an_unknown_request_is_refused() {
    for actor in [seller(), Actor::System] {
        given(vec![])
            .when(accept(actor))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn accepting_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Rejected, Completed, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(accept(seller()))
            .then_expect_error(invalid("accept", status));
    }
}

// Reject.

#[test]
fn the_seller_rejects_a_requested_request_with_a_reason() {
    given_status(Requested)
        .when(reject(seller(), Some("sold elsewhere")))
        .then_expect_events(vec![rejected(seller(), Some("sold elsewhere"))]);
}

#[test]
fn the_seller_may_reject_without_a_reason() {
    given_status(Requested)
        .when(reject(seller(), None))
        .then_expect_events(vec![rejected(seller(), None)]);
}

#[test]
fn the_system_rejects_a_request_for_a_reserved_listing() {
    given_status(Requested)
        .when(reject(Actor::System, Some("listing_reserved")))
        .then_expect_events(vec![rejected(Actor::System, Some("listing_reserved"))]);
}

#[test]
fn rejecting_a_request_twice_records_nothing_the_second_time() {
    for actor in [seller(), Actor::System] {
        given_status(Rejected)
            .when(reject(actor, Some("again")))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_buyer_cannot_reject_their_own_request() {
    given_status(Requested)
        .when(reject(buyer(), None))
        .then_expect_error(PurchaseRequestError::NotYourListing);
}

#[test]
fn a_stranger_rejecting_is_told_there_is_no_such_request() {
    given_status(Requested)
        .when(reject(stranger(), None))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn rejecting_an_unknown_request_is_refused() {
    for actor in [seller(), Actor::System] {
        given(vec![])
            .when(reject(actor, None))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn rejecting_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Accepted, Completed, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(reject(seller(), None))
            .then_expect_error(invalid("reject", status));
    }
}

// Complete.

#[test]
fn the_buyer_completes_an_accepted_request() {
    given_status(Accepted)
        .when(complete(buyer()))
        .then_expect_events(vec![completed(false)]);
}

#[test]
fn the_system_completes_an_accepted_request_automatically() {
    given_due(history(Accepted))
        .when(complete(Actor::System))
        .then_expect_events(vec![completed(true)]);
}

#[test]
fn completing_a_request_twice_records_nothing_the_second_time() {
    for actor in [buyer(), Actor::System] {
        given_status(Completed)
            .when(complete(actor))
            .then_expect_events(vec![]);
    }
}

#[test]
fn the_seller_cannot_complete_a_request() {
    given_status(Accepted)
        .when(complete(seller()))
        .then_expect_error(PurchaseRequestError::NotYourRequest);
}

#[test]
fn a_stranger_completing_is_told_there_is_no_such_request() {
    given_status(Accepted)
        .when(complete(stranger()))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn completing_an_unknown_request_is_refused() {
    for actor in [buyer(), Actor::System] {
        given(vec![])
            .when(complete(actor))
            .then_expect_error(PurchaseRequestError::NotFound);
    }
}

#[test]
fn completing_from_any_status_but_accepted_is_an_invalid_transition() {
    for status in [Requested, Rejected, Cancelled, Expired, PaymentFailed] {
        given_status(status)
            .when(complete(buyer()))
            .then_expect_error(invalid("complete", status));
    }
}

// Cancel.

#[test]
fn the_buyer_cancels_a_requested_request_before_acceptance() {
    given_status(Requested)
        .when(cancel(BUYER))
        .then_expect_events(vec![cancelled(Party::Buyer, false)]);
}

#[test]
fn the_buyer_cancels_an_accepted_request_after_acceptance() {
    given_status(Accepted)
        .when(cancel(BUYER))
        .then_expect_events(vec![cancelled(Party::Buyer, true)]);
}

#[test]
fn the_seller_cancels_an_accepted_request_after_acceptance() {
    given_status(Accepted)
        .when(cancel(SELLER))
        .then_expect_events(vec![cancelled(Party::Seller, true)]);
}

#[test]
fn the_seller_cannot_cancel_a_request_that_is_still_pending() {
    given_status(Requested)
        .when(cancel(SELLER))
        .then_expect_error(invalid("cancel", Requested));
}

#[test]
fn cancelling_a_request_twice_records_nothing_the_second_time() {
    for party in [BUYER, SELLER] {
        given_status(Cancelled)
            .when(cancel(party))
            .then_expect_events(vec![]);
    }
}

#[test]
fn a_stranger_cancelling_is_told_there_is_no_such_request() {
    given_status(Accepted)
        .when(cancel(STRANGER))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn cancelling_an_unknown_request_is_refused() {
    given(vec![])
        .when(cancel(BUYER))
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn cancelling_a_finished_request_is_an_invalid_transition_for_either_party() {
    for status in [Rejected, Completed, Expired, PaymentFailed] {
        for party in [BUYER, SELLER] {
            given_status(status)
                .when(cancel(party))
                .then_expect_error(invalid("cancel", status));
        }
    }
}

// Expire.

#[test]
fn an_unanswered_request_expires() {
    given_due(history(Requested))
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![expired()]);
}

#[test]
fn expiring_a_request_twice_records_nothing_the_second_time() {
    given_status(Expired)
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![]);
}

#[test]
fn expiring_an_unknown_request_is_refused() {
    given(vec![])
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_error(PurchaseRequestError::NotFound);
}

#[test]
fn expiring_from_any_status_but_requested_is_an_invalid_transition() {
    for status in [Accepted, Rejected, Completed, Cancelled, PaymentFailed] {
        given_status(status)
            .when(PurchaseRequestCommand::ExpireRequest)
            .then_expect_error(invalid("expire", status));
    }
}

// Across commands.

#[test]
fn every_event_carries_the_trade() {
    let events = [
        requested(),
        payment_failed(),
        accepted(),
        rejected(Actor::System, None),
        completed(true),
        cancelled(Party::Seller, true),
        expired(),
        abandoned(),
    ];
    for event in events {
        assert_eq!(event.trade(), &trade(), "{event:?}");
    }
}

#[test]
fn only_requested_and_accepted_requests_are_open() {
    let open: Vec<_> = EXISTING
        .into_iter()
        .filter(RequestStatus::is_open)
        .collect();
    assert_eq!(open, [Requested, Accepted]);
}

#[test]
fn checking_a_command_applies_the_rules_of_handle_without_recording_anything() {
    let request = current(Requested);
    let services = services(now(), Deadlines::default());
    assert_eq!(request.check(&accept(seller()), &services), Ok(()));
    assert_eq!(
        request.check(&accept(buyer()), &services),
        Err(PurchaseRequestError::NotYourListing)
    );
    assert_eq!(
        request.check(&complete(buyer()), &services),
        Err(invalid("complete", Requested))
    );
    assert_eq!(request, current(Requested));
}

#[test]
fn every_refusal_has_a_class_and_a_stable_code() {
    let class = |error: PurchaseRequestError| (error.kind(), error.code());
    assert_eq!(
        class(PurchaseRequestError::NotFound),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(
        class(PurchaseRequestError::AlreadyExists),
        (ErrorKind::Conflict, "request_already_exists")
    );
    assert_eq!(
        class(PurchaseRequestError::OwnListing),
        (ErrorKind::Invalid, "own_listing")
    );
    assert_eq!(
        class(PurchaseRequestError::NotYourListing),
        (ErrorKind::Forbidden, "not_your_listing")
    );
    assert_eq!(
        class(PurchaseRequestError::NotYourRequest),
        (ErrorKind::Forbidden, "not_your_request")
    );
    assert_eq!(
        class(invalid("accept", Completed)),
        (ErrorKind::Conflict, "invalid_transition")
    );
    assert_eq!(
        class(PurchaseRequestError::DeadlinePassed {
            action: "accept",
            deadline: now()
        }),
        (ErrorKind::Conflict, "deadline_passed")
    );
    assert_eq!(
        class(PurchaseRequestError::NotDue {
            action: "expire",
            due: now()
        }),
        (ErrorKind::Conflict, "not_due")
    );
}

#[test]
fn no_refusal_of_a_request_says_when_to_retry() {
    let errors = [
        PurchaseRequestError::NotFound,
        PurchaseRequestError::AlreadyExists,
        PurchaseRequestError::OwnListing,
        PurchaseRequestError::NotYourListing,
        PurchaseRequestError::NotYourRequest,
        invalid("accept", Completed),
    ];
    for error in errors {
        assert_eq!(error.retry_after_secs(), None, "{error:?}");
    }
}

#[test]
fn checking_a_creation_applies_the_rules_of_its_way() {
    let request = replayed(vec![abandoned()]);
    let services = services(now(), Deadlines::default());
    assert_eq!(request.check(&abandon(PAYMENT), &services), Ok(()));
    assert_eq!(
        request.check(&place(PAYMENT), &services),
        Err(PurchaseRequestError::AlreadyExists)
    );
    assert_eq!(request, replayed(vec![abandoned()]));
}

// Deadlines, kept by the request itself.

/// Just after the request deadline (48 h after `now()`, when the history happened).
fn after_request_deadline() -> DateTime<Utc> {
    now() + chrono::Duration::hours(48)
}

/// Just after the completion deadline (7 days after acceptance).
fn after_completion_deadline() -> DateTime<Utc> {
    now() + chrono::Duration::days(7)
}

fn late(action: &'static str, deadline: DateTime<Utc>) -> PurchaseRequestError {
    PurchaseRequestError::DeadlinePassed { action, deadline }
}

#[test]
fn a_pending_request_past_its_deadline_can_only_expire_whatever_the_timer_did() {
    let at = after_request_deadline();
    let refused = [
        (accept(seller()), "accept"),
        (accept(Actor::System), "accept"),
        (reject(seller(), None), "reject"),
        (reject(Actor::System, Some("listing_reserved")), "reject"),
        (cancel(BUYER), "cancel"),
    ];
    for (command, action) in refused {
        given_at(history(Requested), at, Deadlines::default())
            .when(command)
            .then_expect_error(late(action, at));
    }
    given_at(history(Requested), at, Deadlines::default())
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_events(vec![PurchaseRequestEvent::PurchaseRequestExpired {
            trade: trade(),
            expired_at: at,
        }]);
}

#[test]
fn an_accepted_request_past_its_deadline_can_only_complete() {
    let at = after_completion_deadline();
    for party in [BUYER, SELLER] {
        given_at(history(Accepted), at, Deadlines::default())
            .when(cancel(party))
            .then_expect_error(late("cancel", at));
    }
    let completed_at = |automatic| PurchaseRequestEvent::PurchaseRequestCompleted {
        trade: trade(),
        automatic,
        completed_at: at,
    };
    given_at(history(Accepted), at, Deadlines::default())
        .when(complete(Actor::System))
        .then_expect_events(vec![completed_at(true)]);
    // The buyer completing late sends the money the same way.
    given_at(history(Accepted), at, Deadlines::default())
        .when(complete(buyer()))
        .then_expect_events(vec![completed_at(false)]);
}

#[test]
fn an_expiry_or_automatic_completion_before_its_deadline_is_refused_as_not_due() {
    let early = after_request_deadline() - chrono::Duration::seconds(1);
    given_at(history(Requested), early, Deadlines::default())
        .when(PurchaseRequestCommand::ExpireRequest)
        .then_expect_error(PurchaseRequestError::NotDue {
            action: "expire",
            due: after_request_deadline(),
        });
    let early = after_completion_deadline() - chrono::Duration::seconds(1);
    given_at(history(Accepted), early, Deadlines::default())
        .when(complete(Actor::System))
        .then_expect_error(PurchaseRequestError::NotDue {
            action: "complete",
            due: after_completion_deadline(),
        });
}

#[test]
fn a_request_reports_the_deadline_of_the_phase_it_is_in() {
    let deadlines = Deadlines::default();
    assert_eq!(
        current(Requested).deadline(&deadlines),
        Some(after_request_deadline())
    );
    assert_eq!(
        current(Accepted).deadline(&deadlines),
        Some(after_completion_deadline())
    );
    for status in [Rejected, Completed, Cancelled, Expired, PaymentFailed] {
        assert_eq!(current(status).deadline(&deadlines), None, "{status:?}");
    }
}

#[test]
fn a_request_from_a_snapshot_written_before_deadlines_were_kept_is_left_to_the_timer() {
    let mut stored = serde_json::to_value(current(Requested)).unwrap_or_default();
    if let Some(fields) = stored.as_object_mut() {
        fields.remove("requested_at");
        fields.remove("accepted_at");
    }
    let request: PurchaseRequest = serde_json::from_value(stored).unwrap_or_default();
    assert_eq!(request.status(), Requested);
    assert_eq!(request.deadline(&Deadlines::default()), None);
    let services = services(after_request_deadline(), Deadlines::default());
    assert_eq!(request.check(&accept(seller()), &services), Ok(()));
}
