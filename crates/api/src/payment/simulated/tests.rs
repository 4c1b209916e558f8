//! The simulated gateway's behaviour: keys answered once, lost answers, declines, voids.

use super::*;

fn capture(key: &str) -> CaptureOrder {
    CaptureOrder {
        idempotency_key: key.into(),
        buyer_id: UserId::new(),
        amount: Money::krw(1000),
    }
}

#[tokio::test]
async fn a_repeated_key_gets_the_first_outcome_and_moves_money_once() {
    let gateway = SimulatedGateway::new(SimulationProfile::default());
    let first = gateway.capture(capture("capture:1")).await.unwrap();
    let again = gateway.capture(capture("capture:1")).await.unwrap();
    assert_eq!(first, again);
    let ledger = gateway.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger["capture:1"].calls, 2);
}

#[tokio::test]
async fn a_declining_gateway_declines_captures_but_not_refunds() {
    let gateway = SimulatedGateway::new(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    assert!(matches!(
        gateway.capture(capture("capture:2")).await,
        Err(GatewayError::Declined(_))
    ));
    let refund = TransferOrder {
        idempotency_key: "refund:2".into(),
        recipient: UserId::new(),
        amount: Money::krw(1),
    };
    assert!(gateway.refund(refund).await.is_ok());
}

#[tokio::test]
async fn resolving_tells_the_outcome_of_a_key_and_voids_an_unseen_one() {
    let gateway = SimulatedGateway::new(SimulationProfile::default());
    let receipt = gateway.capture(capture("capture:4")).await.unwrap();
    assert_eq!(
        gateway.resolve_capture("capture:4").await,
        Ok(CaptureStatus::Captured(receipt))
    );
    assert_eq!(
        gateway.resolve_capture("capture:5").await,
        Ok(CaptureStatus::Voided)
    );
    // A capture arriving after the void is declined: the resolution stays true.
    assert!(matches!(
        gateway.capture(capture("capture:5")).await,
        Err(GatewayError::Declined(_))
    ));
}

#[tokio::test]
async fn a_lost_answer_follows_a_movement_and_the_movement_is_listed() {
    let gateway = SimulatedGateway::new(SimulationProfile {
        drop_rate: 1.0,
        ..SimulationProfile::default()
    });
    let before = Utc::now();
    assert_eq!(
        gateway.capture(capture("capture:6")).await,
        Err(GatewayError::Timeout),
        "the money moved, the answer did not arrive"
    );
    let moved = gateway.movements(before, 10).await.unwrap();
    assert_eq!(moved.len(), 1);
    assert_eq!(
        (moved[0].kind, moved[0].idempotency_key.as_str()),
        (MovementKind::Capture, "capture:6")
    );
    // Asked again, the key answers with what was done, and nothing moves twice.
    gateway.set_profile(SimulationProfile::default());
    assert!(gateway.capture(capture("capture:6")).await.is_ok());
    assert_eq!(gateway.movements(before, 10).await.unwrap().len(), 1);
    assert!(gateway
        .movements(Utc::now() + chrono::Duration::seconds(1), 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn declines_voids_and_failures_are_not_movements() {
    let gateway = SimulatedGateway::new(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let before = Utc::now();
    let _ = gateway.capture(capture("capture:7")).await;
    let _ = gateway.resolve_capture("capture:8").await;
    gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    let _ = gateway.capture(capture("capture:9")).await;
    assert!(gateway.movements(before, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_failing_gateway_records_nothing_so_a_retry_can_succeed() {
    let gateway = SimulatedGateway::new(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    assert!(matches!(
        gateway.capture(capture("capture:3")).await,
        Err(GatewayError::Unavailable(_))
    ));
    assert!(gateway.ledger().is_empty());
    gateway.set_profile(SimulationProfile::default());
    assert!(gateway.capture(capture("capture:3")).await.is_ok());
}
