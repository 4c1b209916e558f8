//! `spawn_app()`: a fresh database, the application on a free port, and typed helpers.

use std::sync::Arc;
use std::time::Duration;

use carrot_api::auth::JwtKeys;
use carrot_api::payment::{SimulatedGateway, SimulationProfile};
use carrot_api::startup::{Application, Settings};
use carrot_domain::SystemClock;
use carrot_projections::testing::{test_database, TestDatabase};
use carrot_projections::{RunnerConfig, Shutdown, ShutdownTrigger};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

pub struct TestApp {
    pub address: String,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    /// The app's payment gateway: tests read its ledger and change its behaviour.
    pub gateway: Arc<SimulatedGateway>,
    _stop: ShutdownTrigger,
}

pub fn test_settings() -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().unwrap(),
        jwt: JwtKeys::new(
            b"the test suite's own signing secret",
            chrono::Duration::hours(1),
        ),
        clock: Arc::new(SystemClock),
        consistency_wait: Duration::from_secs(2),
        runner: RunnerConfig {
            poll_interval: Duration::from_millis(100),
            ..RunnerConfig::default()
        },
        gateway: Arc::new(SimulatedGateway::new(SimulationProfile::default())),
        payment_timeout: Duration::from_secs(2),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

/// Spawns the app with `settings`, on a fresh simulated gateway the test can reach.
pub async fn spawn_app_with(mut settings: Settings) -> TestApp {
    let gateway = Arc::new(SimulatedGateway::new(SimulationProfile::default()));
    settings.gateway = gateway.clone();
    let db = test_database().await;
    let app = Application::build(settings, db.pool.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let (stop, shutdown) = Shutdown::new();
    tokio::spawn(app.run_until_stopped(shutdown));
    TestApp {
        address,
        db,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        gateway,
        _stop: stop,
    }
}

/// A signed-up user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&user.token)
    }

    pub fn post(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&user.token)
    }

    pub async fn signup_response(&self, body: &Value) -> Response {
        self.client
            .post(self.url("/auth/signup"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Signs up a new user with a unique name.
    pub async fn signup(&self, prefix: &str) -> User {
        let username = format!(
            "{prefix}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let response = self
            .signup_response(&json!({"username": username, "password": "correct horse battery"}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        User {
            id: body["user_id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn post_listing(&self, seller: &User, body: &Value) -> Response {
        self.post(seller, "/listings")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a valid listing; returns its id and the consistency token.
    pub async fn register_listing(
        &self,
        seller: &User,
        title: &str,
        price: i64,
    ) -> (String, String) {
        let response = self
            .post_listing(
                seller,
                &json!({"title": title, "description": "in good shape", "price": price}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        (
            body["listing_id"].as_str().unwrap().to_owned(),
            body["consistency_token"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "code in {body}");
    assert_eq!(body["status"], status.as_u16());
    for field in ["type", "title", "detail"] {
        assert!(body[field].is_string(), "{field} missing in {body}");
    }
    body
}

/// A purchase request placed through the API.
#[derive(Debug, Clone)]
pub struct Placed {
    pub request_id: String,
    pub payment_id: String,
    pub token: String,
}

impl TestApp {
    pub fn patch(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.patch(self.url(path)).bearer_auth(&user.token)
    }

    pub fn delete(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(&user.token)
    }

    /// `POST /listings/{id}/requests` with an optional body.
    pub async fn request_listing(
        &self,
        buyer: &User,
        listing_id: &str,
        body: Option<Value>,
    ) -> Response {
        let call = self.post(buyer, &format!("/listings/{listing_id}/requests"));
        let call = match body {
            Some(body) => call.json(&body),
            None => call,
        };
        call.send().await.unwrap()
    }

    /// Places a request at the asking price and expects 201.
    pub async fn place_request(&self, buyer: &User, listing_id: &str) -> Placed {
        let response = self.request_listing(buyer, listing_id, None).await;
        assert_eq!(response.status(), StatusCode::CREATED, "placing a request");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "requested");
        Placed {
            request_id: body["request_id"].as_str().unwrap().to_owned(),
            payment_id: body["payment_id"].as_str().unwrap().to_owned(),
            token: body["consistency_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /requests/{id}/{action}` (accept, reject, complete, cancel) as `user`.
    pub async fn act(&self, user: &User, request_id: &str, action: &str) -> Response {
        self.post(user, &format!("/requests/{request_id}/{action}"))
            .send()
            .await
            .unwrap()
    }

    /// Acts and expects 200 with `status`; returns the consistency token.
    pub async fn act_ok(
        &self,
        user: &User,
        request_id: &str,
        action: &str,
        status: &str,
    ) -> String {
        let response = self.act(user, request_id, action).await;
        assert_eq!(response.status(), StatusCode::OK, "{action} {request_id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
        assert_eq!(body["request_id"], request_id);
        body["consistency_token"].as_str().unwrap().to_owned()
    }

    /// The catalog's view of a listing once it has reached `token`.
    pub async fn listing_after(&self, user: &User, listing_id: &str, token: &str) -> Value {
        let response = self
            .get(user, &format!("/listings/{listing_id}"))
            .header("x-consistency-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-consistency"], "consistent");
        response.json().await.unwrap()
    }

    /// The event types of one aggregate, in order, straight from the log.
    pub async fn events_of(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// How many gateway calls of `operation` moved money, in all.
    pub fn gateway_calls(&self, operation: &str) -> Vec<(String, u32)> {
        let mut calls: Vec<(String, u32)> = self
            .gateway
            .ledger()
            .into_iter()
            .filter(|(_, s)| s.operation == operation)
            .map(|(key, s)| (key, s.calls))
            .collect();
        calls.sort();
        calls
    }
}
