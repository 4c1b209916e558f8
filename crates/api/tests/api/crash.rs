//! The saga under crashes and scale-out. The app serves HTTP only; the tests run the saga's
//! runner and dispatchers themselves, kill them at the worst moments, and count what the
//! gateway did (by idempotency key) and what the log recorded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use carrot_api::payment::SimulatedGateway;
use carrot_api::startup::ServeRole;
use carrot_api::workers;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, PaymentGateway, Receipt, TransferOrder,
};
use carrot_domain::SystemClock;
use carrot_projections::log::subscriber::ApplyError;
use carrot_projections::settlement::{Dispatcher, DispatcherConfig, SettlementSaga};
use carrot_projections::write_side::WriteSide;
use carrot_projections::{Runner, RunnerConfig, Shutdown, StoredEvent, Subscriber};
use futures_util::future::join_all;
use serde_json::Value;
use sqlx::PgConnection;
use tokio::sync::Notify;

use crate::helpers::{eventually, spawn_app_with, test_settings, Deal, Placed, TestApp, User};

async fn api_only() -> TestApp {
    let mut settings = test_settings();
    settings.role = ServeRole::Api;
    spawn_app_with(settings).await
}

/// A rejected trade: its refund is the saga's next job.
async fn rejected_trade(app: &TestApp) -> (User, Placed) {
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Watch", 70_000).await;
    app.act_ok(&seller, &placed.request_id, "reject", "rejected")
        .await;
    (buyer, placed)
}

fn saga_runner(app: &TestApp) -> Runner {
    Runner::new(
        app.db.pool.clone(),
        Arc::new(SettlementSaga::default()),
        RunnerConfig::default(),
    )
}

fn dispatcher(app: &TestApp, gateway: Arc<dyn PaymentGateway>) -> Dispatcher {
    let write = WriteSide::new(app.db.pool.clone(), Arc::new(SystemClock), gateway);
    Dispatcher::new(
        app.db.pool.clone(),
        Arc::new(write),
        Arc::new(SystemClock),
        DispatcherConfig {
            lease: Duration::from_millis(500),
            ..DispatcherConfig::default()
        },
    )
}

async fn outbox_rows(app: &TestApp) -> Vec<(String, String)> {
    sqlx::query_as("SELECT command_id, status FROM settlement.outbox ORDER BY command_id")
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

/// Moves the money, then never answers: the process dies before recording the result.
struct DiesAfterTheTransfer {
    inner: Arc<SimulatedGateway>,
    moved: Arc<Notify>,
}

#[async_trait]
impl PaymentGateway for DiesAfterTheTransfer {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        self.inner.capture(order).await
    }
    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        let _ = self.inner.refund(order).await;
        self.moved.notify_one();
        std::future::pending().await
    }
    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.inner.payout(order).await
    }
    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        self.inner.resolve_capture(key).await
    }
}

#[tokio::test]
async fn a_dispatcher_killed_between_the_gateway_call_and_the_event_refunds_once_on_restart() {
    let app = api_only().await;
    let (_, placed) = rejected_trade(&app).await;
    let saga = saga_runner(&app);
    saga.register().await.unwrap();
    saga.catch_up().await.unwrap();

    let moved = Arc::new(Notify::new());
    let doomed = dispatcher(
        &app,
        Arc::new(DiesAfterTheTransfer {
            inner: app.gateway.clone(),
            moved: moved.clone(),
        }),
    );
    let running = tokio::spawn(async move { doomed.run_once().await });
    tokio::time::timeout(Duration::from_secs(10), moved.notified())
        .await
        .expect("the refund reached the gateway");
    running.abort();
    let key = format!("refund:{}", placed.payment_id);
    assert_eq!(app.gateway.ledger()[&key].calls, 1, "the money moved");
    assert_eq!(
        app.events_of("payment", &placed.payment_id).await,
        ["PaymentCaptureStarted", "PaymentCaptured"]
    );

    // A new dispatcher takes the command over once its lease runs out.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let restarted = dispatcher(&app, app.gateway.clone());
    assert_eq!(restarted.drain().await.unwrap(), 1);
    assert_eq!(
        app.events_of("payment", &placed.payment_id).await,
        [
            "PaymentCaptureStarted",
            "PaymentCaptured",
            "PaymentRefunded"
        ]
    );
    let ledger = app.gateway.ledger();
    assert_eq!(ledger[&key].calls, 2, "asked twice with one key");
    assert_eq!(app.gateway_calls("refund").len(), 1, "refunded once");
    assert_eq!(outbox_rows(&app).await, [(key, "done".to_owned())]);
}

/// The saga, failing its batch after deciding: a crash before the batch commits.
struct DiesMidBatch(SettlementSaga);

#[async_trait]
impl Subscriber for DiesMidBatch {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        self.0.apply(tx, events).await?;
        if events
            .iter()
            .any(|e| e.event_type == "PurchaseRequestRejected")
        {
            return Err(ApplyError::Database(sqlx::Error::PoolClosed));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_saga_dying_mid_batch_or_before_dispatch_still_refunds_exactly_once() {
    let app = api_only().await;
    let (_, placed) = rejected_trade(&app).await;
    // Dies inside the batch: nothing it decided is kept, the checkpoint does not move.
    let dying = Runner::new(
        app.db.pool.clone(),
        Arc::new(DiesMidBatch(SettlementSaga::default())),
        RunnerConfig::default(),
    );
    dying.register().await.unwrap();
    assert!(dying.catch_up().await.is_err());
    assert!(outbox_rows(&app).await.is_empty());

    // Runs again and commits its decision, then "dies" before any dispatch.
    let saga = saga_runner(&app);
    saga.catch_up().await.unwrap();
    saga.catch_up().await.unwrap();
    let key = format!("refund:{}", placed.payment_id);
    assert_eq!(
        outbox_rows(&app).await,
        [(key.clone(), "pending".to_owned())]
    );

    // After the restart, the dispatcher runs it once; running again finds nothing to do.
    let restarted = dispatcher(&app, app.gateway.clone());
    assert_eq!(restarted.drain().await.unwrap(), 1);
    assert_eq!(restarted.drain().await.unwrap(), 0);
    assert_eq!(app.gateway.ledger()[&key].calls, 1);
    assert_eq!(
        app.events_of("payment", &placed.payment_id).await,
        [
            "PaymentCaptureStarted",
            "PaymentCaptured",
            "PaymentRefunded"
        ]
    );
}

/// Every payment's settlement from the log: captured amount, and refunds and payouts.
async fn ledger_from_events(app: &TestApp) -> HashMap<String, (i64, Vec<String>)> {
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, payload FROM events
          WHERE aggregate_type = 'payment' ORDER BY aggregate_id, sequence",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    let mut ledger: HashMap<String, (i64, Vec<String>)> = HashMap::new();
    for (id, event, payload) in rows {
        let entry = ledger.entry(id).or_default();
        if event == "PaymentCaptured" {
            entry.0 = payload[&event]["amount"].as_i64().unwrap();
        }
        if event == "PaymentRefunded" || event == "PaymentPaidOut" {
            entry.1.push(event);
        }
    }
    ledger
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_settle_every_trade_exactly_once_and_the_ledger_balances() {
    let app = api_only().await;
    let (_stop, shutdown) = Shutdown::new();
    for _ in 0..2 {
        let write = Arc::new(WriteSide::new(
            app.db.pool.clone(),
            Arc::new(SystemClock),
            app.gateway.clone(),
        ));
        workers::spawn(
            &app.db.pool,
            write,
            app.gateway.clone(),
            Arc::new(SystemClock),
            test_settings().workers,
            &shutdown,
        )
        .await;
    }
    let seller = app.signup("seller").await;
    let trades = join_all((0..24).map(|i| {
        let (app, seller) = (&app, &seller);
        async move {
            let buyer = app.signup("buyer").await;
            let (listing, _) = app.register_listing(seller, "Lot", 1_000 * (i + 1)).await;
            let placed = app.place_request(&buyer, &listing).await;
            let expected = match i % 3 {
                0 => {
                    app.act_ok(seller, &placed.request_id, "reject", "rejected")
                        .await;
                    "refunded"
                }
                1 => {
                    app.act_ok(seller, &placed.request_id, "accept", "accepted")
                        .await;
                    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
                        .await;
                    "paid_out"
                }
                _ => {
                    app.act_ok(seller, &placed.request_id, "accept", "accepted")
                        .await;
                    "captured"
                }
            };
            (buyer, placed, expected)
        }
    }))
    .await;
    for (buyer, placed, expected) in &trades {
        app.wait_payment(buyer, &placed.payment_id, expected).await;
    }
    // Let both workers go idle, then count.
    eventually("the outbox to drain", || async {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM settlement.outbox WHERE status <> 'done'")
                .fetch_one(&app.db.pool)
                .await
                .ok()?;
        (open == 0).then_some(())
    })
    .await;

    let ledger = ledger_from_events(&app).await;
    let (mut captured, mut refunded, mut paid_out, mut held) = (0, 0, 0, 0);
    for (id, (amount, settlements)) in &ledger {
        assert!(
            settlements.len() <= 1,
            "{id} settled twice: {settlements:?}"
        );
        captured += amount;
        match settlements.first().map(String::as_str) {
            Some("PaymentRefunded") => refunded += amount,
            Some(_) => paid_out += amount,
            None => held += amount,
        }
    }
    assert_eq!(captured, refunded + paid_out + held);
    let gateway = app.gateway.ledger();
    let moved = |op: &str| -> i64 {
        gateway
            .values()
            .filter(|s| s.operation == op && s.outcome.is_ok())
            .map(|s| s.amount.as_krw())
            .sum()
    };
    assert_eq!(
        moved("refund"),
        refunded,
        "the gateway refunded what the log says"
    );
    assert_eq!(
        moved("payout"),
        paid_out,
        "the gateway paid out what the log says"
    );
    assert_eq!((refunded > 0, paid_out > 0, held > 0), (true, true, true));
    for (key, settlement) in gateway {
        if settlement.operation != "capture" {
            assert_eq!(settlement.calls, 1, "{key} executed by both workers");
        }
    }
}
