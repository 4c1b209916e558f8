use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn liveness_answers_200_without_a_token() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_reports_the_database_migrations_and_subscriber_lag() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["database"], "up");
    assert_eq!(body["migrations"], "applied");
    let subscriptions = body["subscriptions"].as_array().unwrap();
    assert!(
        subscriptions.iter().any(|s| s["name"] == "catalog"),
        "{body}"
    );
    assert_eq!(body["payment_gateway"]["circuit"], "closed");
    assert_eq!(body["saga"]["dead_letters"], 0);
    assert!(body["saga"]["outbox_pending"].is_number());
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.db.pool.close().await;
    let response = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "down");
}

#[tokio::test]
async fn an_unknown_route_is_a_problem_404() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "no_such_endpoint").await;
}

#[tokio::test]
async fn a_known_route_with_an_unknown_method_is_a_problem_405_with_allow() {
    let app = spawn_app().await;
    let response = app.client.put(app.url("/listings")).send().await.unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "Allow: {allow}"
    );
    assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}
