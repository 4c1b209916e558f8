//! Given/when/then tests of the dead-letter aggregate, and its one invariant over any
//! sequence of decisions.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use proptest::prelude::*;
use uuid::Uuid;

use super::*;
use crate::{FixedClock, UserId};

const OPERATOR: UserId = UserId::from_uuid(Uuid::from_u128(0x0b5e));
const COMMAND: &str = "accept:00000000-0000-0000-0000-00000000cafe";

fn trade() -> RequestId {
    RequestId::from_uuid(Uuid::from_u128(0xcafe))
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn given(history: Vec<DeadLetterEvent>) -> cqrs_es::test::AggregateTestExecutor<DeadLetter> {
    TestFramework::<DeadLetter>::with(DeadLetterServices {
        clock: Arc::new(FixedClock::at(now())),
    })
    .given(history)
}

fn retry(reason: Option<&str>) -> DeadLetterCommand {
    DeadLetterCommand::Retry {
        command_id: COMMAND.into(),
        request_id: trade(),
        reason: reason.map(str::to_owned),
        by: Actor::User(OPERATOR),
    }
}

fn discard(reason: &str) -> DeadLetterCommand {
    DeadLetterCommand::Discard {
        command_id: COMMAND.into(),
        request_id: trade(),
        reason: reason.into(),
        by: Actor::User(OPERATOR),
    }
}

fn retried(reason: Option<&str>) -> DeadLetterEvent {
    DeadLetterEvent::DeadLetterRetried {
        command_id: COMMAND.into(),
        request_id: trade(),
        reason: reason.map(str::to_owned),
        by: Actor::User(OPERATOR),
        retried_at: now(),
    }
}

fn discarded(reason: &str) -> DeadLetterEvent {
    DeadLetterEvent::DeadLetterDiscarded {
        command_id: COMMAND.into(),
        request_id: trade(),
        reason: reason.into(),
        by: Actor::User(OPERATOR),
        discarded_at: now(),
    }
}

#[test]
fn an_operator_puts_a_dead_letter_back_in_line_with_or_without_a_reason() {
    given(vec![])
        .when(retry(None))
        .then_expect_events(vec![retried(None)]);
    given(vec![retried(None)])
        .when(retry(Some("gateway fixed")))
        .then_expect_events(vec![retried(Some("gateway fixed"))]);
}

#[test]
fn an_operator_discards_one_with_a_reason() {
    given(vec![])
        .when(discard("settled by phone with both parties"))
        .then_expect_events(vec![discarded("settled by phone with both parties")]);
}

#[test]
fn a_discard_without_a_reason_or_with_too_long_a_one_is_refused() {
    given(vec![])
        .when(discard("   "))
        .then_expect_error(DeadLetterError::Reason);
    given(vec![])
        .when(discard(&"x".repeat(REASON_MAX + 1)))
        .then_expect_error(DeadLetterError::Reason);
    given(vec![])
        .when(retry(Some("")))
        .then_expect_error(DeadLetterError::Reason);
}

#[test]
fn a_discarded_letter_is_not_discarded_twice_until_it_is_put_back_in_line() {
    given(vec![discarded("first")])
        .when(discard("second"))
        .then_expect_error(DeadLetterError::AlreadyDiscarded);
    given(vec![discarded("first"), retried(None)])
        .when(discard("second"))
        .then_expect_events(vec![discarded("second")]);
}

proptest! {
    /// Whatever operators decide in whatever order, the letter is discarded exactly when
    /// its last decision was a discard, and retries count every retry.
    #[test]
    fn the_last_decision_is_what_holds(decisions in proptest::collection::vec(any::<bool>(), 0..20)) {
        let mut letter = DeadLetter::default();
        let mut retries = 0;
        for discard in decisions {
            letter.apply(if discard { discarded("why") } else { retried(None) });
            retries += u32::from(!discard);
            prop_assert_eq!(letter.is_discarded(), discard);
        }
        prop_assert_eq!(letter.retries(), retries);
    }
}
