//! Faults against the whole service as a real process: `carrot serve` (API and workers in
//! one) is killed with SIGKILL every couple of seconds under a steady load of full trades
//! and started again on the same port. Afterwards no acknowledged command is missing from
//! the log, every trade is settled exactly once (at most once when a call went unanswered),
//! the gateway's ledger balances with the log, and every view equals a rebuild.
//!
//! The load and the number of crashes grow with `CARROT_FAULT_SECONDS` (default 8 s: the
//! CI run); `CARROT_FAULT_SECONDS=120 cargo nextest run --test faults` is the long run.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use carrot_projections::testing::test_database;
use common::http;
use common::trades::{self, trade, Trade};
use common::Process;
use futures_util::future::join_all;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_command_and_settles_each_trade_once() {
    let seconds: u64 = std::env::var("CARROT_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let db = test_database().await;
    let sim = Process::payment_sim();
    let port = common::free_port();
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        (
            "CARROT_JWT_SECRET",
            "the fault suite's shared signing secret".to_owned(),
        ),
        ("CARROT_PAYMENT_URL", sim.address.clone()),
        ("CARROT_BIND", format!("127.0.0.1:{port}")),
        ("CARROT_POLL_INTERVAL_MS", "100".to_owned()),
        ("CARROT_SAGA_LEASE_MS", "1000".to_owned()),
        ("CARROT_DB_POOL_SIZE", "8".to_owned()),
        ("CARROT_LOG", "warn".to_owned()),
    ];
    let start = || Process::start(&["serve"], &env, "listening on");
    let server = Arc::new(Mutex::new(Some(start())));
    let base = format!("http://127.0.0.1:{port}");
    let client = http::client();

    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (client, base, stop) = (client.clone(), base.clone(), stop.clone());
            tokio::spawn(async move {
                let seller = http::signup(&client, &base).await;
                let buyer = http::signup(&client, &base).await;
                let mut done = Vec::new();
                let mut n = c;
                while !stop.load(Ordering::Relaxed) {
                    let t = trade(&client, &base, &seller, &buyer, n).await;
                    if t.acked.is_empty() {
                        // The service is down: wait for it rather than spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    } else {
                        done.push(t);
                    }
                    n += 4;
                }
                done
            })
        })
        .collect();

    let kills = AtomicUsize::new(0);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let running = server.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(running) = running {
            running.kill();
            kills.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let restarted = start();
        *server.lock().unwrap_or_else(PoisonError::into_inner) = Some(restarted);
    }
    stop.store(true, Ordering::Relaxed);
    let done: Vec<Trade> = join_all(clients)
        .await
        .into_iter()
        .flat_map(|c| c.unwrap())
        .collect();
    let closed = done.iter().filter(|t| t.ended != "unknown").count();
    let unanswered = done.len() - closed;
    assert!(closed >= 20, "too few trades to mean anything: {closed}");
    assert!(
        unanswered > 0,
        "no call was cut off: the kills proved nothing"
    );

    trades::settled(&db.pool).await;
    let commands = trades::assert_acknowledged_in_log(&db.pool, &done).await;
    trades::assert_settled_once(&db.pool, &client, &sim.address, &done).await;
    trades::assert_views_equal_a_rebuild(&db.pool).await;
    eprintln!(
        "faults: {} s, {} SIGKILLs, {} trades ({closed} acknowledged to the end, {unanswered} cut off midway), \
         {commands} acknowledged commands all in the log, every settlement once, views equal a rebuild",
        seconds,
        kills.load(Ordering::Relaxed),
        done.len()
    );
    drop(server);
    drop(sim);
}
