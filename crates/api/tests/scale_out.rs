//! Scale-out on one machine: two API processes and a worker process on one PostgreSQL and
//! one payment gateway (the `payment-sim` process, whose ledger counts every money movement
//! by idempotency key). Trades flow through both APIs while the worker is killed with
//! SIGKILL and restarted; afterwards every trade is settled exactly once and every view
//! equals a rebuild from the log.

mod common;

use carrot_projections::postgres::Db;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carrot_projections::replay;
use carrot_projections::testing::test_database;
use common::http::{self, post};
use common::{Process, User};
use futures_util::future::join_all;
use serde_json::Value;

/// One trade, through `base`; returns (payment id, how it ended) when it got as far as a
/// paid request.
async fn trade(
    client: &reqwest::Client,
    base: &str,
    seller: &User,
    buyer: &User,
    n: usize,
) -> Option<(String, &'static str)> {
    let body = serde_json::json!({"title": "Lamp", "description": "", "price": 1_000 + n});
    let (status, listing) = post(client, base, seller, "/listings", Some(body)).await;
    if status != 201 {
        return None;
    }
    let listing = listing["listing_id"].as_str()?.to_owned();
    let (status, placed) = post(
        client,
        base,
        buyer,
        &format!("/listings/{listing}/requests"),
        None,
    )
    .await;
    if status != 201 {
        return None;
    }
    let (request, payment) = (
        placed["request_id"].as_str()?.to_owned(),
        placed["payment_id"].as_str()?.to_owned(),
    );
    let act = |user: &User, action: &str| {
        let path = format!("/requests/{request}/{action}");
        let user = user.clone();
        async move { post(client, base, &user, &path, None).await.0 }
    };
    let ended = match n % 4 {
        0 => {
            if act(seller, "accept").await != 200 || act(buyer, "complete").await != 200 {
                return Some((payment, "unknown"));
            }
            "paid_out"
        }
        1 => {
            if act(seller, "reject").await != 200 {
                return Some((payment, "unknown"));
            }
            "refunded"
        }
        2 => {
            if act(seller, "accept").await != 200 || act(buyer, "cancel").await != 200 {
                return Some((payment, "unknown"));
            }
            "refunded"
        }
        _ => "captured",
    };
    Some((payment, ended))
}

/// Waits (bounded) until every subscriber has applied the log and no saga command waits.
async fn settled(pool: &Db) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut quiet = 0;
    while quiet < 5 {
        let busy: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM subscription_checkpoints c
                      WHERE EXISTS (SELECT 1 FROM events e WHERE (e.transaction_id, e.global_position)
                                                               > (c.transaction_id, c.global_position)))
                  + (SELECT count(*) FROM settlement.outbox WHERE status = 'pending')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        quiet = if busy == 0 { quiet + 1 } else { 0 };
        assert!(
            Instant::now() < deadline,
            "the processes did not settle within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_on_one_database_settle_every_trade_exactly_once_through_a_sigkill() {
    let db = test_database().await;
    let sim = Process::start(
        &["payment-sim"],
        &[
            ("CARROT_PAYMENT_SIM_BIND", "127.0.0.1:0".to_owned()),
            ("CARROT_LOG", "warn".to_owned()),
        ],
        "payment simulator on",
    );
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        (
            "CARROT_JWT_SECRET",
            "the scale-out test's shared signing secret".to_owned(),
        ),
        ("CARROT_PAYMENT_URL", sim.address.clone()),
        ("CARROT_BIND", "127.0.0.1:0".to_owned()),
        ("CARROT_POLL_INTERVAL_MS", "100".to_owned()),
        ("CARROT_SAGA_LEASE_MS", "2000".to_owned()),
        ("CARROT_DB_POOL_SIZE", "8".to_owned()),
        ("CARROT_LOG", "warn".to_owned()),
    ];
    let api = Process::start(&["serve", "--role", "api"], &env, "listening on");
    let both = Process::start(&["serve", "--role", "all"], &env, "listening on");
    let worker = Process::start(&["serve", "--role", "worker"], &env, "listening on");
    let bases = [api.address.clone(), both.address.clone()];
    let client = http::client();

    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let clients = (0..6).map(|c| {
        let (client, bases, stop, started) =
            (client.clone(), bases.clone(), stop.clone(), started.clone());
        tokio::spawn(async move {
            let seller = http::signup(&client, &bases[0]).await;
            let buyer = http::signup(&client, &bases[1]).await;
            let mut outcomes = Vec::new();
            let mut n = c;
            while !stop.load(Ordering::Relaxed) {
                started.fetch_add(1, Ordering::Relaxed);
                if let Some(outcome) = trade(&client, &bases[n % 2], &seller, &buyer, n).await {
                    outcomes.push(outcome);
                }
                n += 6;
            }
            outcomes
        })
    });
    let clients: Vec<_> = clients.collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    worker.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let restarted = Process::start(&["serve", "--role", "worker"], &env, "listening on");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let outcomes: Vec<(String, &str)> = join_all(clients)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap())
        .filter(|(_, ended)| *ended != "unknown")
        .collect();
    assert!(
        outcomes.len() >= 40,
        "too few trades to mean anything: {}",
        outcomes.len()
    );
    settled(&db.pool).await;

    // Exactly one settlement per closed trade, none for open ones, in the log...
    for (payment, ended) in &outcomes {
        let settlements: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_type = 'payment' AND aggregate_id = $1
                AND event_type IN ('PaymentRefunded', 'PaymentPaidOut')",
        )
        .bind(payment)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        let expected: &[&str] = match *ended {
            "paid_out" => &["PaymentPaidOut"],
            "refunded" => &["PaymentRefunded"],
            _ => &[],
        };
        assert_eq!(settlements, expected, "payment {payment}");
    }
    // ...and at the gateway: one movement per key, and what moved is what the log says.
    let ledger: Value = client
        .get(format!("{}/ledger", sim.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = ledger["entries"].as_array().unwrap();
    let moved = |op: &str| -> i64 {
        entries
            .iter()
            .filter(|e| e["operation"] == op && e["outcome"] == "ok")
            .map(|e| e["amount"].as_i64().unwrap())
            .sum()
    };
    let logged = |event: &str| {
        let pool = db.pool.clone();
        let event = event.to_owned();
        async move {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT coalesce(sum((payload -> '{event}' ->> 'amount')::bigint), 0)::bigint
                   FROM events WHERE event_type = '{event}'"
            ))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(moved("refund"), logged("PaymentRefunded").await);
    assert_eq!(moved("payout"), logged("PaymentPaidOut").await);
    for payment in outcomes.iter().map(|(p, _)| p) {
        let both_ways = ["refund", "payout"]
            .iter()
            .filter(|op| {
                entries
                    .iter()
                    .any(|e| e["idempotency_key"] == format!("{op}:{payment}"))
            })
            .count();
        assert!(both_ways <= 1, "payment {payment} moved both ways");
    }

    // Every view equals a rebuild from the log.
    for view in carrot_projections::views() {
        let (_, differences) = replay::verify(&db.pool, view.as_ref(), &mut |_| {})
            .await
            .unwrap();
        assert!(differences.is_empty(), "{}: {differences:?}", view.name());
    }
    eprintln!(
        "scale-out: {} trades started, {} completed and checked, worker killed and restarted",
        started.load(Ordering::Relaxed),
        outcomes.len()
    );
    drop((api, both, restarted, sim));
}
