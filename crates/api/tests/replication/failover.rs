//! A primary killed under a trade load and its synchronous standby promoted in its place,
//! behind the same address (a TCP forwarder standing in for the `-rw` Service), as
//! CloudNativePG or Patroni would do it. The service is not restarted. Afterwards: every
//! acknowledged command's event is in the log, every trade is settled at most once (exactly
//! once when its closing was acknowledged), the gateway agrees with the log, every view
//! equals a rebuild, and a consistency token issued before the failover still reads as
//! consistent. Commands during the switch are refused with 503 and Retry-After, never left
//! hanging; the time from the kill to the first command that succeeds is reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::forwarder::Forwarder;
use crate::common::load::Load;
use crate::common::{self, http, trades, Process, User};
use crate::pair::{Pair, DATABASE};

/// How long a command may take to be answered, at most, during the switch: the pool's
/// acquire timeout (5 s) and a margin. Longer counts as hanging.
const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// One command sent during the switch: when it was sent after the kill, its status, whether
/// it said when to retry, and how long its answer took.
#[derive(Debug, Clone)]
struct Probe {
    after_kill: Duration,
    status: u16,
    retry_after: bool,
    took: Duration,
}

/// Registers listings one after another until stopped, noting each answer in `probes`.
fn probe(
    client: &reqwest::Client,
    base: &str,
    seller: &User,
    killed_at: Instant,
    probes: Arc<Mutex<Vec<Probe>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let (client, base, seller) = (client.clone(), base.to_owned(), seller.clone());
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let sent = Instant::now();
            let answer = client
                .post(format!("{base}/listings"))
                .bearer_auth(&seller.token)
                .json(&json!({"title": "Probe", "description": "", "price": 1000}))
                .timeout(ANSWER_WITHIN * 2)
                .send()
                .await;
            let (status, retry_after) = match &answer {
                Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
                Err(_) => (0, false),
            };
            let probe = Probe {
                after_kill: sent.duration_since(killed_at),
                status,
                retry_after,
                took: sent.elapsed(),
            };
            probes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(probe);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

/// When the first command that succeeded after the kill was answered, if one has.
fn first_success(probes: &Mutex<Vec<Probe>>) -> Option<Duration> {
    probes
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|p| p.status == 201)
        .map(|p| p.after_kill + p.took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_primary_killed_under_load_fails_over_to_its_synchronous_standby_and_nothing_acknowledged_is_lost(
) {
    let seconds: u64 = std::env::var("CARROT_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let mut pair = Pair::start("failover", &[], true).await;
    let rw = Forwarder::start(pair.primary.port()).await;
    let url = pair.primary.url(DATABASE).replace(
        &format!(":{}/", pair.primary.port()),
        &format!(":{}/", rw.port),
    );
    let sim = Process::payment_sim();
    let env = common::service_env(
        &url,
        &sim.address,
        &[
            ("CARROT_SAGA_LEASE_MS", "1000"),
            ("CARROT_DB_POOL_SIZE", "8"),
        ],
    );
    let carrot = Process::start(&["serve"], &env, "listening on");
    let pid = carrot.pid();
    let (client, base) = (http::client(), carrot.address.clone());
    let seller = http::signup(&client, &base).await;
    let body = json!({"title": "Before", "description": "", "price": 5000});
    let (status, before) = http::post(&client, &base, &seller, "/listings", Some(body)).await;
    assert_eq!(status, 201);

    let load = Load::start(&client, &base, 4);
    tokio::time::sleep(Duration::from_secs(seconds / 2)).await;

    // The primary's machine is lost: every process of the cluster at once.
    let killed_at = Instant::now();
    let (probes, stop) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicBool::new(false)),
    );
    let probing = probe(
        &client,
        &base,
        &seller,
        killed_at,
        probes.clone(),
        stop.clone(),
    );
    tokio::task::block_in_place(|| pair.primary.kill());
    // What the manager does: notice (here, a fixed half second), promote the synchronous
    // standby, point the Service at it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let promoting = Instant::now();
    tokio::task::block_in_place(|| pair.standby.promote()).unwrap();
    let promoted_in = promoting.elapsed();
    rw.switch(pair.standby.port());
    let switched_at = killed_at.elapsed();

    let first_success = loop {
        if let Some(at) = first_success(&probes) {
            break at;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(60),
            "no command succeeded within 60 s of the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(seconds / 2)).await;
    stop.store(true, Ordering::Relaxed);
    probing.await.unwrap();
    let probes = std::mem::take(&mut *probes.lock().unwrap_or_else(PoisonError::into_inner));
    let done = load.finish().await;

    // Never hanging: every command sent during the switch was answered in time, each a
    // success or a 503 that says when to retry.
    for p in &probes {
        assert!(
            p.took <= ANSWER_WITHIN,
            "a command hung for {:?}: {p:?}",
            p.took
        );
        assert!(
            p.status == 201 || (p.status == 503 && p.retry_after),
            "during the switch: {p:?}"
        );
    }
    let refused = probes.iter().filter(|p| p.status == 503).count();
    assert!(
        refused > 0,
        "no command saw the primary gone: the kill proved nothing"
    );
    assert_eq!(carrot.pid(), pid);
    assert!(
        std::fs::metadata(format!("/proc/{pid}")).is_ok(),
        "the service had to restart"
    );

    // A token issued before the failover still reads as consistent.
    let id = before["listing_id"].as_str().unwrap();
    let token = before["consistency_token"].as_str().unwrap();
    let response = client
        .get(format!("{base}/listings/{id}"))
        .bearer_auth(&seller.token)
        .header("x-consistency-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-consistency"], "consistent");

    let pool = pair.standby_pool(DATABASE).await;
    trades::settled(&pool).await;
    let commands = trades::assert_acknowledged_in_log(&pool, &done).await;
    trades::assert_settled_once(&pool, &client, &sim.address, &done).await;
    trades::assert_views_equal_a_rebuild(&pool).await;
    let slowest = probes.iter().map(|p| p.took).max().unwrap_or_default();
    eprintln!(
        "failover: {} s of load, {} trades, {commands} acknowledged commands all in the log, \
         settlements once, views equal a rebuild; the kill to the Service switched {:.0} ms \
         (promotion {:.0} ms), to the first successful command {:.0} ms; {refused} commands \
         refused with 503 meanwhile, the slowest answer {:.0} ms",
        seconds,
        done.len(),
        switched_at.as_secs_f64() * 1000.0,
        promoted_in.as_secs_f64() * 1000.0,
        first_success.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0,
    );
    pool.close().await;
    drop((carrot, sim, rw));
}
