//! `spawn_app()`: a fresh database, the application on a free port, and typed helpers.

use std::sync::Arc;
use std::time::Duration;

use carrot_api::auth::JwtKeys;
use carrot_api::limits::LimitConfig;
use carrot_api::payment::BreakerConfig;
use carrot_api::payment::{SimulatedGateway, SimulationProfile};
use carrot_api::startup::{Application, ServeRole, Settings};
use carrot_api::workers::WorkerConfig;
use carrot_domain::payment::PaymentGateway;
use carrot_domain::SystemClock;
use carrot_projections::settlement::DispatcherConfig;
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
        role: ServeRole::All,
        jwt: JwtKeys::new(
            b"the test suite's own signing secret",
            chrono::Duration::hours(1),
        ),
        clock: Arc::new(SystemClock),
        consistency_wait: Duration::from_secs(2),
        progress_refresh: Duration::from_millis(500),
        workers: WorkerConfig {
            runner: RunnerConfig {
                poll_interval: Duration::from_millis(100),
                ..RunnerConfig::default()
            },
            dispatcher: DispatcherConfig {
                poll_interval: Duration::from_millis(100),
                retry_base: Duration::from_millis(50),
                ..DispatcherConfig::default()
            },
            timer_tick: Duration::from_millis(100),
            ..WorkerConfig::default()
        },
        gateway: Arc::new(SimulatedGateway::new(SimulationProfile::default())),
        payment_timeout: Duration::from_secs(2),
        breaker: BreakerConfig::default(),
        // Off: the suite calls fast from one address; tests of the limits set their own.
        limits: LimitConfig::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(test_settings()).await
}

/// Spawns the app with `settings`, on a fresh simulated gateway the test can reach.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let gateway = Arc::new(SimulatedGateway::new(SimulationProfile::default()));
    spawn_app_over(settings, gateway.clone(), gateway).await
}

/// Spawns the app calling the gateway through `adapter` (which wraps `gateway`, whose
/// ledger the test reads).
pub async fn spawn_app_over(
    mut settings: Settings,
    gateway: Arc<SimulatedGateway>,
    adapter: Arc<dyn PaymentGateway>,
) -> TestApp {
    settings.gateway = adapter;
    spawn_app_on(settings, gateway, test_database().await).await
}

/// Spawns the app with `settings` on the database `db` (a restored one, say), its gateway
/// already in `settings`, which the test reads through `gateway`.
pub async fn spawn_app_on(
    settings: Settings,
    gateway: Arc<SimulatedGateway>,
    db: TestDatabase,
) -> TestApp {
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
    pub username: String,
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
            username,
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

/// Polls `probe` until it yields a value, for at most 15 s; panics naming `what` after that.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl TestApp {
    /// `GET /payments/{id}` as `user`.
    pub async fn payment(&self, user: &User, payment_id: &str) -> Response {
        self.get(user, &format!("/payments/{payment_id}"))
            .send()
            .await
            .unwrap()
    }

    /// Waits until the payments view shows `status` for the payment; returns it.
    pub async fn wait_payment(&self, user: &User, payment_id: &str, status: &str) -> Value {
        eventually(&format!("payment {payment_id} to be {status}"), || async {
            let response = self.payment(user, payment_id).await;
            if response.status() != StatusCode::OK {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            (body["status"] == status).then_some(body)
        })
        .await
    }

    /// Waits until an aggregate has recorded `event_type`; returns its events.
    pub async fn wait_event(
        &self,
        aggregate_type: &str,
        id: &str,
        event_type: &str,
    ) -> Vec<String> {
        eventually(
            &format!("{event_type} on {aggregate_type} {id}"),
            || async {
                let events = self.events_of(aggregate_type, id).await;
                events.iter().any(|e| e == event_type).then_some(events)
            },
        )
        .await
    }

    /// One event's payload (its inner object), the first of its type on the aggregate.
    pub async fn event_payload(&self, aggregate_type: &str, id: &str, event_type: &str) -> Value {
        let payload: Value = sqlx::query_scalar(
            "SELECT payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = $3
              ORDER BY sequence LIMIT 1",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(event_type)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        payload[event_type].clone()
    }

    /// Makes `user` an admin and returns them signed in again (roles ride in the token).
    pub async fn make_admin(&self, user: &User) -> User {
        sqlx::query("UPDATE users SET role = 'admin' WHERE user_id = $1::uuid")
            .bind(&user.id)
            .execute(&self.db.pool)
            .await
            .unwrap();
        self.log_in(user).await
    }

    /// Logs `user` in again; the user with the new token.
    pub async fn log_in(&self, user: &User) -> User {
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": user.username, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        User {
            token: body["token"].as_str().unwrap().to_owned(),
            ..user.clone()
        }
    }
}

/// A seller, a buyer, the seller's listing and the buyer's pending request on it.
pub struct Deal {
    pub seller: User,
    pub buyer: User,
    pub listing: String,
    pub placed: Placed,
}

impl TestApp {
    /// A fresh deal: a listing at `price` and a paid, pending request for it.
    pub async fn pending_deal(&self, title: &str, price: i64) -> Deal {
        let seller = self.signup("seller").await;
        let buyer = self.signup("buyer").await;
        let (listing, _) = self.register_listing(&seller, title, price).await;
        let placed = self.place_request(&buyer, &listing).await;
        Deal {
            seller,
            buyer,
            listing,
            placed,
        }
    }

    /// Waits until the request is rejected; returns the rejection's payload.
    pub async fn wait_rejection(&self, request_id: &str) -> Value {
        self.wait_event("purchase_request", request_id, "PurchaseRequestRejected")
            .await;
        self.event_payload("purchase_request", request_id, "PurchaseRequestRejected")
            .await
    }
}

impl TestApp {
    /// Waits until every subscriber has applied the whole log and the saga's outbox is
    /// empty, twice in a row (settling appends events the views then apply).
    pub async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut quiet = 0;
        while quiet < 3 {
            let busy: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM subscription_checkpoints c
                          WHERE EXISTS (SELECT 1 FROM events e WHERE (e.transaction_id, e.global_position)
                                                                   > (c.transaction_id, c.global_position)))
                      + (SELECT count(*) FROM settlement.outbox WHERE status = 'pending')",
            )
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
            quiet = if busy == 0 { quiet + 1 } else { 0 };
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for the views and the saga to settle"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `GET path` as `user`, expecting 200; the body.
    pub async fn read(&self, user: &User, path: &str) -> Value {
        let response = self.get(user, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }
}

impl TestApp {
    /// Another application over this one's database and gateway (an API replica or a
    /// worker, by `settings.role`); it runs until stopped or dropped.
    pub async fn serve_also(&self, mut settings: Settings) -> Served {
        settings.gateway = self.gateway.clone();
        let application = Application::build(settings, self.db.pool.clone())
            .await
            .unwrap();
        let (stop, shutdown) = Shutdown::new();
        let running = tokio::spawn(application.run_until_stopped(shutdown));
        Served { stop, running }
    }
}

/// An application a test started with [`TestApp::serve_also`].
pub struct Served {
    stop: ShutdownTrigger,
    running: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Served {
    /// Stops it and waits until every one of its tasks has finished.
    pub async fn stop(self) {
        self.stop.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.running).await;
    }
}

/// Runs the `carrot` binary with `args` against `database_url`.
pub fn carrot_cli(args: &[&str], database_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_carrot"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("CARROT_LOG", "error")
        .output()
        .unwrap()
}

impl TestApp {
    /// Readiness's JSON detail, asked anonymously, whatever its status.
    pub async fn readiness(&self) -> Value {
        let response = self.client.get(self.url("/health/ready")).send().await;
        response.unwrap().json().await.unwrap()
    }

    /// The `/metrics` page, asked anonymously.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await;
        response.unwrap().text().await.unwrap()
    }
}

/// A PostgreSQL cluster of its own, started from the test cluster's template (so its
/// transaction counter starts where the test cluster's did); stopped when dropped.
pub async fn throwaway_cluster() -> carrot_projections::postgres::embedded::EmbeddedPostgres {
    tokio::task::spawn_blocking(carrot_projections::testing::throwaway_cluster)
        .await
        .unwrap()
        .unwrap()
}
