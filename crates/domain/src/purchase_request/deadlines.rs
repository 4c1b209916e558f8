//! A request's own deadlines: how long it waits for each answer, when the phase it is in
//! ends, and the checks refusing a late answer or an early expiry or completion.

use chrono::{DateTime, Duration, Utc};

use super::{PurchaseRequest, PurchaseRequestError, RequestStatus};

/// How long a request waits for each answer. The saga's timer acts on the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    /// A request nobody answers expires after this (default 48 h).
    pub request_ttl: Duration,
    /// An accepted request nobody completes is completed after this (default 7 days).
    pub completion_ttl: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            request_ttl: Duration::hours(48),
            completion_ttl: Duration::days(7),
        }
    }
}

impl PurchaseRequest {
    /// When a pending request expires, or an accepted one completes: the end of the phase
    /// it is in, if it is open (and its start is known).
    pub fn deadline(&self, deadlines: &Deadlines) -> Option<DateTime<Utc>> {
        match self.status {
            RequestStatus::Requested => self.requested_at.map(|at| at + deadlines.request_ttl),
            RequestStatus::Accepted => self.accepted_at.map(|at| at + deadlines.completion_ttl),
            _ => None,
        }
    }

    /// Refuses `action` at `now` if the request's deadline has passed.
    pub(super) fn before_deadline(
        &self,
        action: &'static str,
        now: DateTime<Utc>,
        deadlines: &Deadlines,
    ) -> Result<(), PurchaseRequestError> {
        match self.deadline(deadlines) {
            Some(deadline) if now >= deadline => {
                Err(PurchaseRequestError::DeadlinePassed { action, deadline })
            }
            _ => Ok(()),
        }
    }

    /// Refuses `action` (what the deadline calls for) at `now` if it is not due yet.
    pub(super) fn due(
        &self,
        action: &'static str,
        now: DateTime<Utc>,
        deadlines: &Deadlines,
    ) -> Result<(), PurchaseRequestError> {
        match self.deadline(deadlines) {
            Some(due) if now < due => Err(PurchaseRequestError::NotDue { action, due }),
            _ => Ok(()),
        }
    }
}
