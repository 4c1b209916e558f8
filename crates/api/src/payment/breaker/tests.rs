//! The breaker against the simulated gateway on paused time: opening, failing fast,
//! recovering, and trial calls abandoned at random points.

use super::*;
use crate::payment::{SimulatedGateway, SimulationProfile, WithTimeout};
use carrot_domain::{Money, UserId};
use futures_util::FutureExt;

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

#[tokio::test(start_paused = true)]
async fn a_slow_gateway_opens_it_and_once_fast_again_it_half_opens_and_closes() {
    let slow = SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    };
    let (gateway, breaker) = breaker(slow);
    for n in 0..4 {
        assert!(
            breaker.capture(capture(n)).await.is_ok(),
            "slow, not failed"
        );
    }
    assert_eq!(breaker.state(), BreakerState::Open);

    // Still slow after the wait: the slow trial opens it again.
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.capture(capture(4)).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::Open, "a slow trial fails");

    // Fast again: the next trials pass and close it, and it stays closed under fast calls.
    gateway.set_profile(SimulationProfile {
        latency_ms: 50..=50,
        ..SimulationProfile::default()
    });
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    for n in 5..7 {
        assert!(breaker.capture(capture(n)).await.is_ok());
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    for n in 7..20 {
        assert!(breaker.capture(capture(n)).await.is_ok());
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.transitions(), 5, "open, half, open, half, closed");
}

/// Opens the breaker with failing calls, from whatever state it is in.
async fn open(gateway: &SimulatedGateway, breaker: &CircuitBreaker, n: &mut u32) {
    gateway.set_profile(failing());
    for _ in 0..config().window {
        if breaker.state() == BreakerState::Open {
            break;
        }
        *n += 1;
        let _ = breaker.capture(capture(*n)).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn trial_calls_dropped_at_random_points_never_keep_it_from_closing() {
    use rand::{Rng, SeedableRng};

    let (gateway, breaker) = breaker(failing());
    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let (mut n, mut dropped, mut answered) = (0, 0, 0);
    for round in 0..50 {
        open(&gateway, &breaker, &mut n).await;
        tokio::time::advance(config().open_for).await;
        // Half-open, on a healthy gateway under the slow threshold, with callers that stop
        // waiting at random points: before the gateway answers, or after.
        gateway.set_profile(SimulationProfile {
            latency_ms: 0..=250,
            ..SimulationProfile::default()
        });
        for _ in 0..rng.gen_range(1..=3) {
            let callers = (0..rng.gen_range(1..=4)).map(|_| {
                n += 1;
                let deadline = Duration::from_millis(rng.gen_range(0..=300));
                tokio::time::timeout(deadline, breaker.capture(capture(n)))
            });
            for result in futures_util::future::join_all(callers).await {
                match result {
                    Err(_) => dropped += 1,
                    Ok(Ok(_)) => answered += 1,
                    Ok(Err(_)) => {}
                }
            }
        }
        // Once callers wait for their answers, a few calls close it.
        gateway.set_profile(SimulationProfile::default());
        for _ in 0..10 {
            if breaker.state() == BreakerState::Closed {
                break;
            }
            if breaker.state() == BreakerState::Open {
                tokio::time::advance(config().open_for).await;
            }
            n += 1;
            let _ = breaker.capture(capture(n)).await;
        }
        assert_eq!(breaker.state(), BreakerState::Closed, "round {round}");
    }
    assert!(
        dropped > 20 && answered > 20,
        "both kinds happened: {dropped} dropped, {answered} answered"
    );
}

#[tokio::test(start_paused = true)]
async fn a_trial_dropped_after_its_period_ended_frees_no_slot_in_the_next() {
    let (gateway, breaker) = breaker(failing());
    let mut n = 0;
    open(&gateway, &breaker, &mut n).await;
    tokio::time::advance(config().open_for).await;
    let slow = SimulationProfile {
        latency_ms: 250..=250,
        ..SimulationProfile::default()
    };
    gateway.set_profile(slow.clone());
    let mut stale = Box::pin(breaker.capture(capture(100)));
    assert!(stale.as_mut().now_or_never().is_none(), "a trial");
    gateway.set_profile(failing());
    let _ = breaker.capture(capture(101)).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "the other trial failed"
    );

    tokio::time::advance(config().open_for).await;
    gateway.set_profile(slow);
    let mut first = Box::pin(breaker.capture(capture(102)));
    let mut second = Box::pin(breaker.capture(capture(103)));
    assert!(first.as_mut().now_or_never().is_none());
    assert!(second.as_mut().now_or_never().is_none());
    assert!(breaker.check().is_err(), "both slots of this period taken");
    drop(stale);
    assert!(
        breaker.check().is_err(),
        "a trial of the last period frees no slot of this one"
    );
    drop(first);
    assert!(breaker.check().is_ok(), "one of this period does");
    assert!(second.await.is_ok());
}
