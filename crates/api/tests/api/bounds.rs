//! What a caller controls is bounded (issue 13, item 6): a request id, metric labels, the
//! cost and the text of a readiness probe, cursors, the size of a sales page, what a
//! seller may read, and the checks a forged consistency token costs. Each test fails
//! without its bound; costs are counted (statements, checks), never timed.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_api::startup::ServeRole;
use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{assert_problem, refused, spawn_app, spawn_app_with, test_settings, TestApp};

/// `GET /metrics`'s text.
async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

/// The value of the series named exactly `series` (0 when absent).
fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(series))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// `POST /listings` with `x-request-id: id`; returns the id echoed and the one stored in
/// the registration's metadata.
async fn register_with_request_id(app: &TestApp, id: HeaderValue) -> (String, String) {
    let seller = app.signup("seller").await;
    let response = app
        .post(&seller, "/listings")
        .header("x-request-id", id)
        .json(&serde_json::json!({"title": "Lamp", "description": "warm", "price": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let echoed = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let stored: String = sqlx::query_scalar(
        "SELECT metadata ->> 'http_request_id' FROM events
          WHERE aggregate_type = 'listing' AND aggregate_id = $1",
    )
    .bind(body["listing_id"].as_str().unwrap())
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    (echoed, stored)
}

#[tokio::test]
async fn a_request_id_out_of_bounds_is_replaced_before_it_is_stored_or_echoed() {
    let app = spawn_app().await;
    let huge = "r".repeat(200 * 1024);
    let out_of_bounds = [
        HeaderValue::from_str(&huge).unwrap(),
        HeaderValue::from_str(&"r".repeat(129)).unwrap(),
        HeaderValue::from_static("two words"),
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).unwrap(),
        HeaderValue::from_static("tab\there"),
    ];
    for sent in out_of_bounds {
        let (echoed, stored) = register_with_request_id(&app, sent.clone()).await;
        assert!(
            echoed.as_bytes() != sent.as_bytes(),
            "the caller's id was kept"
        );
        assert!(
            uuid::Uuid::try_parse(&echoed).is_ok(),
            "a fresh id: {echoed}"
        );
        assert_eq!(stored, echoed, "the metadata holds the replacement");
    }
    // Within bounds, the caller's own id is kept.
    let own = format!("trace-{}", "0".repeat(122));
    assert_eq!(own.len(), 128);
    let (echoed, stored) =
        register_with_request_id(&app, HeaderValue::from_str(&own).unwrap()).await;
    assert_eq!(
        (echoed.as_str(), stored.as_str()),
        (own.as_str(), own.as_str())
    );
    // Nothing anywhere in the log grew with the caller's input.
    let longest: i32 = sqlx::query_scalar("SELECT max(length(metadata::text)) FROM events")
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert!(longest < 2048, "metadata of {longest} bytes");
}

#[tokio::test]
async fn metric_labels_take_no_raw_method_or_path() {
    let app = spawn_app().await;
    let before = scrape(&app).await;
    for n in 0..5 {
        let method = Method::from_bytes(format!("FOO{n}234").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let stray = format!("/no/such/path-{n}-{}", uuid::Uuid::new_v4());
        let response = app.client.get(app.url(&stray)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    let after = scrape(&app).await;
    assert!(!after.contains("FOO"), "{after}");
    assert!(!after.contains("/no/such"), "{after}");
    let other =
        "carrot_http_requests_total{method=\"other\",route=\"/health/live\",status=\"405\"}";
    assert_eq!(
        counter(&after, other) - counter(&before, other),
        5.0,
        "{after}"
    );
    let unmatched = "carrot_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(
        counter(&after, unmatched) - counter(&before, unmatched),
        5.0
    );
    // Every method label is one of a fixed set.
    for line in after.lines().filter(|l| l.contains("method=\"")) {
        let method = line
            .split("method=\"")
            .nth(1)
            .and_then(|r| r.split('"').next());
        assert!(
            matches!(
                method,
                Some(
                    "GET"
                        | "HEAD"
                        | "POST"
                        | "PUT"
                        | "PATCH"
                        | "DELETE"
                        | "OPTIONS"
                        | "TRACE"
                        | "CONNECT"
                        | "other"
                )
            ),
            "{line}"
        );
    }
}

#[tokio::test]
async fn readiness_probes_share_one_progress_read_and_show_no_error_text() {
    let mut settings = test_settings();
    // API only: no runner clears the error set below. The progress is read once an hour.
    settings.role = ServeRole::Api;
    settings.progress_refresh = Duration::from_secs(3600);
    let app = spawn_app_with(settings).await;
    let secret = "relation \"catalog.listings\" violates check constraint on row 7f3a";
    sqlx::query(
        "INSERT INTO subscription_checkpoints (subscriber, last_error) VALUES ('catalog', $1)",
    )
    .bind(secret)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let reads = "carrot_subscription_status_reads_total";
    let before = counter(&scrape(&app).await, reads);
    for _ in 0..20 {
        let response = app
            .client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = response.text().await.unwrap();
        assert!(!body.contains("violates"), "error text shown: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        let catalog = &body["subscriptions"][0];
        assert_eq!(catalog["name"], "catalog");
        assert_eq!(catalog["failing"], true);
    }
    let after = counter(&scrape(&app).await, reads);
    // One read for the first scrape and twenty probes (it was one per probe and scrape).
    assert_eq!(after - before, 1.0, "{before} then {after} reads");
}

#[tokio::test]
async fn a_cursor_out_of_range_is_a_client_error_not_a_500() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    // 6000 BC: chrono holds it, PostgreSQL's timestamptz does not.
    let ancient = format!("-250000000000000000_{id}");
    let huge = format!("99999999999999999999999999_{id}");
    for path in ["/listings", "/mypage/purchases", "/mypage/sales"] {
        for cursor in [&ancient, &huge] {
            let body = refused(&app, &user, &format!("{path}?cursor={cursor}")).await;
            assert_eq!(body["errors"][0]["field"], "cursor", "{path}: {body}");
        }
    }
    // A notification id names a bigint: a transaction id beyond it is no id of ours.
    let response = app
        .get(&user, "/notifications?cursor=18446744073709551615.1")
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn sales_are_pages_of_listings_each_with_a_bounded_list_of_requests() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (older, _) = app.register_listing(&seller, "Older", 3_000).await;
    let (busy, _) = app.register_listing(&seller, "Busy", 5_000).await;
    // A buyer alone decides how many requests a listing gathers: request, cancel (refunded),
    // request again.
    for _ in 0..21 {
        let placed = app.place_request(&buyer, &busy).await;
        app.act_ok(&buyer, &placed.request_id, "cancel", "cancelled")
            .await;
    }
    app.settle().await;

    let first = app.read(&seller, "/mypage/sales?limit=1").await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["listing_id"], busy.as_str());
    assert_eq!(items[0]["requests"].as_array().unwrap().len(), 20);
    assert_eq!(items[0]["more_requests"], true);
    assert_eq!(items[0]["requests"][0]["status"], "cancelled");
    assert_eq!(items[0]["requests"][0]["payment"]["status"], "refunded");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = app
        .read(&seller, &format!("/mypage/sales?limit=1&cursor={cursor}"))
        .await;
    assert_eq!(second["items"][0]["listing_id"], older.as_str());
    assert_eq!(second["items"][0]["requests"], Value::Array(vec![]));
    assert_eq!(second["items"][0]["more_requests"], false);
    assert_eq!(second["next_cursor"], Value::Null);
    for limit in ["0", "101", "x"] {
        let response = app
            .get(&seller, &format!("/mypage/sales?limit={limit}"))
            .send()
            .await
            .unwrap();
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
}

#[tokio::test]
async fn a_seller_cannot_read_the_payment_of_a_request_hidden_from_them() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Piano", 900_000).await;
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    let body = assert_problem(response, StatusCode::PAYMENT_REQUIRED, "payment_declined").await;
    let request = body["request_id"].as_str().unwrap();
    let payment = body["payment_id"].as_str().unwrap();
    app.settle().await;

    let paid = app.read(&buyer, &format!("/payments/{payment}")).await;
    assert_eq!(paid["status"], "failed");
    for path in [
        format!("/requests/{request}"),
        format!("/payments/{payment}"),
    ] {
        let response = app.get(&seller, &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A request that reached the seller: its payment is theirs to read, as it was.
    app.gateway.set_profile(SimulationProfile::default());
    let placed = app.place_request(&buyer, &listing).await;
    app.settle().await;
    let seen = app
        .read(&seller, &format!("/payments/{}", placed.payment_id))
        .await;
    assert_eq!(seen["status"], "captured");
}

#[tokio::test]
async fn a_forged_future_consistency_token_costs_one_check_per_poll_interval() {
    let mut settings = test_settings();
    settings.consistency_wait = Duration::from_secs(2);
    settings.workers.runner.poll_interval = Duration::from_secs(1);
    let app = spawn_app_with(settings).await;
    let user = app.signup("reader").await;
    app.settle().await;
    let checks = "carrot_consistency_checks_total";
    let before = counter(&scrape(&app).await, checks);
    let response = app
        .get(&user, "/mypage")
        .header(
            "x-consistency-token",
            "9000000000000000000.9000000000000000000",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-consistency"], "stale");
    let spent = counter(&scrape(&app).await, checks) - before;
    // One at once, then at most one per second of the 2 s wait (it was about a hundred).
    assert!((1.0..=3.0).contains(&spent), "{spent} checks");
}

#[tokio::test]
async fn a_nul_byte_anywhere_a_caller_types_text_is_a_clear_4xx_never_a_500() {
    // PostgreSQL text cannot hold NUL: each of these reached the database and answered 500
    // (the first one found by the fuzzer, the others by hand).
    let app = spawn_app().await;
    let user = app.signup("nul").await;
    let admin = app.make_admin(&app.signup("nul_admin").await).await;
    let login = app
        .client
        .post(app.url("/auth/login"))
        .json(&serde_json::json!({"username": "ab\u{0}c", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let search = app.get(&user, "/listings?q=a%00b").send().await.unwrap();
    assert_problem(
        search,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let cursor = app
        .get(&admin, "/admin/dead-letters?cursor=a%00b")
        .send()
        .await
        .unwrap();
    assert_problem(
        cursor,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let retry = app
        .post(&admin, "/admin/dead-letters/a%00b/retry")
        .send()
        .await
        .unwrap();
    assert_problem(retry, StatusCode::NOT_FOUND, "not_found").await;
}
