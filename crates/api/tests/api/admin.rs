//! Dead letters: a saga command that keeps failing gives up, operators see it over HTTP and
//! the CLI, and retrying it after the cause is fixed settles it once.

use std::time::Duration;

use carrot_api::payment::{BreakerConfig, SimulationProfile};
use carrot_projections::settlement::DispatcherConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, eventually, spawn_app_with, test_settings, Deal, TestApp};

/// Failing refunds give up after two attempts; the breaker never opens (so attempts count).
async fn app_that_gives_up_fast() -> TestApp {
    let mut settings = test_settings();
    settings.workers.dispatcher = DispatcherConfig {
        max_attempts: 2,
        retry_base: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    settings.breaker = BreakerConfig {
        min_calls: 1_000,
        window: 1_000,
        ..BreakerConfig::default()
    };
    spawn_app_with(settings).await
}

fn carrot(args: &[&str], database_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_carrot"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("CARROT_LOG", "error")
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_refund_that_keeps_failing_becomes_a_dead_letter_an_admin_can_retry() {
    let app = app_that_gives_up_fast().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Printer", 30_000).await;
    app.gateway.set_profile(SimulationProfile {
        failure_rate: 1.0,
        ..SimulationProfile::default()
    });
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    let command_id = format!("refund:{}", placed.payment_id);

    let admin = app.make_admin(&app.signup("ops").await).await;
    let letters = eventually("the refund to be dead-lettered", || async {
        let response = app.get(&admin, "/admin/dead-letters").send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        (!body["items"].as_array()?.is_empty()).then_some(body)
    })
    .await;
    let letter = &letters["items"][0];
    assert_eq!(letter["command_id"], command_id.as_str());
    assert_eq!(letter["request_id"], placed.request_id.as_str());
    assert_eq!(letter["attempts"], 2);
    assert!(letter["last_error"]
        .as_str()
        .unwrap()
        .contains("gave up after 2 attempts"));
    assert_eq!(letters["next_cursor"], Value::Null);

    // Operators only.
    let response = app
        .get(&seller, "/admin/dead-letters")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = app
        .post(&seller, &format!("/admin/dead-letters/{command_id}/retry"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;

    // The CLI shows it too.
    let listed = carrot(&["saga", "dead-letters"], &app.db.url);
    assert!(listed.status.success(), "{listed:?}");
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&command_id));

    // The cause is fixed; the admin retries; the buyer is refunded once.
    app.gateway.set_profile(SimulationProfile::default());
    let response = app
        .post(&admin, &format!("/admin/dead-letters/{command_id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    app.wait_payment(&buyer, &placed.payment_id, "refunded")
        .await;
    assert_eq!(app.gateway_calls("refund").len(), 1);
    let response = app
        .post(&admin, &format!("/admin/dead-letters/{command_id}/retry"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let listed = carrot(&["saga", "dead-letters"], &app.db.url);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("no dead letters"));
}

#[tokio::test]
async fn the_cli_grants_the_admin_role_and_retries_a_dead_letter() {
    let app = app_that_gives_up_fast().await;
    let user = app.signup("ops").await;
    let granted = carrot(&["admin", "grant", &user.username], &app.db.url);
    assert!(granted.status.success(), "{granted:?}");
    let role: String = sqlx::query_scalar("SELECT role FROM users WHERE username = $1")
        .bind(&user.username)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(role, "admin");
    let missing = carrot(&["admin", "grant", "nobody_here"], &app.db.url);
    assert!(!missing.status.success());
    let missing = carrot(
        &["saga", "dead-letters", "--retry", "refund:nothing"],
        &app.db.url,
    );
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no dead letter"));
}
