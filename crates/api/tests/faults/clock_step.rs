//! A worker whose wall clock steps ten days forward (a bad NTP sync, a resumed VM) fires no
//! deadline early: `carrot serve --role worker` runs under libfaketime (`FAKETIME=+10d`,
//! the monotonic clock left alone, as a real step leaves it), next to an API on the true
//! time. Every process tells time by the database's clock (postgres/clock.rs), so the
//! pending request stays pending and the accepted one is not completed and paid out.

use std::path::Path;
use std::time::Duration;

use carrot_projections::testing::test_database;

use crate::common::http::{self, post};
use crate::common::{service_env, Process};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

async fn events_of(pool: &carrot_projections::postgres::Db, id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY global_position",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_clock_steps_ten_days_forward_fires_no_deadline_early() {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "libfaketime is needed (apt-get install faketime; .ci/run installs it)"
    );
    let db = test_database().await;
    let sim = Process::payment_sim();
    let env = service_env(
        &db.url,
        &sim.address,
        &[
            ("CARROT_REQUEST_TTL_SECONDS", "3600"),
            ("CARROT_COMPLETION_TTL_SECONDS", "7200"),
        ],
    );
    let api = Process::start(&["serve", "--role", "api"], &env, "listening on");
    let client = http::client();
    let base = api.address.clone();
    let seller = http::signup(&client, &base).await;
    let buyer = http::signup(&client, &base).await;
    let mut requests = Vec::new();
    for accept in [false, true] {
        let body = serde_json::json!({"title": "Kettle", "description": "", "price": 9_000});
        let (status, listing) = post(&client, &base, &seller, "/listings", Some(body)).await;
        assert_eq!(status, 201, "{listing}");
        let path = format!(
            "/listings/{}/requests",
            listing["listing_id"].as_str().unwrap()
        );
        let (status, placed) = post(&client, &base, &buyer, &path, None).await;
        assert_eq!(status, 201, "{placed}");
        let request = placed["request_id"].as_str().unwrap().to_owned();
        if accept {
            let (status, _) = post(
                &client,
                &base,
                &seller,
                &format!("/requests/{request}/accept"),
                None,
            )
            .await;
            assert_eq!(status, 200);
        }
        requests.push(request);
    }

    // The worker's wall clock is ten days ahead; its monotonic clock is not.
    let mut stepped = env.clone();
    stepped.push(("LD_PRELOAD", LIBFAKETIME.to_owned()));
    stepped.push(("FAKETIME", "+10d".to_owned()));
    stepped.push(("DONT_FAKE_MONOTONIC", "1".to_owned()));
    let worker = Process::start(&["serve", "--role", "worker"], &stepped, "listening on");
    // The step took: the worker's own HTTP date is ten days ahead.
    let date = client
        .get(format!("{}/health/live", worker.address))
        .send()
        .await
        .unwrap()
        .headers()["date"]
        .to_str()
        .unwrap()
        .to_owned();
    let told = chrono::DateTime::parse_from_rfc2822(&date).unwrap();
    let ahead = told.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(ahead > chrono::Duration::days(9), "worker's clock: {date}");

    // Many timer ticks later (one a second), nothing has fired.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        events_of(&db.pool, &requests[0]).await,
        ["PurchaseRequested"]
    );
    assert_eq!(
        events_of(&db.pool, &requests[1]).await,
        ["PurchaseRequested", "PurchaseRequestAccepted"]
    );
    let transfers: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type IN ('PaymentRefunded', 'PaymentPaidOut')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(transfers, 0, "no money moved early");
    // The worker is alive and working: its saga has read the log.
    let due: i64 = sqlx::query_scalar("SELECT count(*) FROM settlement.deadlines")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(due >= 2, "the deadlines are set, and not due");
    worker.kill();
    api.kill();
    sim.kill();
}
