//! The deadlines the request keeps itself: what is refused or due once they pass.

use super::*;

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
