//! What holds across commands: the trade in every event, open statuses, checks, errors.

use super::*;
use crate::{DomainError, ErrorKind};

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
