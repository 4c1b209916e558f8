//! Property tests of the three aggregates through the crate's public API: random sequences
//! of commands from the seller, two buyers, a stranger and the system, with the invariants
//! each aggregate promises checked after every step.

mod listing;
mod payment;
mod purchase_request;

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use carrot_domain::listing::ListingServices;
use carrot_domain::payment::PaymentServices;
use carrot_domain::purchase_request::{Deadlines, PurchaseRequestServices};
use carrot_domain::{FixedClock, ListingId, PaymentId, Price, RequestId, Trade, UserId};
use chrono::{TimeZone, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use uuid::Uuid;

use listing::{listing_command, listing_invariants, register_listing};
use payment::{payment_command, reply, resolution, Ledger, ScriptedGateway};
use purchase_request::{open_request, request_command, RequestLedger};

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

fn trade_bought_by(buyer_id: UserId) -> Trade {
    Trade {
        request_id: REQUEST,
        listing_id: LISTING,
        buyer_id,
        seller_id: SELLER,
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
