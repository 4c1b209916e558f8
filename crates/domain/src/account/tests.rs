//! Given/when/then tests of the account aggregate.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use cqrs_es::test::TestFramework;
use uuid::Uuid;

use super::*;
use crate::FixedClock;

const PERSON: UserId = UserId::from_uuid(Uuid::from_u128(0xacc0));
const OPERATOR: UserId = UserId::from_uuid(Uuid::from_u128(0x0b5e));

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 10, 0, 0)
        .single()
        .unwrap_or_default()
}

fn given(history: Vec<AccountEvent>) -> cqrs_es::test::AggregateTestExecutor<Account> {
    TestFramework::<Account>::with(AccountServices {
        clock: Arc::new(FixedClock::at(now())),
    })
    .given(history)
}

fn closed(by: Actor) -> AccountEvent {
    AccountEvent::AccountClosed {
        user_id: PERSON,
        by,
        closed_at: now(),
    }
}

#[test]
fn a_person_closes_their_own_account() {
    given(vec![])
        .when(AccountCommand::CloseAccount {
            user_id: PERSON,
            by: Actor::User(PERSON),
        })
        .then_expect_events(vec![closed(Actor::User(PERSON))]);
}

#[test]
fn an_operator_closing_it_is_recorded_as_the_operator() {
    given(vec![])
        .when(AccountCommand::CloseAccount {
            user_id: PERSON,
            by: Actor::User(OPERATOR),
        })
        .then_expect_events(vec![closed(Actor::User(OPERATOR))]);
}

#[test]
fn a_closed_account_cannot_be_closed_again() {
    given(vec![closed(Actor::User(PERSON))])
        .when(AccountCommand::CloseAccount {
            user_id: PERSON,
            by: Actor::User(OPERATOR),
        })
        .then_expect_error(AccountError::AlreadyClosed);
}
