//! Why a purchase request refused a command.

use crate::{DomainError, ErrorKind};

/// A refused purchase request command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurchaseRequestError {
    /// No such request, or the caller is not a party to it (nothing leaks).
    #[error("there is no such purchase request")]
    NotFound,
    /// A request with this id exists already, with another payment.
    #[error("this purchase request exists already")]
    AlreadyExists,
    /// A seller cannot buy their own listing.
    #[error("you cannot request your own listing")]
    OwnListing,
    /// Only the listing's seller may do this.
    #[error("only the listing's seller may do this")]
    NotYourListing,
    /// Only the request's buyer may do this.
    #[error("only the request's buyer may do this")]
    NotYourRequest,
    /// Not allowed from the current status.
    #[error("cannot {action} a request that is {status}")]
    InvalidTransition {
        /// What was asked.
        action: &'static str,
        /// Where the request stands.
        status: &'static str,
    },
    /// The request's deadline has passed: it expires (pending) or completes (accepted), and
    /// nothing else may happen to it any more, whether or not the timer got to it yet.
    #[error("cannot {action} this request: its deadline passed at {deadline}")]
    DeadlinePassed {
        /// What was asked.
        action: &'static str,
        /// When the request expired, or was due to complete.
        deadline: chrono::DateTime<chrono::Utc>,
    },
    /// An expiry or automatic completion asked before its deadline (a clock ahead).
    #[error("cannot {action} this request before {due}")]
    NotDue {
        /// What was asked.
        action: &'static str,
        /// When it may happen.
        due: chrono::DateTime<chrono::Utc>,
    },
}

impl DomainError for PurchaseRequestError {
    fn kind(&self) -> ErrorKind {
        match self {
            PurchaseRequestError::NotFound => ErrorKind::NotFound,
            PurchaseRequestError::OwnListing => ErrorKind::Invalid,
            PurchaseRequestError::NotYourListing | PurchaseRequestError::NotYourRequest => {
                ErrorKind::Forbidden
            }
            PurchaseRequestError::AlreadyExists
            | PurchaseRequestError::InvalidTransition { .. }
            | PurchaseRequestError::DeadlinePassed { .. }
            | PurchaseRequestError::NotDue { .. } => ErrorKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PurchaseRequestError::NotFound => "not_found",
            PurchaseRequestError::AlreadyExists => "request_already_exists",
            PurchaseRequestError::OwnListing => "own_listing",
            PurchaseRequestError::NotYourListing => "not_your_listing",
            PurchaseRequestError::NotYourRequest => "not_your_request",
            PurchaseRequestError::InvalidTransition { .. } => "invalid_transition",
            PurchaseRequestError::DeadlinePassed { .. } => "deadline_passed",
            PurchaseRequestError::NotDue { .. } => "not_due",
        }
    }
}
