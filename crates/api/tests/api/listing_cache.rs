//! `GET /listings/{id}` from memory (listing_cache.rs): a read with a consistency token is
//! never answered by a row older than it; a change the catalog announces drops the kept
//! row; and what is kept is served without the database.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, TestApp, User};

async fn read(app: &TestApp, user: &User, id: &str) -> Value {
    app.read(user, &format!("/listings/{id}")).await
}

#[tokio::test]
async fn a_kept_listing_never_answers_a_newer_token_and_goes_when_its_change_is_announced() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (id, registered) = app.register_listing(&seller, "Lamp", 10_000).await;
    // Kept by this read (the cache listens as soon as the app starts; give it the moment).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.listing_after(&seller, &id, &registered).await["price"],
        10_000
    );
    assert_eq!(read(&app, &seller, &id).await["price"], 10_000);

    // Edited: a read with the edit's token answers the edit, never the kept row.
    let response = app
        .patch(&seller, &format!("/listings/{id}"))
        .json(&json!({"price": 12_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let edited: Value = response.json().await.unwrap();
    let token = edited["consistency_token"].as_str().unwrap();
    assert_eq!(
        app.listing_after(&seller, &id, token).await["price"],
        12_000
    );
    // Without a token: the new price once the catalog's announcement has arrived.
    eventually("the edit to reach reads without a token", || async {
        (read(&app, &seller, &id).await["price"] == 12_000).then_some(())
    })
    .await;

    // What is kept is served from memory: a change made behind the catalog's back (no
    // announcement) is not seen...
    sqlx::query("UPDATE catalog.listings SET price = 99 WHERE listing_id = $1::uuid")
        .bind(&id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(read(&app, &seller, &id).await["price"], 12_000);
    // ...until it is announced: then the row is read again.
    let checkpoint: String = sqlx::query_scalar(
        "SELECT transaction_id::text || '.' || global_position FROM subscription_checkpoints
          WHERE subscriber = 'catalog'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('carrot_catalog', $1)")
        .bind(format!("{checkpoint};{id}"))
        .execute(&app.db.pool)
        .await
        .unwrap();
    eventually("the announced listing to be read again", || async {
        (read(&app, &seller, &id).await["price"] == 99).then_some(())
    })
    .await;
}
