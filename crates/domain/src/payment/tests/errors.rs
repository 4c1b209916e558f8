//! The class, stable code and retry hint of every refusal, and the idempotency keys.

use super::*;
use crate::{DomainError, ErrorKind};

#[test]
fn every_refusal_has_a_class_and_a_stable_code() {
    let class = |error: PaymentError| (error.kind(), error.code());
    assert_eq!(
        class(PaymentError::NotFound),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(
        class(PaymentError::AlreadyExists),
        (ErrorKind::Conflict, "payment_already_exists")
    );
    assert_eq!(
        class(PaymentError::NotCaptured("failed")),
        (ErrorKind::Conflict, "payment_not_captured")
    );
    assert_eq!(
        class(PaymentError::AlreadyRefunded),
        (ErrorKind::Conflict, "payment_already_refunded")
    );
    assert_eq!(
        class(PaymentError::AlreadyPaidOut),
        (ErrorKind::Conflict, "payment_already_paid_out")
    );
    assert_eq!(
        class(PaymentError::GatewayUnavailable("down".into())),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
    assert_eq!(
        class(PaymentError::GatewayTimeout),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
    assert_eq!(
        class(PaymentError::GatewayRefused("no".into())),
        (ErrorKind::Conflict, "payment_refused")
    );
    assert_eq!(
        class(RETRY_IN_30S),
        (ErrorKind::Unavailable, "payment_unavailable")
    );
}

#[test]
fn only_an_open_circuit_says_when_to_retry() {
    assert_eq!(RETRY_IN_30S.retry_after_secs(), Some(30));
    let others = [
        PaymentError::NotFound,
        PaymentError::AlreadyExists,
        PaymentError::NotCaptured("failed"),
        PaymentError::AlreadyRefunded,
        PaymentError::AlreadyPaidOut,
        PaymentError::GatewayUnavailable("down".into()),
        PaymentError::GatewayTimeout,
        PaymentError::GatewayRefused("no".into()),
    ];
    for error in others {
        assert_eq!(error.retry_after_secs(), None, "{error:?}");
    }
}

#[test]
fn idempotency_keys_are_derived_from_the_payment_id_per_operation() {
    assert_eq!(gateway::capture_key(PAYMENT), format!("capture:{PAYMENT}"));
    assert_eq!(gateway::refund_key(PAYMENT), format!("refund:{PAYMENT}"));
    assert_eq!(gateway::payout_key(PAYMENT), format!("payout:{PAYMENT}"));
    assert_ne!(
        gateway::capture_key(PAYMENT),
        gateway::capture_key(OTHER_PAYMENT)
    );
}
