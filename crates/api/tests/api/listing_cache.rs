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

/// Announces a change of listing `id` as the catalog would, at its checkpoint.
async fn announce(app: &TestApp, id: &str) {
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
    announce(&app, &id).await;
    eventually("the announced listing to be read again", || async {
        (read(&app, &seller, &id).await["price"] == 99).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_rebuilt_catalog_swapped_in_empties_what_was_kept_from_the_old_one() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (id, token) = app.register_listing(&seller, "Radio", 20_000).await;
    app.listing_after(&seller, &id, &token).await;
    // A catalog gone wrong (the reason to rebuild one), and the wrong row kept.
    sqlx::query("UPDATE catalog.listings SET price = 1 WHERE listing_id = $1::uuid")
        .bind(&id)
        .execute(&app.db.pool)
        .await
        .unwrap();
    announce(&app, &id).await;
    eventually("the wrong row to be read and kept", || async {
        (read(&app, &seller, &id).await["price"] == 1).then_some(())
    })
    .await;
    // The swap announces everything: what was kept of the old catalog goes.
    // A connection of its own: the app's pool (10) is busy under a full test run.
    let mut listener = sqlx::postgres::PgListener::connect(&app.db.url)
        .await
        .unwrap();
    listener.listen("carrot_catalog").await.unwrap();
    let rebuilt = crate::helpers::carrot_cli_alongside(&["replay", "catalog"], &app.db.url).await;
    assert!(rebuilt.status.success(), "{rebuilt:?}");
    let everything = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let note = listener.recv().await.unwrap();
            if note.payload().ends_with(";*") {
                break;
            }
        }
    })
    .await;
    assert!(everything.is_ok(), "the swap announced nothing");
    eventually("the rebuilt row to be read", || async {
        (read(&app, &seller, &id).await["price"] == 20_000).then_some(())
    })
    .await;
}
