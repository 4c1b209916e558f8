//! The purchase request's commands as strategies, its creation rules and its invariants.

use carrot_domain::purchase_request::{
    PurchaseRequest, PurchaseRequestCommand, PurchaseRequestError, PurchaseRequestEvent,
    RequestStatus,
};
use carrot_domain::trade::Party;
use carrot_domain::Actor;

use super::*;

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![4 => user().prop_map(Actor::User), 1 => Just(Actor::System)]
}

/// The three ways a request comes to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// Paid: `PlaceRequest`.
    Placed,
    /// Declined: `RecordPaymentFailure`.
    PaymentFailed,
    /// Paid but never recorded, then given up by the saga: `AbandonRequest`.
    Abandoned,
}

/// How `command` would create a request, with which payment and trade; `None` for the
/// commands on an existing request.
fn creation(command: &PurchaseRequestCommand) -> Option<(Way, PaymentId, Trade)> {
    use PurchaseRequestCommand as C;
    match command {
        C::PlaceRequest {
            trade, payment_id, ..
        } => Some((Way::Placed, *payment_id, *trade)),
        C::RecordPaymentFailure {
            trade, payment_id, ..
        } => Some((Way::PaymentFailed, *payment_id, *trade)),
        C::AbandonRequest {
            trade, payment_id, ..
        } => Some((Way::Abandoned, *payment_id, *trade)),
        _ => None,
    }
}

/// A request's opening: paid, declined or abandoned, by either buyer or by the seller
/// themself.
pub(crate) fn open_request() -> impl Strategy<Value = PurchaseRequestCommand> {
    use PurchaseRequestCommand as C;
    let opening = || {
        (
            select(vec![BUYER_A, BUYER_A, BUYER_B, SELLER]).prop_map(trade_bought_by),
            price(),
            select(vec![PAYMENT, PAYMENT, OTHER_PAYMENT]),
        )
    };
    prop_oneof![
        3 => opening().prop_map(|(trade, price, payment_id)| C::PlaceRequest {
            trade,
            price,
            payment_id,
        }),
        1 => opening().prop_map(|(trade, price, payment_id)| C::RecordPaymentFailure {
            trade,
            price,
            payment_id,
            reason: "declined".into(),
        }),
        1 => opening().prop_map(|(trade, price, payment_id)| C::AbandonRequest {
            trade,
            price,
            payment_id,
        }),
    ]
}

pub(crate) fn request_command() -> impl Strategy<Value = PurchaseRequestCommand> {
    use PurchaseRequestCommand as C;
    prop_oneof![
        2 => open_request(),
        3 => actor().prop_map(|actor| C::AcceptRequest { actor }),
        2 => (actor(), option::of(Just("sold elsewhere".to_owned())))
            .prop_map(|(actor, reason)| C::RejectRequest { actor, reason }),
        3 => actor().prop_map(|actor| C::CompleteRequest { actor }),
        2 => user().prop_map(|actor| C::CancelRequest { actor }),
        1 => Just(C::ExpireRequest),
    ]
}

/// What a request's run has seen so far, beyond its state: how the request was created
/// (its way and payment), once it was.
#[derive(Default)]
pub(crate) struct RequestLedger(Option<(Way, PaymentId)>);

impl RequestLedger {
    /// Checks the creation rules, then the request's other invariants.
    pub(crate) fn check(
        &mut self,
        step: Step<'_, PurchaseRequest>,
        services: &PurchaseRequestServices,
    ) -> Result<(), TestCaseError> {
        let verdict = step.before.check(step.command, services);
        // Past its deadline, a request only goes where the deadline sends it.
        let now = services.clock.now();
        if step
            .before
            .deadline(&services.deadlines)
            .is_some_and(|deadline| now >= deadline)
            && step.after.status() != step.before.status()
        {
            let (before, after) = (step.before.status(), step.after.status());
            prop_assert!(
                matches!(
                    (before, after),
                    (RequestStatus::Requested, RequestStatus::Expired)
                        | (RequestStatus::Accepted, RequestStatus::Completed)
                ),
                "{:?} took a request past its deadline from {:?} to {:?}",
                step.command,
                before,
                after
            );
        }
        prop_assert_eq!(
            verdict.is_ok(),
            !step.refused,
            "check disagrees with handle"
        );
        if let Some((way, payment_id, trade)) = creation(step.command) {
            // The same creation again is a retry, already done; any other is refused.
            let expected = match self.0 {
                None if trade.buyer_id == trade.seller_id => Err(PurchaseRequestError::OwnListing),
                Some(first) if first != (way, payment_id) => {
                    Err(PurchaseRequestError::AlreadyExists)
                }
                _ => Ok(()),
            };
            prop_assert_eq!(&verdict, &expected, "{:?} after {:?}", step.command, self.0);
            prop_assert_eq!(
                step.events.len(),
                usize::from(self.0.is_none() && verdict.is_ok())
            );
        }
        if let Some((Way::Abandoned, _)) = self.0 {
            // Abandoned is final: only the abandonment again, or expiring, is accepted.
            let retry = creation(step.command).map(|(way, id, _)| (way, id)) == self.0;
            let expire = *step.command == PurchaseRequestCommand::ExpireRequest;
            prop_assert_eq!(verdict.is_ok(), retry || expire, "{:?}", step.command);
            prop_assert!(step.events.is_empty(), "an abandoned request changed");
            prop_assert_eq!(step.after.status(), RequestStatus::Expired);
        }
        if self.0.is_none() && !step.events.is_empty() {
            self.0 = creation(step.command).map(|(way, id, _)| (way, id));
            prop_assert!(self.0.is_some(), "{:?} created a request", step.command);
        }
        request_invariants(step)
    }
}

fn request_invariants(step: Step<'_, PurchaseRequest>) -> Result<(), TestCaseError> {
    use PurchaseRequestCommand as C;
    use PurchaseRequestEvent as E;
    use RequestStatus::*;
    let (before, after) = (step.before.status(), step.after.status());
    let trade = step.after.trade();
    if matches!(
        before,
        Rejected | Completed | Cancelled | Expired | PaymentFailed
    ) {
        prop_assert_eq!(after, before, "a finished request changed");
    }
    if before != None {
        prop_assert_eq!(trade, step.before.trade());
        prop_assert_eq!(step.after.payment_id(), step.before.payment_id());
        prop_assert_eq!(step.after.price(), step.before.price());
    }
    if after != before {
        match (after, step.command) {
            (Requested, C::PlaceRequest { payment_id, .. })
            | (PaymentFailed, C::RecordPaymentFailure { payment_id, .. })
            | (Expired, C::AbandonRequest { payment_id, .. }) => {
                prop_assert_eq!(before, None);
                prop_assert_eq!(step.after.payment_id(), Some(*payment_id));
                prop_assert_ne!(trade.buyer_id, trade.seller_id, "bought own listing");
            }
            (Accepted, C::AcceptRequest { .. })
            | (Rejected, C::RejectRequest { .. })
            | (Expired, C::ExpireRequest) => prop_assert_eq!(before, Requested),
            (Completed, C::CompleteRequest { .. }) => prop_assert_eq!(before, Accepted),
            (Cancelled, C::CancelRequest { .. }) => prop_assert!(before.is_open()),
            (status, command) => prop_assert!(false, "{:?} made it {:?}", command, status),
        }
    }
    let (seller, buyer) = (Actor::User(trade.seller_id), Actor::User(trade.buyer_id));
    for event in step.events {
        prop_assert_eq!(event.trade(), &trade, "an event without its trade");
        match (event, step.command) {
            (E::PurchaseRequestAccepted { .. }, C::AcceptRequest { actor }) => {
                prop_assert!(*actor == seller || *actor == Actor::System, "{actor:?}");
            }
            (E::PurchaseRequestRejected { by, .. }, C::RejectRequest { actor, .. }) => {
                prop_assert!(*actor == seller || *actor == Actor::System, "{actor:?}");
                prop_assert_eq!(by, actor);
            }
            (E::PurchaseRequestCompleted { automatic, .. }, C::CompleteRequest { actor }) => {
                prop_assert!(*actor == buyer || *actor == Actor::System, "{actor:?}");
                prop_assert_eq!(*automatic, *actor == Actor::System);
            }
            (
                E::PurchaseRequestCancelled {
                    by,
                    after_acceptance,
                    ..
                },
                C::CancelRequest { actor },
            ) => {
                prop_assert_eq!(Some(*by), trade.party(*actor));
                prop_assert_eq!(*after_acceptance, before == Accepted);
                if *by == Party::Seller {
                    prop_assert_eq!(before, Accepted, "the seller cancelled a pending request");
                }
            }
            _ => {}
        }
    }
    Ok(())
}
