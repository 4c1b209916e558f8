//! Idempotency keys keep only final answers: a transient refusal leaves the key free for a
//! retry that runs again, a 5xx keeps the request's fingerprint, `/auth` answers (tokens)
//! are never stored, and a client that gives up still leaves a final answer to replay.

use std::time::Duration;

use carrot_api::limits::{LimitConfig, Rate};
use carrot_api::payment::{BreakerConfig, SimulationProfile};
use carrot_api::startup::Settings;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, eventually, spawn_app, spawn_app_with, test_settings};
use crate::helpers::{TestApp, User};

const KEY: &str = "buy-it-once";

impl TestApp {
    /// `POST /listings/{id}/requests` with [`KEY`], through `client`, with an optional body.
    async fn keyed_request(
        &self,
        client: &reqwest::Client,
        buyer: &User,
        listing: &str,
        body: Option<Value>,
    ) -> reqwest::Result<Response> {
        let call = client
            .post(self.url(&format!("/listings/{listing}/requests")))
            .bearer_auth(&buyer.token)
            .header("idempotency-key", KEY);
        match body {
            Some(body) => call.json(&body),
            None => call,
        }
        .send()
        .await
    }

    /// The stored state of `user`'s key and whether a response is kept with it.
    async fn key_row(&self, user: &User, key: &str) -> Option<(String, bool)> {
        sqlx::query_as(
            "SELECT state, response_body IS NOT NULL FROM idempotency_keys
              WHERE user_id = $1::uuid AND key = $2",
        )
        .bind(&user.id)
        .bind(key)
        .fetch_optional(&self.db.pool)
        .await
        .unwrap()
    }
}

/// A transient refusal of a purchase request: how to cause it and how it ends.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// The buyer is over their rate limit: 429 until it refills (4 s).
    RateLimited,
    /// Every gateway call fails: 503 until it is healthy again.
    GatewayDown,
    /// The circuit is open: 503 without calling the gateway, until a trial closes it.
    CircuitOpen,
}

impl Fault {
    fn settings(self) -> Settings {
        let mut settings = test_settings();
        match self {
            Fault::RateLimited => {
                settings.limits = LimitConfig {
                    per_user: Rate::new(0.25, 1),
                    per_address: None,
                    trust_forwarded_for: false,
                }
            }
            Fault::GatewayDown => {}
            Fault::CircuitOpen => {
                settings.breaker = BreakerConfig {
                    window: 4,
                    min_calls: 2,
                    open_for: Duration::from_secs(3),
                    half_open_calls: 1,
                    ..BreakerConfig::default()
                }
            }
        }
        settings
    }

    fn refusal(self) -> (StatusCode, &'static str) {
        match self {
            Fault::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Fault::GatewayDown | Fault::CircuitOpen => {
                (StatusCode::SERVICE_UNAVAILABLE, "payment_unavailable")
            }
        }
    }

    async fn cause(self, app: &TestApp, buyer: &User, listing: &str) {
        match self {
            Fault::RateLimited => {
                let ok = app.get(buyer, "/mypage").send().await.unwrap();
                assert_eq!(ok.status(), StatusCode::OK, "the burst used up");
            }
            Fault::GatewayDown => app.gateway.set_profile(down()),
            Fault::CircuitOpen => {
                app.gateway.set_profile(down());
                for name in ["x", "y"] {
                    let other = app.signup(name).await;
                    let _ = app.request_listing(&other, listing, None).await;
                }
                // The gateway is fine again; only the open circuit refuses now.
                app.gateway.set_profile(SimulationProfile::default());
            }
        }
    }

    fn end(self, app: &TestApp) {
        if let Fault::GatewayDown = self {
            app.gateway.set_profile(SimulationProfile::default());
        }
    }
}

fn down() -> SimulationProfile {
    SimulationProfile {
        down: true,
        ..SimulationProfile::default()
    }
}

#[tokio::test]
async fn transient_refusals_are_not_kept_and_a_retry_with_the_key_runs_again() {
    for fault in [Fault::RateLimited, Fault::GatewayDown, Fault::CircuitOpen] {
        let app = spawn_app_with(fault.settings()).await;
        let seller = app.signup("seller").await;
        let buyer = app.signup("buyer").await;
        let (listing, _) = app.register_listing(&seller, "Kayak", 90_000).await;
        fault.cause(&app, &buyer, &listing).await;

        let (status, code) = fault.refusal();
        let refused = app.keyed_request(&app.client, &buyer, &listing, None);
        assert_problem(refused.await.unwrap(), status, code).await;
        assert_eq!(
            app.key_row(&buyer, KEY).await,
            Some(("retryable".to_owned(), false)),
            "{fault:?}: not kept"
        );

        fault.end(&app);
        let placed = eventually(&format!("{fault:?} to end"), || async {
            let response = app.keyed_request(&app.client, &buyer, &listing, None);
            let response = response.await.unwrap();
            (response.status() != status).then_some(response)
        })
        .await;
        assert_eq!(placed.status(), StatusCode::CREATED, "{fault:?}: ran again");
        assert!(!placed.headers().contains_key("idempotent-replayed"));
        let placed: Value = placed.json().await.unwrap();

        let again = app.keyed_request(&app.client, &buyer, &listing, None);
        let again = again.await.unwrap();
        assert_eq!(again.headers()["idempotent-replayed"], "true", "{fault:?}");
        assert_eq!(again.json::<Value>().await.unwrap(), placed);
        let charged = format!("capture:{}", placed["payment_id"].as_str().unwrap());
        assert!(
            app.gateway_calls("capture")
                .iter()
                .any(|(k, _)| *k == charged),
            "{fault:?}: charged"
        );
    }
}

#[tokio::test]
async fn after_a_5xx_the_key_stays_bound_to_its_request_and_charges_once() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Piano", 500_000).await;
    let offer = || Some(json!({"price": 400_000}));
    app.gateway.set_profile(down());
    let failed = app.keyed_request(&app.client, &buyer, &listing, None);
    assert_problem(
        failed.await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE,
        "payment_unavailable",
    )
    .await;

    // Another body under the same key is refused before anything runs, while the gateway is
    // down and after it recovers: it can never derive a second payment.
    for phase in ["down", "recovered"] {
        let other = app.keyed_request(&app.client, &buyer, &listing, offer());
        let body = assert_problem(
            other.await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        )
        .await;
        assert!(body["detail"].is_string(), "{phase}");
        app.gateway.set_profile(SimulationProfile::default());
    }
    let placed = app.keyed_request(&app.client, &buyer, &listing, None);
    assert_eq!(placed.await.unwrap().status(), StatusCode::CREATED);
    let other = app.keyed_request(&app.client, &buyer, &listing, offer());
    assert_eq!(
        other.await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(app.gateway_calls("capture").len(), 1, "one payment");
}

#[tokio::test]
async fn auth_answers_are_never_stored_under_a_key() {
    let app = spawn_app().await;
    let username = format!("keyed_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let credentials = json!({"username": username, "password": "correct horse battery"});
    // (path, first answer, the same call again)
    let cases = [
        ("/auth/signup", StatusCode::CREATED, StatusCode::CONFLICT),
        ("/auth/login", StatusCode::OK, StatusCode::OK),
    ];
    let mut tokens = Vec::new();
    for (path, first, again) in cases {
        let send = || {
            app.client
                .post(app.url(path))
                .header("idempotency-key", "auth-key")
                .json(&credentials)
                .send()
        };
        let response = send().await.unwrap();
        assert_eq!(response.status(), first, "{path}");
        let body: Value = response.json().await.unwrap();
        tokens.push(body["token"].as_str().unwrap().to_owned());
        let response = send().await.unwrap();
        assert_eq!(response.status(), again, "{path} again");
        assert!(!response.headers().contains_key("idempotent-replayed"));
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    for token in tokens {
        let holding: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM idempotency_keys
              WHERE position(convert_to($1, 'UTF8') IN response_body) > 0",
        )
        .bind(&token)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        assert_eq!(holding, 0, "a token is stored");
    }
}

#[tokio::test]
async fn a_client_that_gives_up_still_leaves_a_final_answer_that_its_retry_replays() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Sofa", 70_000).await;
    app.gateway.set_profile(SimulationProfile {
        latency_ms: 800..=800,
        ..SimulationProfile::default()
    });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let gave_up = app.keyed_request(&impatient, &buyer, &listing, None).await;
    assert!(gave_up.unwrap_err().is_timeout());

    eventually("the abandoned call's answer to be kept", || async {
        let row = app.key_row(&buyer, KEY).await;
        (row == Some(("done".to_owned(), true))).then_some(())
    })
    .await;
    let retried = app.keyed_request(&app.client, &buyer, &listing, None);
    let retried = retried.await.unwrap();
    assert_eq!(retried.status(), StatusCode::CREATED);
    assert_eq!(retried.headers()["idempotent-replayed"], "true");
    let captures = app.gateway_calls("capture");
    assert_eq!(captures.len(), 1);
    assert_eq!(captures[0].1, 1, "the gateway saw one call");
}
