//! The circuit breaker through HTTP: it opens on a failing or slow gateway, purchase
//! requests then fail fast with 503 and Retry-After while everything else keeps working,
//! refunds wait instead of failing, and a recovered gateway closes it again, even after the
//! clients of its trial calls gave up.

use std::time::{Duration, Instant};

use carrot_api::payment::{BreakerConfig, SimulationProfile};
use reqwest::StatusCode;

use crate::helpers::{
    assert_problem, eventually, spawn_app_with, test_settings, Deal, TestApp, User,
};

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

impl TestApp {
    /// The circuit's state as readiness reports it.
    async fn circuit(&self) -> String {
        let body = self.readiness().await;
        body["payment_gateway"]["circuit"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Retries a purchase request until it is placed (bounded): the circuit closed.
    async fn placed_once_closed(&self, buyer: &User, listing: &str) {
        eventually("a purchase request to go through", || async {
            let response = self.request_listing(buyer, listing, None).await;
            (response.status() == StatusCode::CREATED).then_some(())
        })
        .await;
    }
}

#[tokio::test]
async fn a_slow_gateway_opens_the_circuit_and_once_fast_again_it_closes() {
    let mut settings = test_settings();
    settings.breaker = BreakerConfig {
        window: 4,
        min_calls: 2,
        slow_call: Duration::from_millis(200),
        open_for: Duration::from_secs(2),
        half_open_calls: 1,
        ..BreakerConfig::default()
    };
    let app = spawn_app_with(settings).await;
    let seller = app.signup("seller").await;
    let (listing, _) = app.register_listing(&seller, "Lamp", 30_000).await;
    let buyers = [
        app.signup("a").await,
        app.signup("b").await,
        app.signup("c").await,
    ];
    // Slow but answering (under the payment timeout): both are placed, and the circuit opens.
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 400..=400,
        ..SimulationProfile::default()
    });
    for buyer in &buyers[..2] {
        app.place_request(buyer, &listing).await;
    }
    let response = app.request_listing(&buyers[2], &listing, None).await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;
    assert_eq!(app.gateway_calls("capture").len(), 2, "failed fast");

    // Fast again: after the open period a trial goes through and closes the circuit.
    app.gateway.set_profile(SimulationProfile::default());
    app.placed_once_closed(&buyers[2], &listing).await;
    assert_eq!(app.circuit().await, "closed");
}

#[tokio::test]
async fn trial_calls_whose_clients_gave_up_do_not_keep_the_circuit_from_closing() {
    let app = app_with_a_touchy_breaker().await;
    let seller = app.signup("seller").await;
    let (listing, _) = app.register_listing(&seller, "Tent", 60_000).await;
    let mut buyers = Vec::new();
    for name in ["a", "b", "c", "d", "e"] {
        buyers.push(app.signup(name).await);
    }
    app.gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    for buyer in &buyers[..2] {
        let _ = app.request_listing(buyer, &listing, None).await;
    }
    assert_eq!(app.circuit().await, "open");
    eventually("the circuit to half-open", || async {
        (app.circuit().await == "half_open").then_some(())
    })
    .await;

    // The trial call is slow (under the slow-call threshold); its client stops waiting, and
    // the server drops the request's future with the gateway call in it.
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 1_000..=1_000,
        ..SimulationProfile::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let gave_up = impatient
        .post(app.url(&format!("/listings/{listing}/requests")))
        .bearer_auth(&buyers[2].token)
        .send()
        .await;
    assert!(gave_up.unwrap_err().is_timeout());

    // A healthy gateway: the abandoned trial's slot is free again, a trial closes it.
    app.gateway.set_profile(SimulationProfile::default());
    app.placed_once_closed(&buyers[3], &listing).await;
    assert_eq!(app.circuit().await, "closed");
    app.place_request(&buyers[4], &listing).await;
}
