//! Read-your-writes waits: a token the log has reached is waited for closely; a forged one
//! beyond the log's head costs at most one check per idle poll. Checks are counted, not timed.

use std::time::Duration;

use carrot_projections::testing::{append_raw, test_database};
use carrot_projections::views::consistency::{check, wait_for, WaitBound};
use carrot_projections::Checkpoint;
use serde_json::json;

/// Checks of tokens so far in this process (each test runs in a process of its own).
fn checks_so_far() -> u64 {
    carrot_projections::metrics::global()
        .render(&|_| "")
        .lines()
        .find_map(|l| l.strip_prefix("carrot_consistency_checks_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_token_beyond_the_head_of_the_log_is_checked_once_per_idle_poll() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut conn = pool.acquire().await.unwrap();
    append_raw(&mut conn, "test", "x", 1, json!({"Happened": {}}))
        .await
        .unwrap();
    let head: (String, i64) = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let head = Checkpoint {
        transaction_id: head.0.parse().unwrap(),
        global_position: head.1,
    };
    // The view is behind the one event.
    sqlx::query("INSERT INTO subscription_checkpoints (subscriber) VALUES ('catalog')")
        .execute(pool)
        .await
        .unwrap();
    let forged = Checkpoint {
        transaction_id: head.transaction_id + 1_000_000,
        global_position: head.global_position + 1_000_000,
    };

    let at_head = check(pool, &["catalog"], head).await.unwrap();
    assert!(!at_head.reached && !at_head.beyond_head, "{at_head:?}");
    let beyond = check(pool, &["catalog"], forged).await.unwrap();
    assert!(!beyond.reached && beyond.beyond_head, "{beyond:?}");

    let bound = WaitBound {
        timeout: Duration::from_millis(600),
        idle_poll: Duration::from_millis(200),
    };
    let before = checks_so_far();
    assert!(!wait_for(pool, &["catalog"], forged, bound).await.unwrap());
    let spent = checks_so_far() - before;
    // At once, then at most once per 200 ms of the 600 ms (it was every 1 to 20 ms).
    assert!((1..=4).contains(&spent), "{spent} checks");

    // The view reaches the head: a token there is reached, one beyond it still is not.
    sqlx::query(
        "UPDATE subscription_checkpoints SET transaction_id = $1::text::xid8, global_position = $2
          WHERE subscriber = 'catalog'",
    )
    .bind(head.transaction_id.to_string())
    .bind(head.global_position)
    .execute(pool)
    .await
    .unwrap();
    assert!(wait_for(pool, &["catalog"], head, bound).await.unwrap());
    assert!(
        !check(pool, &["catalog", "catalog"], forged)
            .await
            .unwrap()
            .reached
    );
    // Every subscriber asked for must have reached it: one without a row has not.
    assert!(
        !check(pool, &["catalog", "mypage"], head)
            .await
            .unwrap()
            .reached
    );
}
