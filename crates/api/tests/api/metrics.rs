//! `GET /metrics`: every series API.md lists exists, and moves when traffic flows.

use reqwest::StatusCode;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings, Deal, TestApp};
use carrot_api::startup::ServeRole;

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

/// The value of the first series whose line starts with `prefix` (0 when absent).
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn every_series_exists_and_moves_with_traffic() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    let registered =
        "carrot_http_requests_total{method=\"POST\",route=\"/listings\",status=\"201\"}";
    let Deal { seller, placed, .. } = app.pending_deal("Fan", 8_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    app.settle().await;
    let after = scrape(&app).await;

    assert!(
        value(&after, registered) >= value(&before, registered) + 1.0,
        "{after}"
    );
    for series in [
        "carrot_http_request_duration_seconds_bucket{method=\"POST\",route=\"/listings\",le=\"+Inf\"}",
        "carrot_commands_total{aggregate=\"listing\",command=\"RegisterListing\",outcome=\"ok\"",
        "carrot_commands_total{aggregate=\"payment\",command=\"CapturePayment\",outcome=\"ok\"",
        "carrot_saga_commands_total{command=\"RefundPayment\",outcome=\"applied\"}",
        "carrot_payment_gateway_calls_total{operation=\"refund\",outcome=\"ok\"}",
        "carrot_subscription_apply_lag_seconds_count{subscriber=\"mypage\"}",
    ] {
        assert!(value(&after, series) > value(&before, series), "{series} did not move:\n{after}");
    }
    for gauge in [
        "carrot_database_up 1",
        "carrot_subscription_lag_events{subscriber=\"catalog\"}",
        "carrot_subscription_lag_seconds{subscriber=\"settlement\"}",
        "carrot_log_horizon_age_seconds",
        "carrot_saga_outbox_pending",
        "carrot_saga_dead_letters 0",
        "carrot_payment_circuit_state{state=\"closed\"} 1",
        "carrot_payment_circuit_transitions_total",
    ] {
        assert!(after.contains(gauge), "{gauge} missing:\n{after}");
    }
    // Routes are patterns, never raw ids.
    assert!(after.contains("route=\"/requests/{id}/reject\""));
    assert!(!after.contains(&placed.request_id));
}

#[tokio::test]
async fn a_worker_serves_only_its_probes_and_metrics() {
    let mut settings = test_settings();
    settings.role = ServeRole::Worker;
    let app = spawn_app_with(settings).await;
    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert!(scrape(&app).await.contains("carrot_database_up 1"));
    let response = app
        .client
        .post(app.url("/auth/signup"))
        .json(&serde_json::json!({"username": "nobody_here", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "no_such_endpoint").await;
}
