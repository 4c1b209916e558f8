//! A poison event (issue 14): an event the saga and the views cannot read is held aside
//! with its error while every other trade settles; an operator sees it, in the admin API,
//! readiness and `/metrics`; once the row is mended and a retry asked for, it is applied,
//! once.

use carrot_api::startup::ServeRole;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{carrot_cli, eventually, spawn_app_with, test_settings, TestApp, User};

/// Damages the request's rejection as a newer writer or a bad hand edit could: a field no
/// reader can decode. Returns the payload as it was.
async fn damage(app: &TestApp, request_id: &str) -> Value {
    let original: Value = sqlx::query_scalar(
        "SELECT payload FROM events
          WHERE aggregate_type = 'purchase_request' AND aggregate_id = $1
            AND event_type = 'PurchaseRequestRejected'",
    )
    .bind(request_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    mend(app, request_id, &{
        let mut damaged = original.clone();
        damaged["PurchaseRequestRejected"]["rejected_at"] = Value::from("the day before");
        damaged
    })
    .await;
    original
}

async fn mend(app: &TestApp, request_id: &str, payload: &Value) {
    sqlx::query(
        "UPDATE events SET payload = $2
          WHERE aggregate_type = 'purchase_request' AND aggregate_id = $1
            AND event_type = 'PurchaseRequestRejected'",
    )
    .bind(request_id)
    .bind(payload)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

/// Each subscriber's quarantine count, by name.
async fn quarantined(app: &TestApp, admin: &User) -> Vec<(String, i64)> {
    let body = app.read(admin, "/admin/subscriptions").await;
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["quarantined"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn ask_retry(app: &TestApp, admin: &User, subscriber: &str) -> Value {
    let response = app
        .post(
            admin,
            &format!("/admin/subscriptions/{subscriber}/quarantine/retry"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_poison_event_is_held_the_rest_settles_and_once_mended_it_is_applied_once() {
    // The API alone first, so the damage is in the log before any worker reads it.
    let mut api = test_settings();
    api.role = ServeRole::Api;
    let app = spawn_app_with(api).await;
    let poisoned = app.pending_deal("Tent", 80_000).await;
    let healthy = app.pending_deal("Stove", 20_000).await;
    for deal in [&poisoned, &healthy] {
        app.act_ok(&deal.seller, &deal.placed.request_id, "reject", "rejected")
            .await;
    }
    let original = damage(&app, &poisoned.placed.request_id).await;

    let mut worker = test_settings();
    worker.role = ServeRole::Worker;
    let _worker = app.serve_also(worker).await;

    // Every other trade settles: the healthy one is refunded, the poisoned one waits.
    app.wait_event("payment", &healthy.placed.payment_id, "PaymentRefunded")
        .await;
    app.settle().await;
    assert_eq!(
        app.gateway_calls("refund"),
        [(format!("refund:{}", healthy.placed.payment_id), 1)]
    );
    assert_eq!(
        app.events_of("payment", &poisoned.placed.payment_id).await,
        ["PaymentCaptureStarted", "PaymentCaptured"]
    );

    // The operator sees it: which subscriber holds what, where in the log, and why.
    let admin = app.signup("ops").await;
    let admin = app.make_admin(&admin).await;
    let counts = quarantined(&app, &admin).await;
    assert!(
        counts.contains(&("settlement".to_owned(), 1)),
        "the saga holds the poison: {counts:?}"
    );
    let held = app
        .read(&admin, "/admin/subscriptions/settlement/quarantine")
        .await;
    let poison = &held["items"][0];
    assert_eq!(poison["aggregate_type"], "purchase_request");
    assert_eq!(poison["aggregate_id"], poisoned.placed.request_id.as_str());
    assert_eq!(poison["event_type"], "PurchaseRequestRejected");
    assert!(poison["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(poison["position"].as_str().is_some_and(|p| p.contains('.')));
    assert_eq!(held["next_cursor"], Value::Null);
    let ready: Value = app.readiness().await;
    assert_eq!(
        ready["status"], "ready",
        "a quarantine does not stop serving"
    );
    let saga = ready["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "settlement")
        .unwrap();
    assert_eq!(saga["quarantined"], 1);
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains("carrot_subscription_quarantined_events{subscriber=\"settlement\"} 1"),
        "{metrics}"
    );

    let listed = carrot_cli(&["quarantine", "settlement"], &app.db.url);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains(&poisoned.placed.request_id) && listed.contains("PurchaseRequestRejected"),
        "{listed}"
    );

    // A retry before the fix: still held, tried once more, nothing moves.
    assert_eq!(ask_retry(&app, &admin, "settlement").await["held"], 1);
    eventually("the failed retry to be recorded", || async {
        let held = app
            .read(&admin, "/admin/subscriptions/settlement/quarantine")
            .await;
        let poison = &held["items"][0];
        (poison["attempts"] == 2 && poison["retry_requested"] == false).then_some(())
    })
    .await;
    assert_eq!(app.gateway_calls("refund").len(), 1);

    // The fix: the row is mended, and every subscriber holding it is asked again.
    mend(&app, &poisoned.placed.request_id, &original).await;
    let asked = carrot_cli(&["quarantine", "settlement", "--retry"], &app.db.url);
    assert!(asked.status.success(), "{asked:?}");
    for (name, count) in quarantined(&app, &admin).await {
        if count > 0 && name != "settlement" {
            assert_eq!(ask_retry(&app, &admin, &name).await["held"], count);
        }
    }
    app.wait_payment(&poisoned.buyer, &poisoned.placed.payment_id, "refunded")
        .await;
    app.settle().await;
    eventually("every quarantine to empty", || async {
        quarantined(&app, &admin)
            .await
            .iter()
            .all(|(_, n)| *n == 0)
            .then_some(())
    })
    .await;

    // Applied once: asking again changes nothing, and each refund went out once.
    assert_eq!(ask_retry(&app, &admin, "settlement").await["held"], 0);
    app.settle().await;
    assert_eq!(app.gateway_calls("refund"), {
        let mut once = vec![
            (format!("refund:{}", healthy.placed.payment_id), 1),
            (format!("refund:{}", poisoned.placed.payment_id), 1),
        ];
        once.sort();
        once
    });
    let refunds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM settlement.outbox WHERE command_id LIKE 'refund:%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(refunds, 2, "one refund decided per trade");
}

#[tokio::test]
async fn an_unknown_subscriber_has_no_quarantine_and_a_bad_cursor_is_refused() {
    let app = spawn_app_with(test_settings()).await;
    let admin = app.signup("ops").await;
    let admin = app.make_admin(&admin).await;
    for path in [
        "/admin/subscriptions/nobody/quarantine",
        "/admin/subscriptions/settlement%2F..%2Fx/quarantine",
    ] {
        let response = app.get(&admin, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response = app
        .post(&admin, "/admin/subscriptions/nobody/quarantine/retry")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .get(
            &admin,
            "/admin/subscriptions/settlement/quarantine?cursor=not-a-position",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let empty = app
        .read(&admin, "/admin/subscriptions/catalog/quarantine?limit=5")
        .await;
    assert_eq!(empty["items"], Value::Array(vec![]));
    let buyer = app.signup("buyer").await;
    let response = app
        .get(&buyer, "/admin/subscriptions/settlement/quarantine")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}
