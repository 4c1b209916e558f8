//! Client chaos: buyers whose apps give up at random moments (0 to 1.5 s), retries with
//! and without an Idempotency-Key, a gateway that is slow (0 to 1 s), fails in bursts, and
//! charges and then loses its answer (a proxy's 502, a dropped connection), and the server
//! SIGKILLed now and then. Afterwards every capture the gateway made is held in a request's
//! escrow, refunded or paid out; the log and the gateway agree on every movement, captures
//! included; the breaker is closed; every view equals a rebuild.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use carrot_projections::testing::test_database;
use futures_util::future::join_all;
use rand::Rng;
use serde_json::{json, Value};

use crate::common::http::{self, post};
use crate::common::trades;
use crate::common::{self, Process, User};

/// What the buyers saw, for the figures.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    cut_off: AtomicUsize,
}

async fn set_faults(client: &reqwest::Client, sim: &str, faults: Value) {
    let answer = client
        .put(format!("{sim}/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{answer:?}");
}

fn lying_gateway(failing: bool) -> Value {
    json!({
        "latency_ms": "0-1000",
        "failure_rate": if failing { 1.0 } else { 0.05 },
        "decline_rate": 0.05,
        "down": false,
        "proxy_error_rate": 0.1,
        "drop_rate": 0.1,
    })
}

/// A purchase request from a buyer whose app gives up after a random moment, retried as
/// careless and careful apps do: with the same key (twice at most), or once without one.
async fn impatient_purchase(base: &str, buyer: &User, listing: &str, seen: &Seen) {
    let path = format!("{base}/listings/{listing}/requests");
    let key = rand::thread_rng()
        .gen_bool(0.5)
        .then(|| uuid::Uuid::new_v4().to_string());
    for attempt in 0..3 {
        let patience = Duration::from_millis(rand::thread_rng().gen_range(0..1_500));
        let client = reqwest::Client::builder()
            .timeout(patience)
            .build()
            .unwrap();
        let mut request = client.post(&path).bearer_auth(&buyer.token);
        if let Some(key) = &key {
            request = request.header("idempotency-key", key);
        }
        seen.requests.fetch_add(1, Ordering::Relaxed);
        let status = request.send().await.map(|r| r.status().as_u16());
        let done = matches!(status, Ok(s) if s < 500);
        if done {
            return;
        }
        seen.cut_off.fetch_add(1, Ordering::Relaxed);
        if key.is_none() && attempt == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One buyer and one seller trading until `stop`: some deals are answered by the seller,
/// some completed, some left open; the calls after the purchase use a patient client.
async fn trader(base: String, stop: Arc<AtomicBool>, seen: Arc<Seen>) {
    let client = http::client();
    let (seller, buyer) = loop {
        let signed = async {
            let seller = try_signup(&client, &base).await?;
            let buyer = try_signup(&client, &base).await?;
            Some((seller, buyer))
        };
        if let Some(both) = signed.await {
            break both;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut n = 0u32;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let body = json!({"title": "Radio", "description": "", "price": 1_000 + n});
        let (status, listing) = post(&client, &base, &seller, "/listings", Some(body)).await;
        let Some(listing) = listing["listing_id"].as_str().filter(|_| status == 201) else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        impatient_purchase(&base, &buyer, listing, &seen).await;
        let open: Value = http::call(
            &client,
            reqwest::Method::GET,
            format!("{base}/mypage/purchases?limit=5"),
            Some(&buyer),
            None,
        )
        .await
        .1;
        let Some(request) = open["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["listing_id"] == listing))
            .and_then(|i| i["request_id"].as_str())
        else {
            continue;
        };
        match n % 3 {
            0 => {
                post(
                    &client,
                    &base,
                    &seller,
                    &format!("/requests/{request}/accept"),
                    None,
                )
                .await;
                post(
                    &client,
                    &base,
                    &buyer,
                    &format!("/requests/{request}/complete"),
                    None,
                )
                .await;
            }
            1 => {
                post(
                    &client,
                    &base,
                    &seller,
                    &format!("/requests/{request}/reject"),
                    None,
                )
                .await;
            }
            _ => {}
        }
    }
}

async fn try_signup(client: &reqwest::Client, base: &str) -> Option<User> {
    let name = format!("c_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let body = json!({"username": name, "password": "correct horse battery"});
    let (status, answer) = post_anonymous(client, base, "/auth/signup", body).await;
    (status == 201).then(|| User {
        id: answer["user_id"].as_str().unwrap_or_default().to_owned(),
        username: name,
        token: answer["token"].as_str().unwrap_or_default().to_owned(),
    })
}

async fn post_anonymous(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    http::call(
        client,
        reqwest::Method::POST,
        format!("{base}{path}"),
        None,
        Some(body),
    )
    .await
}

/// The gateway's movements: key -> (operation, amount).
async fn movements(client: &reqwest::Client, sim: &str) -> HashMap<String, (String, i64)> {
    let ledger: Value = client
        .get(format!("{sim}/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["outcome"] == "ok")
        .map(|e| {
            (
                e["idempotency_key"].as_str().unwrap().to_owned(),
                (
                    e["operation"].as_str().unwrap().to_owned(),
                    e["amount"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The log's movements, under the keys the gateway knows them by.
async fn logged(pool: &Db) -> HashMap<String, (String, i64)> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT aggregate_id, event_type, (payload -> event_type ->> 'amount')::bigint
           FROM events WHERE aggregate_type = 'payment'
            AND event_type IN ('PaymentCaptured', 'PaymentCaptureDiscovered',
                               'PaymentRefunded', 'PaymentPaidOut')",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(payment, event, amount)| {
            let op = match event.as_str() {
                "PaymentRefunded" => "refund",
                "PaymentPaidOut" => "payout",
                _ => "capture",
            };
            (format!("{op}:{payment}"), (op.to_owned(), amount))
        })
        .collect()
}

/// Captures at the gateway that are neither refunded, paid out, nor held for a request.
async fn unaccounted(pool: &Db, gateway: &HashMap<String, (String, i64)>) -> Vec<String> {
    let mut loose = Vec::new();
    for key in gateway.keys().filter(|k| k.starts_with("capture:")) {
        let payment = &key["capture:".len()..];
        let settled = gateway.contains_key(&format!("refund:{payment}"))
            || gateway.contains_key(&format!("payout:{payment}"));
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
              WHERE aggregate_type = 'purchase_request' AND event_type = 'PurchaseRequested'
                AND payload -> 'PurchaseRequested' ->> 'payment_id' = $1",
        )
        .bind(payment)
        .fetch_one(pool)
        .await
        .unwrap();
        if !settled && held == 0 {
            loose.push(key.clone());
        }
    }
    loose
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn money_is_never_left_at_the_gateway_whatever_clients_and_the_gateway_do() {
    let seconds: u64 = std::env::var("CARROT_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let db = test_database().await;
    let sim = Process::payment_sim();
    let control = http::client();
    set_faults(&control, &sim.address, lying_gateway(false)).await;
    let port = common::free_port();
    let bind = format!("127.0.0.1:{port}");
    let env = common::service_env(
        &db.url,
        &sim.address,
        &[
            ("CARROT_BIND", &bind),
            ("CARROT_SAGA_LEASE_MS", "1000"),
            ("CARROT_DB_POOL_SIZE", "8"),
            ("CARROT_PAYMENT_TIMEOUT_MS", "1500"),
        ],
    );
    let start = || Process::start(&["serve"], &env, "listening on");
    let server = Arc::new(Mutex::new(Some(start())));
    let base = format!("http://127.0.0.1:{port}");

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Seen::default());
    let traders: Vec<_> = (0..4)
        .map(|_| tokio::spawn(trader(base.clone(), stop.clone(), seen.clone())))
        .collect();
    let began = Instant::now();
    let mut kills = 0;
    let mut tick = 0;
    while began.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        tick += 1;
        // A failure burst every fourth second; a SIGKILL every fourth, offset.
        set_faults(&control, &sim.address, lying_gateway(tick % 4 == 1)).await;
        if tick % 4 == 3 {
            let running = server.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(running) = running {
                running.kill();
                kills += 1;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            *server.lock().unwrap_or_else(PoisonError::into_inner) = Some(start());
        }
    }
    stop.store(true, Ordering::Relaxed);
    join_all(traders).await;

    // The gateway heals; a few trades of a patient buyer let the breaker's trials close it.
    set_faults(
        &control,
        &sim.address,
        json!({"latency_ms": "0", "failure_rate": 0.0, "decline_rate": 0.0, "down": false}),
    )
    .await;
    let breaker_closed = async {
        let seller = http::signup(&control, &base).await;
        for _ in 0..40 {
            let buyer = http::signup(&control, &base).await;
            let body = json!({"title": "Clock", "description": "", "price": 5_000});
            let (_, listing) = post(&control, &base, &seller, "/listings", Some(body)).await;
            if let Some(listing) = listing["listing_id"].as_str() {
                let path = format!("/listings/{listing}/requests");
                post(&control, &base, &buyer, &path, None).await;
            }
            let ready: Value = http::call(
                &control,
                reqwest::Method::GET,
                format!("{base}/health/ready"),
                None,
                None,
            )
            .await
            .1;
            if ready["payment_gateway"]["circuit"] == "closed" {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        false
    };
    assert!(
        breaker_closed.await,
        "the breaker never closed once the gateway recovered"
    );

    // Every started capture resolves, every abandoned one is refunded: wait for it.
    let deadline = Instant::now() + Duration::from_secs(75);
    let mut loose;
    loop {
        trades::settled(&db.pool).await;
        let gateway = movements(&control, &sim.address).await;
        loose = unaccounted(&db.pool, &gateway).await;
        if loose.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        loose.is_empty(),
        "captured at the gateway and unaccounted for: {loose:?}"
    );
    let gateway = movements(&control, &sim.address).await;
    let log = logged(&db.pool).await;
    assert_eq!(
        gateway, log,
        "the gateway and the log disagree on some movement"
    );
    trades::assert_views_equal_a_rebuild(&db.pool).await;
    report(&db.pool, &seen, kills, seconds).await;
    drop(server);
    drop(sim);
}

/// The figures of the run: captures made, cut off, reconciled, and how long a capture cut
/// off from its request took to be refunded.
async fn report(pool: &Db, seen: &Seen, kills: usize, seconds: u64) {
    let captures: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('PaymentCaptured', 'PaymentCaptureDiscovered')",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let reconciled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('PaymentCaptured', 'PaymentDeclined')
            AND metadata ->> 'causation_id' LIKE 'saga:reconcile:%'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let mut to_resolve: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM o.recorded_at - s.recorded_at)::float8
           FROM events s JOIN events o ON o.aggregate_id = s.aggregate_id
          WHERE s.event_type = 'PaymentCaptureStarted'
            AND o.event_type IN ('PaymentCaptured', 'PaymentDeclined')
            AND o.metadata ->> 'causation_id' LIKE 'saga:reconcile:%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut to_refund: Vec<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM r.recorded_at - s.recorded_at)::float8
           FROM events s JOIN events r ON r.aggregate_id = s.aggregate_id
          WHERE s.event_type = 'PaymentCaptureStarted' AND r.event_type = 'PaymentRefunded'
            AND EXISTS (SELECT 1 FROM events a WHERE a.event_type = 'PurchaseRequestAbandoned'
                         AND a.payload -> 'PurchaseRequestAbandoned' ->> 'payment_id' = s.aggregate_id)",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    to_refund.sort_by(f64::total_cmp);
    to_resolve.sort_by(f64::total_cmp);
    let pct = |of: &[f64], p: f64| {
        of.get(((of.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    eprintln!(
        "client chaos: {seconds} s, {kills} SIGKILLs, {} purchase calls ({} cut off or 5xx), \
         {captures} captures, {reconciled} settled by the reconciler (start to outcome p50 \
         {:.1} s, p99 {:.1} s), {} cut off from their request and refunded (start to refund \
         p50 {:.1} s, p99 {:.1} s); every capture accounted for, gateway = log, breaker \
         closed, views equal a rebuild",
        seen.requests.load(Ordering::Relaxed),
        seen.cut_off.load(Ordering::Relaxed),
        pct(&to_resolve, 0.5),
        pct(&to_resolve, 0.99),
        to_refund.len(),
        pct(&to_refund, 0.5),
        pct(&to_refund, 0.99),
    );
}
