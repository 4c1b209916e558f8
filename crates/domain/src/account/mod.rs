//! The `Account` aggregate: a person's account as the log knows it. Today that is one fact,
//! its closing, recorded as an event so that it is audited (who closed it: the person, or an
//! operator for them, and when) and so that every view erases what it holds of the person
//! at that place in the log, after everything the person did before it.
//!
//! What closing requires (no open trade, no money held) is checked against the views by the
//! caller before this command; what closing does to keys, sessions and the account row is
//! the edge's (docs/DESIGN.md, "Erasure").

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Actor, Clock, DomainError, ErrorKind, UserId};

#[cfg(test)]
mod tests;

/// An account's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    closed: bool,
}

impl Account {
    /// Whether the account was closed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
}

/// What may be asked of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountCommand {
    /// Close the account of `user_id`, asked by `by` (the person, or an operator).
    CloseAccount {
        /// The account's user.
        user_id: UserId,
        /// Who asks.
        by: Actor,
    },
}

/// An event of the `Account` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was closed: its person's personal data is erased from here on.
    AccountClosed {
        /// The account's user.
        user_id: UserId,
        /// Who closed it: the person, or an operator for them.
        by: Actor,
        /// When (from the injected clock).
        closed_at: DateTime<Utc>,
    },
}

/// The version each event type is written with (docs/DESIGN.md, "Changing an event").
pub const VERSIONS: &[(&str, &str)] = &[("AccountClosed", "1.0")];

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::AccountClosed { .. } => "AccountClosed".into(),
        }
    }

    fn event_version(&self) -> String {
        crate::schema::version_in(VERSIONS, &self.event_type())
    }
}

/// A refused account command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The account is closed already.
    #[error("this account is closed already")]
    AlreadyClosed,
}

impl DomainError for AccountError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Conflict
    }

    fn code(&self) -> &'static str {
        "account_closed"
    }
}

/// What the account aggregate needs from the outside world.
#[derive(Clone)]
pub struct AccountServices {
    /// The time source for event timestamps.
    pub clock: Arc<dyn Clock>,
}

impl Aggregate for Account {
    const TYPE: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = AccountServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let AccountCommand::CloseAccount { user_id, by } = command;
        if self.closed {
            return Err(AccountError::AlreadyClosed);
        }
        let event = AccountEvent::AccountClosed {
            user_id,
            by,
            closed_at: services.clock.now(),
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AccountEvent::AccountClosed { .. } => self.closed = true,
        }
    }
}
