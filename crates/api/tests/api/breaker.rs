//! The circuit breaker through HTTP: it opens on a failing gateway, purchase requests then
//! fail fast with 503 and Retry-After while everything else keeps working, refunds wait
//! instead of failing, and a recovered gateway closes it again.

use std::time::{Duration, Instant};

use carrot_api::payment::{BreakerConfig, SimulationProfile};
use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app_with, test_settings, Deal, TestApp};

async fn app_with_a_touchy_breaker() -> TestApp {
    let mut settings = test_settings();
    settings.breaker = BreakerConfig {
        window: 4,
        min_calls: 2,
        open_for: Duration::from_secs(2),
        half_open_calls: 1,
        ..BreakerConfig::default()
    };
    spawn_app_with(settings).await
}

#[tokio::test]
async fn a_failing_gateway_opens_the_circuit_requests_fail_fast_and_it_closes_after_recovery() {
    let app = app_with_a_touchy_breaker().await;
    let seller = app.signup("seller").await;
    let (listing, _) = app.register_listing(&seller, "Bike", 80_000).await;
    let buyers = [
        app.signup("a").await,
        app.signup("b").await,
        app.signup("c").await,
    ];
    app.gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        latency_ms: 300..=300,
        ..SimulationProfile::default()
    });
    for buyer in &buyers[..2] {
        let response = app.request_listing(buyer, &listing, None).await;
        assert_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_unavailable",
        )
        .await;
    }
    // Open: answered without calling the gateway (which takes 300 ms), with Retry-After.
    let started = Instant::now();
    let response = app.request_listing(&buyers[2], &listing, None).await;
    let took = started.elapsed();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    assert!(took < Duration::from_millis(250), "not fail-fast: {took:?}");

    // Listings and reads keep working meanwhile.
    let (other, token) = app.register_listing(&seller, "Helmet", 20_000).await;
    app.listing_after(&seller, &other, &token).await;

    // The gateway recovers; after the open period a trial call closes the circuit.
    app.gateway.set_profile(SimulationProfile::default());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.place_request(&buyers[2], &listing).await;
    app.place_request(&buyers[0], &listing).await;
}

#[tokio::test]
async fn refunds_wait_out_an_open_circuit_and_happen_once_after_recovery() {
    let app = app_with_a_touchy_breaker().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Desk", 40_000).await;
    app.gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    // The refund fails, the circuit opens, and the saga keeps the command pending.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM settlement.outbox WHERE command_id = $1")
            .bind(format!("refund:{}", placed.payment_id))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(status, "pending", "waiting, not dead");
    assert!(
        attempts <= 2,
        "an open circuit does not use attempts up: {attempts}"
    );
    app.gateway.set_profile(SimulationProfile::default());
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    assert_eq!(app.gateway_calls("refund").len(), 1);
}
