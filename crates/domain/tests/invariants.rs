//! Property tests of the three aggregates through the crate's public API: random sequences
//! of commands from the seller, two buyers, a stranger and the system, with the invariants
//! each aggregate promises checked after every step.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand, ListingServices, ListingStatus};
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Payment, PaymentCommand, PaymentEvent,
    PaymentGateway, PaymentServices, PaymentStatus, Receipt, TransferOrder,
};
use carrot_domain::purchase_request::{
    Deadlines, PurchaseRequest, PurchaseRequestCommand, PurchaseRequestError, PurchaseRequestEvent,
    PurchaseRequestServices, RequestStatus,
};
use carrot_domain::trade::Party;
use carrot_domain::{
    Actor, FixedClock, ListingId, Money, PaymentId, Price, RequestId, Trade, UserId,
};
use chrono::{TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use uuid::Uuid;

const LISTING: ListingId = ListingId::from_uuid(Uuid::from_u128(0x1157));
const OTHER_LISTING: ListingId = ListingId::from_uuid(Uuid::from_u128(0x1158));
const REQUEST: RequestId = RequestId::from_uuid(Uuid::from_u128(0x4e01));
const SELLER: UserId = UserId::from_uuid(Uuid::from_u128(0x5e11));
const BUYER_A: UserId = UserId::from_uuid(Uuid::from_u128(0xb0b));
const BUYER_B: UserId = UserId::from_uuid(Uuid::from_u128(0xb0c));
const STRANGER: UserId = UserId::from_uuid(Uuid::from_u128(0x0bad));
const PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a1));
const OTHER_PAYMENT: PaymentId = PaymentId::from_uuid(Uuid::from_u128(0x9a2));

/// The longest command sequence tried.
const STEPS: usize = 30;

fn clock() -> Arc<FixedClock> {
    let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single();
    Arc::new(FixedClock::at(at.unwrap_or_default()))
}

// The shared driver.

/// One handled command: the state before and after it, and what it produced.
struct Step<'a, A: Aggregate> {
    command: &'a A::Command,
    before: &'a A,
    after: &'a A,
    events: &'a [A::Event],
    refused: bool,
}

/// Hands `commands` one by one to a fresh aggregate, as cqrs-es does, and checks after
/// every step what holds for every aggregate (a refusal or a no-op changes nothing; the
/// events so far replay to the live state), then the aggregate's own `invariants`.
fn drive<A>(
    commands: &[A::Command],
    services: &A::Services,
    mut invariants: impl FnMut(Step<'_, A>) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError>
where
    A: Aggregate + Clone + PartialEq + Debug,
    A::Command: Clone + Debug,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut live = A::default();
    let mut history: Vec<A::Event> = Vec::new();
    for command in commands {
        let before = live.clone();
        let sink = EventSink::default();
        let outcome = runtime.block_on(live.handle(command.clone(), services, &sink));
        let events = runtime.block_on(sink.collect());
        if outcome.is_err() {
            prop_assert!(
                events.is_empty(),
                "{command:?} was refused yet emitted {events:?}"
            );
        }
        if events.is_empty() {
            prop_assert_eq!(
                &live,
                &before,
                "{:?} emitted nothing yet changed the state",
                command
            );
        }
        history.extend(events.iter().cloned());
        let mut replayed = A::default();
        history
            .iter()
            .cloned()
            .for_each(|event| replayed.apply(event));
        prop_assert_eq!(
            &replayed,
            &live,
            "replaying {:?} differs from the live state",
            history
        );
        invariants(Step {
            command,
            before: &before,
            after: &live,
            events: &events,
            refused: outcome.is_err(),
        })?;
    }
    Ok(())
}

fn user() -> impl Strategy<Value = UserId> {
    select(vec![SELLER, BUYER_A, BUYER_B, STRANGER])
}

fn price() -> impl Strategy<Value = Price> {
    select(vec![1, 9_000, 15_000]).prop_map(|krw| Price::parse(krw).unwrap())
}

// Listing.

fn register_listing() -> impl Strategy<Value = ListingCommand> {
    let title = select(vec!["Desk lamp", "Bike"]).prop_map(|t| ListingTitle::parse(t).unwrap());
    let description = select(vec!["", "Warm light"]).prop_map(|d| Description::parse(d).unwrap());
    (
        select(vec![LISTING, LISTING, OTHER_LISTING]),
        select(vec![SELLER, SELLER, STRANGER]),
        title,
        description,
        price(),
    )
        .prop_map(|(listing_id, seller_id, title, description, price)| {
            ListingCommand::RegisterListing {
                listing_id,
                seller_id,
                title,
                description,
                price,
                category: None,
            }
        })
}

fn listing_command() -> impl Strategy<Value = ListingCommand> {
    let request = || select(vec![REQUEST, RequestId::from_uuid(Uuid::from_u128(2))]);
    let edit = (
        user(),
        option::of(select(vec!["Desk lamp", "Lamp"])),
        option::of(select(vec!["", "Warm light"])),
        option::of(price()),
    )
        .prop_map(
            |(actor, title, description, price)| ListingCommand::EditListing {
                actor,
                title: title.map(|t| ListingTitle::parse(t).unwrap()),
                description: description.map(|d| Description::parse(d).unwrap()),
                price,
            },
        );
    prop_oneof![
        1 => register_listing(),
        3 => edit,
        1 => user().prop_map(|actor| ListingCommand::WithdrawListing { actor }),
        3 => request().prop_map(|request_id| ListingCommand::ReserveListing { request_id }),
        2 => request().prop_map(|request_id| ListingCommand::ReleaseListing { request_id }),
        2 => request().prop_map(|request_id| ListingCommand::MarkListingSold { request_id }),
    ]
}

fn listing_invariants(step: Step<'_, Listing>) -> Result<(), TestCaseError> {
    use ListingStatus::*;
    let (before, after) = (step.before.status(), step.after.status());
    if matches!(before, Sold(_) | Withdrawn) {
        prop_assert_eq!(after, before, "a sold or withdrawn listing changed");
    }
    if before != Unregistered {
        prop_assert_eq!(step.after.seller_id(), step.before.seller_id());
    }
    if after != before {
        match after {
            Reserved(request) => {
                prop_assert_eq!(before, Available, "reserved from {:?}", before);
                let reserve = ListingCommand::ReserveListing {
                    request_id: request,
                };
                prop_assert_eq!(step.command, &reserve);
            }
            Sold(request) => prop_assert_eq!(before, Reserved(request), "sold to another"),
            Available => prop_assert!(matches!(before, Unregistered | Reserved(_))),
            Withdrawn => prop_assert_eq!(before, Available),
            Unregistered => prop_assert!(false, "a listing was unregistered"),
        }
    }
    if let ListingCommand::EditListing { actor, .. } | ListingCommand::WithdrawListing { actor } =
        step.command
    {
        if !step.events.is_empty() {
            prop_assert_eq!(*actor, step.before.seller_id(), "not the seller");
            prop_assert_eq!(before, Available);
        }
    }
    Ok(())
}

// Purchase request.

fn trade_bought_by(buyer_id: UserId) -> Trade {
    Trade {
        request_id: REQUEST,
        listing_id: LISTING,
        buyer_id,
        seller_id: SELLER,
    }
}

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
fn open_request() -> impl Strategy<Value = PurchaseRequestCommand> {
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

fn request_command() -> impl Strategy<Value = PurchaseRequestCommand> {
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
struct RequestLedger(Option<(Way, PaymentId)>);

impl RequestLedger {
    /// Checks the creation rules, then the request's other invariants.
    fn check(
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

// Payment.

/// A call the gateway received: `(operation, idempotency key, (party, amount) of a call
/// that moves money, succeeded)`. A resolve moves none, so names neither.
type Call = (&'static str, String, Option<(UserId, Money)>, bool);

/// What the gateway answers to a capture, refund or payout: a receipt, or why not.
type Reply = Result<Receipt, GatewayError>;

/// What the gateway answers when asked what became of a capture.
type Resolution = Result<CaptureStatus, GatewayError>;

/// A gateway answering from two generated scripts, one shared by the operations that move
/// money (a receipt once it runs out), one for the resolves (void once it runs out),
/// remembering each call and whether it succeeded.
struct ScriptedGateway {
    script: Mutex<VecDeque<Reply>>,
    resolutions: Mutex<VecDeque<Resolution>>,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedGateway {
    fn call(&self, op: &'static str, key: String, party: UserId, amount: Money) -> Reply {
        let reply = self.script.lock().unwrap().pop_front();
        let reply = reply.unwrap_or_else(|| Ok(receipt()));
        let call = (op, key, Some((party, amount)), reply.is_ok());
        self.calls.lock().unwrap().push(call);
        reply
    }
}

#[async_trait]
impl PaymentGateway for ScriptedGateway {
    async fn capture(&self, o: CaptureOrder) -> Reply {
        self.call("capture", o.idempotency_key, o.buyer_id, o.amount)
    }

    async fn refund(&self, o: TransferOrder) -> Reply {
        self.call("refund", o.idempotency_key, o.recipient, o.amount)
    }

    async fn payout(&self, o: TransferOrder) -> Reply {
        self.call("payout", o.idempotency_key, o.recipient, o.amount)
    }

    async fn resolve_capture(&self, key: &str) -> Resolution {
        let resolution = self.resolutions.lock().unwrap().pop_front();
        let resolution = resolution.unwrap_or(Ok(CaptureStatus::Voided));
        let call = ("resolve", key.to_owned(), None, resolution.is_ok());
        self.calls.lock().unwrap().push(call);
        resolution
    }
}

fn receipt() -> Receipt {
    Receipt {
        reference: "gw-receipt".into(),
    }
}

/// The gateway's failures to answer at all: down, silent, or its breaker open.
fn unanswered() -> impl Strategy<Value = GatewayError> {
    prop_oneof![
        1 => Just(GatewayError::Unavailable("down".into())),
        2 => Just(GatewayError::Timeout),
        1 => select(vec![0, 1, 30]).prop_map(|secs| GatewayError::CircuitOpen {
            retry_after: Duration::from_secs(secs),
        }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => Just(Ok(receipt())),
        1 => Just(Err(GatewayError::Declined("insufficient funds".into()))),
        4 => unanswered().prop_map(Err),
    ]
}

fn resolution() -> impl Strategy<Value = Resolution> {
    prop_oneof![
        2 => Just(Ok(CaptureStatus::Captured(receipt()))),
        1 => Just(Ok(CaptureStatus::Declined("insufficient funds".into()))),
        1 => Just(Ok(CaptureStatus::Voided)),
        2 => unanswered().prop_map(Err),
    ]
}

fn payment_command() -> impl Strategy<Value = PaymentCommand> {
    let start = (
        select(vec![PAYMENT, PAYMENT, PAYMENT, OTHER_PAYMENT]),
        select(vec![10_000, 10_000, 15_000]),
    )
        .prop_map(|(payment_id, krw)| PaymentCommand::StartCapture {
            payment_id,
            trade: trade_bought_by(BUYER_A),
            amount: Money::krw(krw),
        });
    let capture = (
        select(vec![PAYMENT, PAYMENT, PAYMENT, OTHER_PAYMENT]),
        any::<bool>(),
    )
        .prop_map(
            |(payment_id, first_attempt)| PaymentCommand::CapturePayment {
                payment_id,
                first_attempt,
            },
        );
    prop_oneof![
        2 => start,
        3 => capture,
        2 => Just(PaymentCommand::RefundPayment),
        2 => Just(PaymentCommand::PayOutPayment),
        2 => Just(PaymentCommand::ReconcileCapture),
    ]
}

/// What a payment's run has seen so far, beyond its state.
#[derive(Default)]
struct Ledger {
    /// The id of the recorded payment (the first event's).
    id: Option<PaymentId>,
    /// Gateway calls already checked.
    calls_seen: usize,
    /// Successful refund or payout calls.
    money_moves: usize,
    /// Captures recorded.
    captures: usize,
}

impl Ledger {
    fn check(
        &mut self,
        step: Step<'_, Payment>,
        gateway: &ScriptedGateway,
    ) -> Result<(), TestCaseError> {
        use PaymentStatus::*;
        let (before, after) = (step.before.status(), step.after.status());
        if matches!(before, Refunded | PaidOut) {
            prop_assert_eq!(after, before, "refunded or paid out is final");
        }
        if before != None {
            // The gateway knows the payment by its id: the order recorded under it, the
            // amount and the trade, must never change, captured or not.
            prop_assert_eq!(step.after.amount(), step.before.amount(), "amount changed");
            prop_assert_eq!(step.after.trade(), step.before.trade(), "trade changed");
        }
        if after != before {
            // Nothing is decided before the start is recorded, and only the first call's
            // refusal may abort (it proves nothing moved).
            let allowed: &[PaymentStatus] = match after {
                Started => &[None, Aborted],
                Captured | Failed => &[Started, Unknown],
                Unknown => &[Started],
                Aborted => &[Started],
                Refunded | PaidOut => &[Captured],
                None => &[],
            };
            prop_assert!(allowed.contains(&before), "{:?} -> {:?}", before, after);
        }
        for event in step.events {
            if let PaymentEvent::PaymentCaptured { .. } = event {
                self.captures += 1;
            }
            if let PaymentEvent::PaymentCaptureStarted { payment_id, .. } = event {
                self.id.get_or_insert(*payment_id);
            }
        }
        prop_assert!(self.captures <= 1, "captured twice");
        self.check_calls(&step, gateway)
    }

    fn check_calls(
        &mut self,
        step: &Step<'_, Payment>,
        gateway: &ScriptedGateway,
    ) -> Result<(), TestCaseError> {
        let calls = gateway.calls.lock().unwrap().clone();
        let new = &calls[self.calls_seen..];
        self.calls_seen = calls.len();
        prop_assert!(new.len() <= 1, "one command, several calls: {:?}", new);
        if *step.command == PaymentCommand::ReconcileCapture {
            self.check_reconcile(step, new)?;
        }
        let Some((op, key, order, succeeded)) = new.first() else {
            return Ok(());
        };
        let trade = step.before.trade();
        match (step.command, *op) {
            (
                PaymentCommand::CapturePayment {
                    payment_id,
                    first_attempt,
                },
                "capture",
            ) => {
                prop_assert_eq!(key, &format!("capture:{payment_id}"));
                // Only a recorded start is sent, always the order it recorded.
                let before = step.before.status();
                prop_assert!(
                    matches!(before, PaymentStatus::Started | PaymentStatus::Unknown),
                    "capture called when {:?}",
                    before
                );
                let expected = (step.before.trade().buyer_id, step.before.amount());
                prop_assert_eq!(*order, Some(expected));
                if step.after.status() == PaymentStatus::Aborted {
                    prop_assert!(
                        *first_attempt && before == PaymentStatus::Started && !*succeeded,
                        "aborted on a call that proves nothing"
                    );
                }
            }
            (PaymentCommand::RefundPayment, "refund")
            | (PaymentCommand::PayOutPayment, "payout") => {
                let id = self.id.unwrap_or_default();
                prop_assert_eq!(key, &format!("{op}:{id}"));
                let recipient = if *op == "refund" {
                    trade.buyer_id
                } else {
                    trade.seller_id
                };
                prop_assert_eq!(*order, Some((recipient, step.before.amount())));
                prop_assert_eq!(step.before.status(), PaymentStatus::Captured);
                if *succeeded {
                    self.money_moves += 1;
                    prop_assert_eq!(step.events.len(), 1, "money moved unrecorded");
                } else if step.refused {
                    prop_assert!(step.events.is_empty());
                } else {
                    // A decline is final for its key: recorded, the money still held.
                    prop_assert!(
                        matches!(step.events, [PaymentEvent::PaymentTransferDeclined { .. }]),
                        "a failed transfer was neither refused nor recorded declined"
                    );
                    prop_assert_eq!(step.after.status(), PaymentStatus::Captured);
                }
            }
            (PaymentCommand::ReconcileCapture, "resolve") => {}
            (command, op) => prop_assert!(false, "{:?} called {}", command, op),
        }
        // Refunded and paid out exclude each other: money leaves escrow once, whichever way.
        prop_assert!(self.money_moves <= 1, "money moved twice");
        Ok(())
    }

    /// A reconcile never charges: it only asks, by the capture's key, about an unknown
    /// capture, and records what the gateway says, or nothing when it cannot say.
    fn check_reconcile(
        &self,
        step: &Step<'_, Payment>,
        calls: &[Call],
    ) -> Result<(), TestCaseError> {
        use PaymentStatus::*;
        let before = step.before.status();
        prop_assert!(
            calls.iter().all(|(op, ..)| *op == "resolve"),
            "a reconcile charged or moved money: {:?}",
            calls
        );
        match before {
            None => prop_assert!(step.refused, "reconciled a payment never attempted"),
            Started | Unknown => {
                prop_assert_eq!(
                    calls.len(),
                    1,
                    "an unknown capture reconciled without asking"
                );
                let (_, key, _, answered) = &calls[0];
                prop_assert_eq!(key, &format!("capture:{}", step.before.id()));
                prop_assert_eq!(*answered, !step.refused);
                prop_assert_eq!(step.events.len(), usize::from(*answered));
            }
            _ => {
                prop_assert!(
                    calls.is_empty(),
                    "asked the gateway about a settled payment"
                );
                prop_assert!(
                    !step.refused && step.events.is_empty(),
                    "settled, yet {:?}",
                    before
                );
            }
        }
        Ok(())
    }
}

// The properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_listing_keeps_its_invariants_whatever_is_asked_of_it(
        first in register_listing(),
        rest in vec(listing_command(), 0..STEPS),
    ) {
        let commands: Vec<_> = std::iter::once(first).chain(rest).collect();
        let services = ListingServices { clock: clock() };
        drive(&commands, &services, listing_invariants)?;
    }

    #[test]
    fn a_purchase_request_keeps_its_invariants_whatever_is_asked_of_it(
        first in option::weighted(0.9, open_request()),
        rest in vec(request_command(), 0..STEPS),
        due in any::<bool>(),
    ) {
        let commands: Vec<_> = first.into_iter().chain(rest).collect();
        // Half the runs have every deadline come the moment it starts.
        let deadlines = if due {
            Deadlines {
                request_ttl: chrono::Duration::zero(),
                completion_ttl: chrono::Duration::zero(),
            }
        } else {
            Deadlines::default()
        };
        let services = PurchaseRequestServices { clock: clock(), deadlines };
        let mut ledger = RequestLedger::default();
        drive(&commands, &services, |step| ledger.check(step, &services))?;
    }

    #[test]
    fn a_payment_keeps_its_invariants_whatever_the_gateway_answers(
        replies in vec(reply(), 0..STEPS),
        resolutions in vec(resolution(), 0..STEPS),
        commands in vec(payment_command(), 1..STEPS),
    ) {
        let gateway = Arc::new(ScriptedGateway {
            script: Mutex::new(replies.into()),
            resolutions: Mutex::new(resolutions.into()),
            calls: Mutex::default(),
        });
        let services = PaymentServices { gateway: gateway.clone(), clock: clock() };
        let mut ledger = Ledger::default();
        drive(&commands, &services, |step| ledger.check(step, &gateway))?;
    }
}
