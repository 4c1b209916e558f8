//! Events this code cannot read. A type or version written by newer code stops every
//! subscriber that reads its aggregate at that event, naming where it is (never a skip);
//! readiness, `/metrics` and `GET /admin/subscriptions` show it, and `carrot events
//! --check` counts it. Once code that reads it is there (here: the row as this code reads
//! it), the subscribers go on from it. A subscriber that does not read its aggregate is not
//! stopped by it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{carrot_cli, eventually, spawn_app, TestApp};

/// A subscriber's row of the admin's subscription list.
async fn subscription(app: &TestApp, admin: &crate::helpers::User, name: &str) -> Value {
    let body = app.read(admin, "/admin/subscriptions").await;
    let items = body["items"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn an_event_newer_than_the_code_stops_its_readers_at_it_and_says_where() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let admin = app.make_admin(&app.signup("ops").await).await;
    let (listing, _) = app.register_listing(&seller, "Desk lamp", 9_000).await;
    app.settle().await;

    // What a newer release would write: a version of ListingWithdrawn this code predates.
    let position: String = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('listing', $1, 2, 'ListingWithdrawn', '9.0',
                 jsonb_build_object('ListingWithdrawn', jsonb_build_object(
                     'listing_id', $1, 'withdrawn_at', '2026-03-01T09:00:00Z')), '{}')
         RETURNING transaction_id::text || '.' || global_position",
    )
    .bind(&listing)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    let (later, _) = app.register_listing(&seller, "Oak chair", 5_000).await;

    let status = eventually("the catalog to stop at the event", || async {
        let status = subscription(&app, &admin, "catalog").await;
        let error = status["last_error"].as_str()?.to_owned();
        error.contains(&position).then_some(status)
    })
    .await;
    let error = status["last_error"].as_str().unwrap();
    assert!(
        error.contains("ListingWithdrawn 9.0 is newer than this code reads (1.0)"),
        "{error}"
    );
    assert!(error.contains("no event is skipped"), "{error}");
    // A subscriber that reads no listing goes past it, though its runner shares the
    // process's reads of the log with the catalog's (`log/shared.rs`).
    eventually("the payments view to go past the event", || async {
        let status = subscription(&app, &admin, "payments").await;
        (status["lag_events"] == 0 && status["last_error"].is_null()).then_some(())
    })
    .await;
    // Stopped, not skipped: the listing registered after it is not in the catalog.
    let response = app
        .get(&seller, &format!("/listings/{later}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let readiness = app.readiness().await;
    let catalog = readiness["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "catalog")
        .unwrap();
    assert_eq!(catalog["failing"], true);
    let metrics = app.metrics_text().await;
    assert!(metrics.contains("carrot_subscription_failing{subscriber=\"catalog\"} 1"));
    let checked = carrot_cli(&["events", "--check"], &app.db.url);
    assert!(!checked.status.success(), "{checked:?}");
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(
        report.contains(&format!("first unreadable at {position}")),
        "{report} {checked:?}"
    );
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        stderr.contains("1 event(s) this code cannot read"),
        "{stderr}"
    );

    // Code that reads it is deployed: the catalog goes on from that event, in order.
    sqlx::query("UPDATE events SET event_version = '1.0' WHERE event_version = '9.0'")
        .execute(&app.db.pool)
        .await
        .unwrap();
    eventually("the catalog to go on", || async {
        let response = app
            .get(&seller, &format!("/listings/{later}"))
            .send()
            .await
            .ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    let withdrawn = app.read(&seller, &format!("/listings/{listing}")).await;
    assert_eq!(withdrawn["status"], "withdrawn");
    let checked = carrot_cli(&["events", "--check"], &app.db.url);
    assert!(checked.status.success(), "{checked:?}");
}
