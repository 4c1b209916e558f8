//! Hostile callers: forged and stale tokens, and callers over their rate limits.

use chrono::{Duration as Span, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use serde_json::{json, Value};

use carrot_api::auth::{AUDIENCE, ISSUER};
use carrot_api::limits::{LimitConfig, Rate};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings, TestApp, User};

/// The suite's signing secret (helpers::test_settings).
const SECRET: &[u8] = b"the test suite's own signing secret";

fn token(claims: &Value, secret: &[u8], algorithm: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// The session `user`'s own token names (a forged token must name a live one to get past
/// the session check: what is tested is the signature and the claims).
fn session_of(user: &User) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    let key = DecodingKey::from_secret(SECRET);
    jsonwebtoken::decode::<Value>(&user.token, &key, &validation)
        .unwrap()
        .claims["sid"]
        .clone()
}

fn claims(user: &User) -> Value {
    let now = Utc::now();
    json!({
        "sub": user.id, "role": "admin", "sid": session_of(user), "iss": ISSUER,
        "aud": AUDIENCE, "iat": now.timestamp(), "exp": (now + Span::minutes(10)).timestamp(),
    })
}

fn with(mut claims: Value, field: &str, value: Value) -> Value {
    claims[field] = value;
    claims
}

async fn register_with(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/listings"))
        .bearer_auth(token)
        .json(&json!({"title": "Forged", "description": "", "price": 1000}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn forged_and_stale_tokens_are_401_and_change_nothing() {
    let app = spawn_app().await;
    let user = app.signup("victim").await;
    let good = claims(&user);
    // The control: the same claims, properly signed, are accepted.
    let control = register_with(&app, &token(&good, SECRET, Algorithm::HS256)).await;
    assert_eq!(control.status(), StatusCode::CREATED);
    let before = app.event_count().await;

    // {"alg":"none","typ":"JWT"}, the real claims, no signature.
    let unsigned = {
        let real = token(&good, SECRET, Algorithm::HS256);
        let payload = real.split('.').nth(1).unwrap().to_owned();
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
    };
    let past = Utc::now() - Span::hours(2);
    let attacks = [
        ("alg none", unsigned),
        (
            "wrong secret",
            token(
                &good,
                b"somebody else's secret, 32 bytes+",
                Algorithm::HS256,
            ),
        ),
        (
            "another HMAC algorithm",
            token(&good, SECRET, Algorithm::HS512),
        ),
        (
            "expired",
            token(
                &with(
                    with(
                        good.clone(),
                        "exp",
                        json!((past + Span::minutes(10)).timestamp()),
                    ),
                    "iat",
                    json!(past.timestamp()),
                ),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong issuer",
            token(
                &with(good.clone(), "iss", json!("evil")),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong audience",
            token(
                &with(good.clone(), "aud", json!("other-api")),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "no expiry",
            token(
                &{
                    let mut c = good.clone();
                    c.as_object_mut().unwrap().remove("exp");
                    c
                },
                SECRET,
                Algorithm::HS256,
            ),
        ),
        ("a tampered payload", {
            let real = token(&good, SECRET, Algorithm::HS256);
            let other = token(
                &with(good.clone(), "sub", json!(uuid::Uuid::new_v4())),
                SECRET,
                Algorithm::HS256,
            );
            let (head, rest) = real.split_once('.').unwrap();
            let signature = rest.split_once('.').unwrap().1;
            let payload = other.split('.').nth(1).unwrap();
            format!("{head}.{payload}.{signature}")
        }),
    ];
    for (attack, forged) in attacks {
        let response = register_with(&app, &forged).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{attack}");
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let admin = app
            .client
            .get(app.url("/admin/subscriptions"))
            .bearer_auth(&forged)
            .send()
            .await
            .unwrap();
        assert_eq!(
            admin.status(),
            StatusCode::UNAUTHORIZED,
            "{attack} on an admin endpoint"
        );
    }
    assert_eq!(
        app.event_count().await,
        before,
        "no forged call appended anything"
    );
}

fn limited(per_user: Option<Rate>, per_address: Option<Rate>) -> carrot_api::startup::Settings {
    let mut settings = test_settings();
    settings.limits = LimitConfig {
        per_user,
        per_address,
        trust_forwarded_for: false,
    };
    settings
}

/// A rate so slow that nothing refills while a test runs: only the burst counts.
fn burst(n: u32) -> Option<Rate> {
    Rate::new(0.001, n)
}

#[tokio::test]
async fn a_user_over_their_limit_gets_429_with_retry_after_and_others_do_not() {
    let app = spawn_app_with(limited(burst(3), None)).await;
    let (greedy, other) = (app.signup("greedy").await, app.signup("other").await);
    for _ in 0..3 {
        let ok = app.get(&greedy, "/mypage").send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
    }
    let before = app.event_count().await;
    let refused = app
        .post(&greedy, "/listings")
        .json(&json!({"title": "One too many", "description": "", "price": 1000}))
        .send()
        .await
        .unwrap();
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.event_count().await,
        before,
        "a refused command changes nothing"
    );
    let unaffected = app.get(&other, "/mypage").send().await.unwrap();
    assert_eq!(unaffected.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_address_over_its_limit_gets_429_but_probes_still_answer() {
    let app = spawn_app_with(limited(None, burst(4))).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let response = app
            .signup_response(&json!({"username": format!("flood_{n}_{}", &uuid::Uuid::new_v4().simple().to_string()[..6]), "password": "correct horse battery"}))
            .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        }
    }
    assert_eq!(
        statuses,
        [
            [StatusCode::CREATED; 4].as_slice(),
            &[StatusCode::TOO_MANY_REQUESTS; 2]
        ]
        .concat()
    );
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(users, 4, "refused signups created nobody");
    for probe in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let response = app.client.get(app.url(probe)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{probe}");
    }
}

/// Strings that would do something if they were ever interpreted instead of stored.
const HOSTILE: [&str; 6] = [
    "'; DROP TABLE events; --",
    "\" OR 1=1 --",
    "<script>alert('x')</script>",
    "{{7*7}} ${7*7} %s %n",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    "\u{202e}txt.exe \\x00 \\u0000 ☃ 당근",
];

#[tokio::test]
async fn hostile_strings_are_stored_and_returned_verbatim_never_executed() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    for (n, hostile) in HOSTILE.into_iter().enumerate() {
        let body = json!({"title": hostile, "description": hostile, "price": 1000 + n, "category": hostile});
        let created = app.post_listing(&seller, &body).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{hostile}");
        let created: Value = created.json().await.unwrap();
        let token = created["consistency_token"].as_str().unwrap();
        let listing = app
            .listing_after(&seller, created["listing_id"].as_str().unwrap(), token)
            .await;
        for field in ["title", "description", "category"] {
            assert_eq!(listing[field], hostile, "{field} of {hostile:?}");
        }
        for (parameter, value) in [
            ("q", hostile),
            ("status", hostile),
            ("cursor", hostile),
            ("limit", hostile),
        ] {
            let response = app
                .client
                .get(app.url("/listings"))
                .query(&[(parameter, value)])
                .bearer_auth(&seller.token)
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status == StatusCode::OK
                    || status == StatusCode::UNPROCESSABLE_ENTITY
                    || status == StatusCode::BAD_REQUEST,
                "{parameter}={hostile:?} answered {status}"
            );
        }
        let found = app
            .client
            .get(app.url("/listings"))
            .query(&[("q", hostile)])
            .bearer_auth(&seller.token)
            .send()
            .await
            .unwrap();
        let found: Value = found.json().await.unwrap();
        assert!(
            found["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["title"] == hostile),
            "a search for {hostile:?} finds it as text"
        );
    }
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(tables, 1, "the users table is whole");
}

#[tokio::test]
async fn deeply_nested_json_is_refused_with_400_and_changes_nothing() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let depth = 5_000;
    let nested = format!(
        "{{\"title\": {}1{}, \"description\": \"\", \"price\": 1000}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let before = app.event_count().await;
    let response = app
        .post(&seller, "/listings")
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(app.event_count().await, before);
    let alive = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idempotency_key_without_a_token_stores_nothing_and_answers_401() {
    let app = spawn_app().await;
    for body in [json!({"title": "a"}), json!({"title": "b"})] {
        let response = app
            .client
            .post(app.url("/listings"))
            .header("idempotency-key", "anonymous-key")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM idempotency_keys")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0);
}
