//! Faults against the whole service as a real process: `carrot serve` (API and workers in
//! one) is killed with SIGKILL every couple of seconds under a steady load of full trades
//! and started again on the same port. Afterwards no acknowledged command is missing from
//! the log, every trade is settled exactly once (at most once when a call went unanswered),
//! the gateway's ledger balances with the log, and every view equals a rebuild.
//!
//! With no worker running, commands still succeed, and views and money catch up once one
//! starts. With the database stopped mid-load, readiness turns 503 within 2 s, and
//! commands succeed again within 5 s of its return, with no restart of the service.
//!
//! Clients that give up mid-payment, a gateway that charges and then loses its answer, and
//! SIGKILLs together (`client_chaos.rs`): no capture is ever left unaccounted for. A worker
//! whose wall clock steps ten days forward fires nothing early (`clock_step.rs`).
//!
//! The load and the number of crashes grow with `CARROT_FAULT_SECONDS` (default 8 s: the
//! CI run); `CARROT_FAULT_SECONDS=120 cargo nextest run --test faults` is the long run.

#[path = "faults/client_chaos.rs"]
mod client_chaos;
#[path = "faults/clock_step.rs"]
mod clock_step;
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::ensure_database;
use carrot_projections::testing::test_database;
use common::http;
use common::load::Load;
use common::trades::{self, trade};
use common::Process;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_load_loses_no_acknowledged_command_and_settles_each_trade_once() {
    let seconds: u64 = std::env::var("CARROT_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let db = test_database().await;
    let sim = Process::payment_sim();
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let env = common::service_env(
        &db.url,
        &sim.address,
        &[
            ("CARROT_BIND", &bind),
            ("CARROT_SAGA_LEASE_MS", "1000"),
            ("CARROT_DB_POOL_SIZE", "8"),
        ],
    );
    let start = || Process::start(&["serve"], &env, "listening on");
    let server = Arc::new(Mutex::new(Some(start())));
    let base = format!("http://127.0.0.1:{port}");
    let client = http::client();

    let load = Load::start(&client, &base, 4);

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
    let done = load.finish().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_succeed_with_no_worker_running_and_everything_catches_up_after() {
    let db = test_database().await;
    let sim = Process::payment_sim();
    let env = common::service_env(&db.url, &sim.address, &[]);
    let api = Process::start(&["serve", "--role", "api"], &env, "listening on");
    let client = http::client();
    let (seller, buyer) = (
        http::signup(&client, &api.address).await,
        http::signup(&client, &api.address).await,
    );
    let mut done = Vec::new();
    let end = Instant::now() + Duration::from_secs(3);
    let mut n = 0;
    while Instant::now() < end {
        done.push(trade(&client, &api.address, &seller, &buyer, n).await);
        n += 1;
    }
    // With no worker, every command of every trade was still acknowledged...
    assert!(
        done.iter().all(|t| t.ended != "unknown"),
        "a command failed with no worker"
    );
    // ...while no view and no settlement has moved.
    let settled_yet: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('PaymentRefunded', 'PaymentPaidOut')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(settled_yet, 0);
    let request = done[0].request.clone().unwrap();
    let (status, _) = http::call(
        &client,
        reqwest::Method::GET,
        format!("{}/requests/{request}", api.address),
        Some(&buyer),
        None,
    )
    .await;
    assert_eq!(status, 404, "MyPage has not seen the request yet");

    let worker = Process::start(&["serve", "--role", "worker"], &env, "listening on");
    let caught_up = Instant::now();
    trades::settled(&db.pool).await;
    let commands = trades::assert_acknowledged_in_log(&db.pool, &done).await;
    trades::assert_settled_once(&db.pool, &client, &sim.address, &done).await;
    trades::assert_views_equal_a_rebuild(&db.pool).await;
    eprintln!(
        "worker outage: {} trades ({commands} commands) with no worker; caught up {:.1} s after it started",
        done.len(),
        caught_up.elapsed().as_secs_f64()
    );
    drop((api, worker, sim));
}

/// A cluster of the test's own, which it can stop and start again on the same port.
fn cluster(dir: &std::path::Path, port: u16) -> EmbeddedPostgres {
    let options = ClusterOptions {
        data_dir: dir.join("pg"),
        durable: false,
        remove_on_stop: false,
        port: Some(port),
        settings: Vec::new(),
    };
    EmbeddedPostgres::start(&Binaries::locate().unwrap(), &options).unwrap()
}

/// Polls `path` every 20 ms until `want` answers it; how long that took (None: not within
/// `bound`).
async fn until_status(
    client: &reqwest::Client,
    url: &str,
    want: u16,
    bound: Duration,
) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < bound {
        let status = client.get(url).send().await.map(|r| r.status().as_u16());
        if status.ok() == Some(want) {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_turns_readiness_503_and_commands_come_back_without_a_service_restart() {
    let dir = std::env::temp_dir().join(format!("carrot-fault-db-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = common::free_port();
    let mut pg = cluster(&dir, port);
    ensure_database(&pg.url("postgres"), "carrot")
        .await
        .unwrap();
    let url = pg.url("carrot");
    let sim = Process::payment_sim();
    let env = common::service_env(&url, &sim.address, &[]);
    let carrot = Process::start(&["serve"], &env, "listening on");
    let pid = carrot.pid();
    let base = carrot.address.clone();
    let client = http::client();
    let seller = http::signup(&client, &base).await;
    // A steady load of trades through the outage, from two clients.
    let load = Load::start(&client, &base, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;

    let ready = format!("{base}/health/ready");
    let stopping = tokio::task::spawn_blocking(move || {
        pg.stop(Duration::from_secs(10));
        pg
    });
    let unready = until_status(&client, &ready, 503, Duration::from_secs(5)).await;
    drop(stopping.await.unwrap());
    tokio::time::sleep(Duration::from_secs(2)).await;

    let dir_again = dir.clone();
    let pg = tokio::task::spawn_blocking(move || cluster(&dir_again, port))
        .await
        .unwrap();
    let back = Instant::now();
    let (serving, recovered) = loop {
        let body = serde_json::json!({"title": "After", "description": "", "price": 1000});
        let (status, _) = http::post(&client, &base, &seller, "/listings", Some(body)).await;
        if status == 201 {
            break (
                back.elapsed(),
                until_status(&client, &ready, 200, Duration::from_secs(5)).await,
            );
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "no command succeeded within 10 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let done = load.finish().await;

    let unready = unready.expect("readiness never answered 503 with the database down");
    // A probe whose database check hangs answers 503 when its own 2 s timeout ends
    // (routes/health.rs): the bound is that timeout and the time to answer it.
    assert!(
        unready <= Duration::from_secs(3),
        "readiness took {unready:?} to turn 503"
    );
    assert!(
        serving <= Duration::from_secs(5),
        "commands came back after {serving:?}"
    );
    assert!(recovered.is_some(), "readiness did not come back to 200");
    assert_eq!(carrot.pid(), pid);
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_ok(),
        "the service had to restart"
    );
    let pool = carrot_projections::postgres::connect(&url, 2)
        .await
        .unwrap();
    trades::settled(&pool).await;
    let commands = trades::assert_acknowledged_in_log(&pool, &done).await;
    trades::assert_settled_once(&pool, &client, &sim.address, &done).await;
    trades::assert_views_equal_a_rebuild(&pool).await;
    eprintln!(
        "database restart: readiness 503 after {:.0} ms; first command {:.0} ms after the database's return; \
         {} trades, {commands} acknowledged commands all in the log, settlements once, views equal",
        unready.as_secs_f64() * 1000.0,
        serving.as_secs_f64() * 1000.0,
        done.len()
    );
    pool.close().await;
    drop((carrot, sim, pg));
    let _ = std::fs::remove_dir_all(&dir);
}
