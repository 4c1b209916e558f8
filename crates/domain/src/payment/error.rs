//! Why a payment refused a command.

use super::GatewayError;
use crate::{DomainError, ErrorKind};

/// A refused payment command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// No such payment.
    #[error("there is no such payment")]
    NotFound,
    /// A different payment exists under this id.
    #[error("this payment exists already")]
    AlreadyExists,
    /// A capture is sent to the gateway only once its start is recorded.
    #[error("the capture was not started")]
    NotStarted,
    /// Only held money can be refunded or paid out.
    #[error("the payment is {0}, not held in escrow")]
    NotCaptured(&'static str),
    /// Refunded already: it can never be paid out.
    #[error("the payment was refunded already")]
    AlreadyRefunded,
    /// Paid out already: it can never be refunded.
    #[error("the payment was paid out already")]
    AlreadyPaidOut,
    /// The gateway is down or answered with an error; nothing moved.
    #[error("the payment gateway is unavailable: {0}")]
    GatewayUnavailable(String),
    /// A refund or payout got no answer in time; retrying with the same key is safe.
    #[error("the payment gateway did not answer in time")]
    GatewayTimeout,
    /// The gateway is failing and its circuit breaker is open: nothing was tried.
    #[error("the payment gateway is failing; new payments resume in {retry_after_secs}s")]
    CircuitOpen {
        /// Seconds until the breaker tries the gateway again.
        retry_after_secs: u32,
    },
    /// The gateway refused a refund or payout.
    #[error("the payment gateway refused the transfer: {0}")]
    GatewayRefused(String),
    /// An operator's retry or outside settlement of a transfer that was not declined.
    #[error("no refund or payout of this payment was declined")]
    NoDeclinedTransfer,
}

impl PaymentError {
    pub(crate) fn from_transfer(error: GatewayError) -> Self {
        match error {
            GatewayError::Declined(reason) => PaymentError::GatewayRefused(reason),
            GatewayError::Unavailable(detail) => PaymentError::GatewayUnavailable(detail),
            GatewayError::Timeout => PaymentError::GatewayTimeout,
            GatewayError::CircuitOpen { retry_after } => PaymentError::circuit_open(retry_after),
        }
    }

    /// The breaker is open for `retry_after` more: whole seconds, rounded up, at least one.
    pub fn circuit_open(retry_after: std::time::Duration) -> Self {
        PaymentError::CircuitOpen {
            // Rounded up: a client told to come back sooner would only be refused again.
            retry_after_secs: u32::try_from(retry_after.as_secs_f64().ceil() as u64)
                .unwrap_or(u32::MAX)
                .max(1),
        }
    }
}

impl DomainError for PaymentError {
    fn kind(&self) -> ErrorKind {
        match self {
            PaymentError::NotFound => ErrorKind::NotFound,
            PaymentError::NotStarted => ErrorKind::Conflict,
            PaymentError::AlreadyExists
            | PaymentError::NotCaptured(_)
            | PaymentError::AlreadyRefunded
            | PaymentError::AlreadyPaidOut
            | PaymentError::GatewayRefused(_)
            | PaymentError::NoDeclinedTransfer => ErrorKind::Conflict,
            PaymentError::GatewayUnavailable(_)
            | PaymentError::GatewayTimeout
            | PaymentError::CircuitOpen { .. } => ErrorKind::Unavailable,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            PaymentError::NotFound => "not_found",
            PaymentError::NotStarted => "payment_not_started",
            PaymentError::AlreadyExists => "payment_already_exists",
            PaymentError::NotCaptured(_) => "payment_not_captured",
            PaymentError::AlreadyRefunded => "payment_already_refunded",
            PaymentError::AlreadyPaidOut => "payment_already_paid_out",
            PaymentError::GatewayUnavailable(_)
            | PaymentError::GatewayTimeout
            | PaymentError::CircuitOpen { .. } => "payment_unavailable",
            PaymentError::GatewayRefused(_) => "payment_refused",
            PaymentError::NoDeclinedTransfer => "no_declined_transfer",
        }
    }

    fn retry_after_secs(&self) -> Option<u32> {
        match self {
            PaymentError::CircuitOpen { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}
