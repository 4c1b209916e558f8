//! `spawn_app()`: a fresh database, the application on a free port, and typed helpers;
//! `trade.rs`: a trade's calls and the waits for what follows them.

mod trade;

pub use trade::{Deal, Placed};

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
        read_replica: None,
        access_log: carrot_api::access_log::AccessLog::All,
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

pub use crate::common::User;

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
/// `GET path` as `user`, refused with 422 `validation_failed`: the problem's body.
pub async fn refused(app: &TestApp, user: &User, path: &str) -> Value {
    let response = app.get(user, path).send().await.unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await
}

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

/// `carrot ARGS` on a thread of its own, while this test's server and workers go on: they
/// run on the test's one thread, which a blocking call would stop for as long as the
/// command runs (a command that waits for a view would then wait for nothing).
pub async fn carrot_cli_alongside(args: &[&str], database_url: &str) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        carrot_cli(&args, &url)
    })
    .await
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
