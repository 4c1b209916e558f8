//! Recovering the saga's state from the log (issue 14): the replay engine refuses the saga,
//! and `carrot saga recover` is what an operator uses instead. Its state damaged by hand (a
//! checkpoint moved past an event it never applied, rows and a deadline lost), a dry run
//! lists every difference and changes nothing; `--apply` repairs it, and the one refund
//! the saga never decided happens, once, while nothing already done runs again.

use carrot_api::startup::ServeRole;
use serde_json::Value;

use crate::helpers::{carrot_cli, spawn_app_with, test_settings, TestApp};

/// The saga's fold, as rows of JSON, for comparing before and after.
async fn fold(app: &TestApp) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(t) FROM (
             SELECT 'trades' AS tbl, to_jsonb(x) AS row FROM settlement.trades x
             UNION ALL SELECT 'listings', to_jsonb(x) FROM settlement.listings x
             UNION ALL SELECT 'payments', to_jsonb(x) FROM settlement.payments x) t
          ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
}

async fn execute(app: &TestApp, statement: &str, id: &str) {
    sqlx::query(statement)
        .bind(id)
        .execute(&app.db.pool)
        .await
        .unwrap();
}

fn worker() -> carrot_api::startup::Settings {
    let mut settings = test_settings();
    settings.role = ServeRole::Worker;
    settings
}

#[tokio::test]
async fn a_damaged_saga_is_listed_by_a_dry_run_and_repaired_by_apply_without_running_anything_twice(
) {
    let mut api = test_settings();
    api.role = ServeRole::Api;
    let app = spawn_app_with(api).await;
    let worker_process = app.serve_also(worker()).await;
    let refunded = app.pending_deal("Tent", 80_000).await;
    let waiting = app.pending_deal("Stove", 20_000).await;
    let accepted = app.pending_deal("Lamp", 15_000).await;
    let lost = app.pending_deal("Kettle", 9_000).await;
    app.act_ok(
        &refunded.seller,
        &refunded.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    app.act_ok(
        &accepted.seller,
        &accepted.placed.request_id,
        "accept",
        "accepted",
    )
    .await;
    app.wait_event("payment", &refunded.placed.payment_id, "PaymentRefunded")
        .await;
    app.settle().await;
    let before = fold(&app).await;

    // The workers stop; a rejection is appended; then the saga's state is damaged: its
    // checkpoint moved past that rejection (as a partial restore could), a request's row and
    // its expiry lost, a held listing shown free.
    worker_process.stop().await;
    app.act_ok(&lost.seller, &lost.placed.request_id, "reject", "rejected")
        .await;
    sqlx::query(
        "UPDATE subscription_checkpoints c SET transaction_id = e.transaction_id,
                global_position = e.global_position
           FROM (SELECT transaction_id, global_position FROM events
                  ORDER BY transaction_id DESC, global_position DESC LIMIT 1) e
          WHERE c.subscriber = 'settlement'",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
    let waiting_id = waiting.placed.request_id.as_str();
    execute(
        &app,
        "DELETE FROM settlement.trades WHERE request_id = $1::uuid",
        waiting_id,
    )
    .await;
    execute(
        &app,
        "DELETE FROM settlement.deadlines WHERE request_id = $1::uuid",
        waiting_id,
    )
    .await;
    execute(
        &app,
        "UPDATE settlement.listings SET status = 'available', holder = NULL
          WHERE listing_id = $1::uuid",
        &accepted.listing,
    )
    .await;
    let damaged = fold(&app).await;

    // The replay engine refuses the saga and says where to go.
    let replay = carrot_cli(&["replay", "settlement"], &app.db.url);
    assert!(!replay.status.success());
    assert!(String::from_utf8_lossy(&replay.stderr).contains("cannot be rebuilt"));

    // A dry run lists every difference, changes nothing and exits 1.
    let dry = carrot_cli(&["saga", "recover"], &app.db.url);
    assert!(!dry.status.success(), "{dry:?}");
    let listed = String::from_utf8_lossy(&dry.stdout);
    for expected in [
        format!("command never queued: refund:{}", lost.placed.payment_id),
        waiting_id.to_owned(),
        accepted.listing.clone(),
    ] {
        assert!(listed.contains(&expected), "{expected} in:\n{listed}");
    }
    assert!(
        listed.lines().any(|l| l.contains("deadline missing")
            && l.contains(waiting_id)
            && l.contains("expire")),
        "the lost expiry in:\n{listed}"
    );
    assert_eq!(fold(&app).await, damaged, "a dry run changes nothing");

    // Applied: the fold is the log's again, the lost expiry is back, the refund is queued.
    let applied = carrot_cli(&["saga", "recover", "--apply"], &app.db.url);
    assert!(applied.status.success(), "{applied:?}");
    let deadlines: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM settlement.deadlines WHERE request_id = $1::uuid")
            .bind(waiting_id)
            .fetch_all(&app.db.pool)
            .await
            .unwrap();
    assert_eq!(deadlines, ["expire"]);

    let _worker = app.serve_also(worker()).await;
    app.wait_payment(&lost.buyer, &lost.placed.payment_id, "refunded")
        .await;
    app.settle().await;
    let mut once = vec![
        (format!("refund:{}", refunded.placed.payment_id), 1),
        (format!("refund:{}", lost.placed.payment_id), 1),
    ];
    once.sort();
    assert_eq!(app.gateway_calls("refund"), once, "each refund once");
    assert!(app.gateway_calls("payout").is_empty());
    let after = fold(&app).await;
    for row in &before {
        let lost_trade = row.to_string().contains(&lost.placed.request_id);
        assert!(lost_trade || after.contains(row), "{row} restored");
    }
    let again = carrot_cli(&["saga", "recover"], &app.db.url);
    assert!(again.status.success(), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("agrees with the log"));
}

#[tokio::test]
async fn a_lost_saga_checkpoint_is_restored_where_the_log_leaves_it_and_settlement_goes_on() {
    let mut api = test_settings();
    api.role = ServeRole::Api;
    let app = spawn_app_with(api).await;
    let worker_process = app.serve_also(worker()).await;
    let first = app.pending_deal("Tent", 80_000).await;
    app.act_ok(
        &first.seller,
        &first.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    app.wait_event("payment", &first.placed.payment_id, "PaymentRefunded")
        .await;
    app.settle().await;
    worker_process.stop().await;
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = 'settlement'")
        .execute(&app.db.pool)
        .await
        .unwrap();

    let dry = carrot_cli(&["saga", "recover"], &app.db.url);
    assert!(!dry.status.success());
    assert!(String::from_utf8_lossy(&dry.stdout).contains("checkpoint row is missing"));
    let applied = carrot_cli(&["saga", "recover", "--apply"], &app.db.url);
    assert!(applied.status.success(), "{applied:?}");

    let _worker = app.serve_also(worker()).await;
    let second = app.pending_deal("Stove", 20_000).await;
    app.act_ok(
        &second.seller,
        &second.placed.request_id,
        "reject",
        "rejected",
    )
    .await;
    app.wait_payment(&second.buyer, &second.placed.payment_id, "refunded")
        .await;
    app.settle().await;
    assert_eq!(
        app.gateway_calls("refund").len(),
        2,
        "nothing refunded twice"
    );
    assert!(app
        .gateway_calls("refund")
        .iter()
        .all(|(_, calls)| *calls == 1));
}

#[tokio::test]
async fn recovery_is_not_applied_while_the_saga_holds_events_in_quarantine() {
    let app = spawn_app_with(test_settings()).await;
    let deal = app.pending_deal("Tent", 80_000).await;
    app.settle().await;
    // A held event (as a poison leaves it): it may revive or close an outbox command,
    // which a recovery does not replay.
    sqlx::query(
        "INSERT INTO subscription_quarantine
             (subscriber, transaction_id, global_position, aggregate_type, aggregate_id,
              sequence, event_type, error)
         SELECT 'settlement', transaction_id, global_position, aggregate_type, aggregate_id,
                sequence, event_type, 'held for the test'
           FROM events WHERE aggregate_type = 'purchase_request' AND aggregate_id = $1",
    )
    .bind(&deal.placed.request_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let refused = carrot_cli(&["saga", "recover", "--apply"], &app.db.url);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in quarantine"),
        "{refused:?}"
    );
}
