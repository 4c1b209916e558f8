use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn signing_up_returns_a_token_that_authenticates() {
    let app = spawn_app().await;
    let user = app.signup("minji").await;
    let response = app.get(&user, "/listings").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_taken_username_is_409() {
    let app = spawn_app().await;
    let body = json!({"username": "jisoo", "password": "long enough pw"});
    assert_eq!(
        app.signup_response(&body).await.status(),
        StatusCode::CREATED
    );
    assert_problem(
        app.signup_response(&body).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
}

#[tokio::test]
async fn invalid_signups_are_422_and_create_nobody() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"username": "ab", "password": "long enough pw"}),
            "username too short",
        ),
        (
            json!({"username": "a".repeat(33), "password": "long enough pw"}),
            "username too long",
        ),
        (
            json!({"username": "Capital", "password": "long enough pw"}),
            "uppercase username",
        ),
        (
            json!({"username": "with space", "password": "long enough pw"}),
            "space in username",
        ),
        (
            json!({"username": "fine_name", "password": "short"}),
            "password too short",
        ),
        (
            json!({"username": "fine_name", "password": "x".repeat(129)}),
            "password too long",
        ),
        (
            json!({"username": "fine_name", "password": "long enough pw", "display_name": ""}),
            "empty display name",
        ),
        (json!({"username": "fine_name"}), "missing password"),
        (
            json!({"username": 42, "password": "long enough pw"}),
            "username of the wrong type",
        ),
    ];
    for (body, case) in cases {
        let response = app.signup_response(&body).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{case}"
        );
    }
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 0);
}

#[tokio::test]
async fn logging_in_with_the_right_password_returns_a_token_and_its_expiry() {
    let app = spawn_app().await;
    let body = json!({"username": "hana", "password": "correct horse"});
    let signed_up: Value = app.signup_response(&body).await.json().await.unwrap();
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let login: Value = response.json().await.unwrap();
    assert_eq!(login["user_id"], signed_up["user_id"]);
    assert!(login["token"].is_string());
    assert!(login["expires_at"].is_string());
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_401() {
    let app = spawn_app().await;
    app.signup_response(&json!({"username": "hana", "password": "correct horse"}))
        .await;
    let wrong_password = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "hana", "password": "wrong horse"}))
        .send()
        .await
        .unwrap();
    let unknown_user = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"username": "nobody", "password": "wrong horse"}))
        .send()
        .await
        .unwrap();
    let a = assert_problem(
        wrong_password,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_problem(
        unknown_user,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let app = spawn_app().await;
    let none = app.client.get(app.url("/listings")).send().await.unwrap();
    assert_eq!(
        none.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_problem(none, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for header in ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer "] {
        let response = app
            .client
            .get(app.url("/listings"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let forged = app
        .client
        .post(app.url("/listings"))
        .bearer_auth("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAifQ.")
        .json(&json!({"title": "x", "description": "", "price": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(forged, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.event_count().await, 0);
}
