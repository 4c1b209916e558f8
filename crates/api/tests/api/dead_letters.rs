//! An operator's decisions on the saga's dead letters over HTTP: put back in line or
//! discarded with a reason, each an event with the operator's id in the trade's timeline;
//! a declined transfer is never discarded; bad input changes nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, eventually, spawn_app, TestApp, User};

/// A saga command of `request` stored in a form this dispatcher cannot read (as a bug or a
/// botched migration would leave one): the dispatcher dead-letters it. Returns its id.
pub async fn unreadable_letter(app: &TestApp, request: &str) -> String {
    let command_id = format!("complete:{request}");
    sqlx::query(
        "INSERT INTO settlement.outbox (command_id, request_id, command, next_attempt_at)
         VALUES ($1, $2::uuid, $3, '-infinity')",
    )
    .bind(&command_id)
    .bind(request)
    .bind(json!({"command": "CompleteRequest", "request_id": 42}))
    .execute(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('carrot_outbox', '')")
        .execute(&app.db.pool)
        .await
        .unwrap();
    wait_dead(app, &command_id).await;
    command_id
}

/// Waits until `command_id` is a dead letter.
pub async fn wait_dead(app: &TestApp, command_id: &str) {
    eventually(&format!("{command_id} to be a dead letter"), || async {
        let status: String =
            sqlx::query_scalar("SELECT status FROM settlement.outbox WHERE command_id = $1")
                .bind(command_id)
                .fetch_one(&app.db.pool)
                .await
                .ok()?;
        (status == "dead").then_some(())
    })
    .await;
}

async fn outbox_status(app: &TestApp, command_id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM settlement.outbox WHERE command_id = $1")
        .bind(command_id)
        .fetch_one(&app.db.pool)
        .await
        .unwrap()
}

async fn discard(app: &TestApp, admin: &User, command_id: &str, reason: &str) -> reqwest::Response {
    app.post(admin, &format!("/admin/dead-letters/{command_id}/discard"))
        .json(&json!({ "reason": reason }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_dead_letter_retried_then_discarded_is_in_the_log_and_the_trade_timeline_with_the_operator(
) {
    let app = spawn_app().await;
    let deal = app.pending_deal("Kettle", 25_000).await;
    let request = deal.placed.request_id.clone();
    let admin = app.make_admin(&app.signup("ops").await).await;
    let letter = unreadable_letter(&app, &request).await;

    // Back in line: it runs, cannot be read again, and is dead again.
    let retry = format!("/admin/dead-letters/{letter}/retry");
    let response = app.post(&admin, &retry).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["request_id"], request.as_str());
    assert!(body["consistency_token"].is_string());
    wait_dead(&app, &letter).await;

    // Bad input is refused and changes nothing.
    let events_before = app.events_of("dead_letter", &letter).await;
    assert_problem(
        discard(&app, &admin, &letter, "  ").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(
        discard(&app, &deal.seller, &letter, "not mine to discard").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(app.events_of("dead_letter", &letter).await, events_before);
    assert_eq!(outbox_status(&app, &letter).await, "dead");

    // Discarded with a reason: it never runs, and is no longer listed.
    let why = "settled in person; ticket 7731";
    let response = discard(&app, &admin, &letter, why).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "discarded");
    assert_eq!(outbox_status(&app, &letter).await, "discarded");
    let listed = app.read(&admin, "/admin/dead-letters").await;
    assert_eq!(listed["items"], json!([]));
    assert_problem(
        discard(&app, &admin, &letter, why).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    assert_eq!(
        app.events_of("dead_letter", &letter).await,
        ["DeadLetterRetried", "DeadLetterDiscarded"]
    );
    let discarded = app
        .event_payload("dead_letter", &letter, "DeadLetterDiscarded")
        .await;
    assert_eq!(discarded["by"]["user"], admin.id.as_str());
    assert_eq!(discarded["reason"], why);
    assert_eq!(discarded["request_id"], request.as_str());

    app.settle().await;
    let detail = app.read(&deal.buyer, &format!("/requests/{request}")).await;
    let timeline = detail["timeline"].as_array().unwrap();
    let decided: Vec<&Value> = timeline
        .iter()
        .filter(|e| e["event"].as_str().unwrap_or("").starts_with("DeadLetter"))
        .collect();
    assert_eq!(decided.len(), 2, "{timeline:?}");
    assert_eq!(decided[1]["reason"], why);
    assert_eq!(decided[1]["actor"], admin.id.as_str());
    assert_eq!(decided[1]["command_id"], letter.as_str());
}

#[tokio::test]
async fn a_declined_refund_is_never_discarded() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Printer", 30_000).await;
    app.gateway
        .set_profile(carrot_api::payment::SimulationProfile {
            transfer_decline_rate: 1.0,
            ..Default::default()
        });
    app.act_ok(&deal.seller, &deal.placed.request_id, "reject", "rejected")
        .await;
    let letter = format!("refund:{}", deal.placed.payment_id);
    wait_dead(&app, &letter).await;
    let admin = app.make_admin(&app.signup("ops").await).await;
    assert_problem(
        discard(&app, &admin, &letter, "the buyer will not mind").await,
        StatusCode::CONFLICT,
        "declined_transfer",
    )
    .await;
    assert_eq!(outbox_status(&app, &letter).await, "dead");
    assert!(app.events_of("dead_letter", &letter).await.is_empty());
}
