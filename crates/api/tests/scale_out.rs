//! Scale-out on one machine: two API processes and a worker process on one PostgreSQL and
//! one payment gateway (the `payment-sim` process, whose ledger counts every money movement
//! by idempotency key). Trades flow through both APIs while the worker is killed with
//! SIGKILL and restarted; afterwards every trade is settled exactly once and every view
//! equals a rebuild from the log.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use carrot_projections::testing::test_database;
use common::http;
use common::trades::{self, trade, Trade};
use common::Process;
use futures_util::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_on_one_database_settle_every_trade_exactly_once_through_a_sigkill() {
    let db = test_database().await;
    let sim = Process::payment_sim();
    let env = common::service_env(
        &db.url,
        &sim.address,
        &[
            ("CARROT_SAGA_LEASE_MS", "2000"),
            ("CARROT_DB_POOL_SIZE", "8"),
        ],
    );
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
                outcomes.push(trade(&client, &bases[n % 2], &seller, &buyer, n).await);
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
    let outcomes: Vec<Trade> = join_all(clients)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap())
        .collect();
    let closed = outcomes.iter().filter(|t| t.ended != "unknown").count();
    assert!(closed >= 40, "too few trades to mean anything: {closed}");
    trades::settled(&db.pool).await;
    trades::assert_acknowledged_in_log(&db.pool, &outcomes).await;
    trades::assert_settled_once(&db.pool, &client, &sim.address, &outcomes).await;
    trades::assert_views_equal_a_rebuild(&db.pool).await;
    eprintln!(
        "scale-out: {} trades started, {} completed and checked, worker killed and restarted",
        started.load(Ordering::Relaxed),
        closed
    );
    drop((api, both, restarted, sim));
}
