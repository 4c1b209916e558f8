//! The `DeadLetter` aggregate: what operators decided about one saga command that gave up
//! (its stream's id is the command's id, `accept:<request>`, `reserve:<listing>:<request>`...).
//! Putting it back in line, or discarding it with a reason, is an event here with the
//! operator's id and the trade's id, so it is audited in the log and shows in the trade's
//! timeline beside the events the command was about.
//!
//! The saga's outbox row (`settlement.outbox`) is what the dispatcher runs; the edge changes
//! it after this aggregate records the decision (docs/DESIGN.md, "Dead letters").

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{Actor, Clock, DomainError, ErrorKind, RequestId};

#[cfg(test)]
mod tests;

/// The longest reason an operator may give, in characters.
pub const REASON_MAX: usize = 1000;

/// A dead letter's state, rebuilt from its events.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Discarded, and not put back in line since.
    discarded: bool,
    /// How many times operators put it back in line.
    retries: u32,
}

impl DeadLetter {
    /// Whether the last decision was to discard it.
    pub fn is_discarded(&self) -> bool {
        self.discarded
    }

    /// How many times operators put it back in line.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

/// What may be asked of a dead letter. The edge checks that the command is dead first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeadLetterCommand {
    /// Put the command back in line, its attempts starting again.
    Retry {
        /// The saga command.
        command_id: String,
        /// The trade it belongs to.
        request_id: RequestId,
        /// Why, if the operator said.
        reason: Option<String>,
        /// The operator.
        by: Actor,
    },
    /// Never run the command; the trade is settled some other way, or needs nothing more.
    Discard {
        /// The saga command.
        command_id: String,
        /// The trade it belongs to.
        request_id: RequestId,
        /// Why (required).
        reason: String,
        /// The operator.
        by: Actor,
    },
}

/// An event of the `DeadLetter` aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum DeadLetterEvent {
    /// An operator put the command back in line.
    DeadLetterRetried {
        /// The saga command.
        command_id: String,
        /// The trade it belongs to.
        request_id: RequestId,
        /// Why, if the operator said.
        reason: Option<String>,
        /// The operator.
        by: Actor,
        /// When (from the injected clock).
        retried_at: DateTime<Utc>,
    },
    /// An operator discarded the command: it will not run.
    DeadLetterDiscarded {
        /// The saga command.
        command_id: String,
        /// The trade it belongs to.
        request_id: RequestId,
        /// Why.
        reason: String,
        /// The operator.
        by: Actor,
        /// When (from the injected clock).
        discarded_at: DateTime<Utc>,
    },
}

/// The version each event type is written with (docs/DESIGN.md, "Changing an event").
pub const VERSIONS: &[(&str, &str)] =
    &[("DeadLetterRetried", "1.0"), ("DeadLetterDiscarded", "1.0")];

impl DomainEvent for DeadLetterEvent {
    fn event_type(&self) -> String {
        match self {
            DeadLetterEvent::DeadLetterRetried { .. } => "DeadLetterRetried".into(),
            DeadLetterEvent::DeadLetterDiscarded { .. } => "DeadLetterDiscarded".into(),
        }
    }

    fn event_version(&self) -> String {
        crate::schema::version_in(VERSIONS, &self.event_type())
    }
}

/// A refused dead-letter command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadLetterError {
    /// Discarded already, and not put back in line since.
    #[error("this dead letter was discarded already")]
    AlreadyDiscarded,
    /// A discard needs a reason; a reason is 1 to 1,000 characters.
    #[error("a reason is 1 to {REASON_MAX} characters")]
    Reason,
}

impl DomainError for DeadLetterError {
    fn kind(&self) -> ErrorKind {
        match self {
            DeadLetterError::AlreadyDiscarded => ErrorKind::Conflict,
            DeadLetterError::Reason => ErrorKind::Invalid,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            DeadLetterError::AlreadyDiscarded => "dead_letter_discarded",
            DeadLetterError::Reason => "validation_failed",
        }
    }
}

/// What the dead-letter aggregate needs from the outside world.
#[derive(Clone)]
pub struct DeadLetterServices {
    /// The time source for event timestamps.
    pub clock: Arc<dyn Clock>,
}

/// Whether `reason` is one an operator may give: not blank, at most [`REASON_MAX`].
fn valid_reason(reason: &str) -> bool {
    !reason.trim().is_empty() && reason.chars().count() <= REASON_MAX
}

impl Aggregate for DeadLetter {
    const TYPE: &'static str = "dead_letter";
    type Command = DeadLetterCommand;
    type Event = DeadLetterEvent;
    type Error = DeadLetterError;
    type Services = DeadLetterServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            DeadLetterCommand::Retry {
                command_id,
                request_id,
                reason,
                by,
            } => {
                if reason.as_deref().is_some_and(|r| !valid_reason(r)) {
                    return Err(DeadLetterError::Reason);
                }
                DeadLetterEvent::DeadLetterRetried {
                    command_id,
                    request_id,
                    reason,
                    by,
                    retried_at: services.clock.now(),
                }
            }
            DeadLetterCommand::Discard {
                command_id,
                request_id,
                reason,
                by,
            } => {
                if self.discarded {
                    return Err(DeadLetterError::AlreadyDiscarded);
                }
                if !valid_reason(&reason) {
                    return Err(DeadLetterError::Reason);
                }
                DeadLetterEvent::DeadLetterDiscarded {
                    command_id,
                    request_id,
                    reason,
                    by,
                    discarded_at: services.clock.now(),
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            DeadLetterEvent::DeadLetterRetried { .. } => {
                self.discarded = false;
                self.retries += 1;
            }
            DeadLetterEvent::DeadLetterDiscarded { .. } => self.discarded = true,
        }
    }
}
