//! The breaker against the simulated gateway on paused time: opening, failing fast and
//! recovering.

use super::*;
use crate::payment::{SimulatedGateway, SimulationProfile, WithTimeout};
use carrot_domain::{Money, UserId};

fn config() -> BreakerConfig {
    BreakerConfig {
        window: 10,
        min_calls: 4,
        failure_rate: 0.5,
        slow_call: Duration::from_millis(300),
        slow_rate: 0.75,
        open_for: Duration::from_secs(5),
        half_open_calls: 2,
    }
}

fn breaker(profile: SimulationProfile) -> (Arc<SimulatedGateway>, CircuitBreaker) {
    let gateway = Arc::new(SimulatedGateway::new(profile));
    let bounded = Arc::new(WithTimeout::new(gateway.clone(), Duration::from_secs(1)));
    (gateway, CircuitBreaker::new(bounded, config()))
}

fn capture(n: u32) -> CaptureOrder {
    CaptureOrder {
        idempotency_key: format!("capture:{n}"),
        buyer_id: UserId::new(),
        amount: Money::krw(1_000),
    }
}

fn failing() -> SimulationProfile {
    SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    }
}

#[tokio::test(start_paused = true)]
async fn it_opens_after_the_failure_threshold_fails_fast_half_opens_and_closes() {
    let (gateway, breaker) = breaker(failing());
    for n in 0..3 {
        assert!(breaker.capture(capture(n)).await.is_err());
        assert_eq!(breaker.state(), BreakerState::Closed, "below min_calls");
    }
    assert!(breaker.capture(capture(3)).await.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);

    // Open: no call reaches the gateway, and the answer says when to come back.
    gateway.set_profile(SimulationProfile::default());
    match breaker.capture(capture(4)).await {
        Err(GatewayError::CircuitOpen { retry_after }) => {
            assert_eq!(retry_after, Duration::from_secs(5))
        }
        other => panic!("expected a fast failure, got {other:?}"),
    }
    assert!(gateway.ledger().is_empty());

    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.capture(capture(5)).await.is_ok());
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "one trial is not enough"
    );
    assert!(breaker.capture(capture(6)).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.transitions(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_failed_trial_opens_it_again() {
    let (_, breaker) = breaker(failing());
    for n in 0..4 {
        let _ = breaker.capture(capture(n)).await;
    }
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(breaker.capture(capture(9)).await.is_err());
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(breaker.check().is_err());
}

#[tokio::test(start_paused = true)]
async fn declines_are_answers_not_failures() {
    let (_, breaker) = breaker(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    for n in 0..10 {
        assert!(matches!(
            breaker.capture(capture(n)).await,
            Err(GatewayError::Declined(_))
        ));
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_it_and_calls_under_the_threshold_do_not() {
    let (gateway, breaker) = breaker(SimulationProfile {
        latency_ms: 250..=250,
        ..SimulationProfile::default()
    });
    for n in 0..10 {
        assert!(breaker.capture(capture(n)).await.is_ok());
    }
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "250 ms is under 300 ms"
    );
    gateway.set_profile(SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    });
    for n in 10..20 {
        let _ = breaker.capture(capture(n)).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn timeouts_count_as_failures() {
    let (_, breaker) = breaker(SimulationProfile {
        latency_ms: 5_000..=5_000,
        ..SimulationProfile::default()
    });
    for n in 0..4 {
        assert_eq!(
            breaker.capture(capture(n)).await,
            Err(GatewayError::Timeout)
        );
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}
