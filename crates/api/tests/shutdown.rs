//! Graceful shutdown of a real process: on SIGTERM, readiness stops answering 200 at once,
//! the requests in flight complete, and the process exits cleanly. Also its logs are JSON
//! lines carrying the HTTP request id when asked for.

mod common;

use std::time::Duration;

use carrot_projections::testing::test_database;
use common::http::{self, post};
use common::Process;
use futures_util::future::join_all;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_when_sigterm_arrives_complete_and_the_process_exits_cleanly() {
    let db = test_database().await;
    let env = vec![
        ("DATABASE_URL", db.url.clone()),
        (
            "CARROT_JWT_SECRET",
            "the shutdown test's own signing secret".to_owned(),
        ),
        ("CARROT_BIND", "127.0.0.1:0".to_owned()),
        // Every capture takes a second: the requests are surely in flight at SIGTERM.
        ("CARROT_PAYMENT_LATENCY_MS", "1000".to_owned()),
        ("CARROT_PAYMENT_TIMEOUT_MS", "5000".to_owned()),
        ("CARROT_LOG_FORMAT", "json".to_owned()),
        ("CARROT_LOG", "info".to_owned()),
    ];
    let mut carrot = Process::start(&["serve"], &env, "listening on");
    let base = carrot.address.clone();
    let client = http::client();
    let seller = http::signup(&client, &base).await;
    let buyer = http::signup(&client, &base).await;
    let mut listings = Vec::new();
    for n in 0..8 {
        let body = json!({"title": "Stool", "description": "", "price": 3_000 + n});
        let (status, listing) = post(&client, &base, &seller, "/listings", Some(body)).await;
        assert_eq!(status, 201);
        listings.push(listing["listing_id"].as_str().unwrap().to_owned());
    }
    let in_flight = listings.iter().map(|listing| {
        let (client, base, buyer) = (client.clone(), base.clone(), buyer.clone());
        let path = format!("/listings/{listing}/requests");
        tokio::spawn(async move { post(&client, &base, &buyer, &path, None).await })
    });
    let in_flight: Vec<_> = in_flight.collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    carrot.terminate();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Not ready any more: refused, or 503.
    let ready = client.get(format!("{base}/health/ready")).send().await;
    if let Ok(response) = ready {
        assert_eq!(response.status(), 503, "readiness during the drain");
    }
    for answer in join_all(in_flight).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, 201, "a request in flight at SIGTERM: {body}");
        assert_eq!(body["status"], "requested");
    }
    let status = carrot.wait(Duration::from_secs(20));
    assert!(status.success(), "exit status {status}");

    // Its logs are JSON lines; request logs carry the HTTP request id.
    let lines = carrot.output();
    let json: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    assert!(!json.is_empty(), "no JSON log lines:\n{}", lines.join("\n"));
    let with_request_id = json
        .iter()
        .filter(|l| l.to_string().contains("request_id"))
        .count();
    assert!(
        with_request_id > 0,
        "no log line carries a request id:\n{}",
        lines.join("\n")
    );
}
