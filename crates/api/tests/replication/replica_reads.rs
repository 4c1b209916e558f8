//! Reads from a streaming replica: a read with a consistency token waits until the replica
//! has applied the token's event, and one without reads what the replica has; a replica
//! further behind than `CARROT_READ_MAX_LAG_MS` is bypassed for the primary, and readiness
//! says so.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{self, http, Process, User};
use crate::pair::{Pair, DATABASE};

/// Where readiness says reads go, `replica` or `primary`.
async fn reads_from(client: &reqwest::Client, base: &str) -> String {
    let url = format!("{base}/health/ready");
    let (_, ready) = http::call(client, reqwest::Method::GET, url, None, None).await;
    ready["read_replica"]["reads_from"]
        .as_str()
        .unwrap_or("none")
        .to_owned()
}

/// Waits (bounded) until readiness says reads go to `want`.
async fn until_reads_from(client: &reqwest::Client, base: &str, want: &str) -> Duration {
    let started = Instant::now();
    while reads_from(client, base).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "reads never went to the {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

/// Registers a listing; its id and consistency token.
async fn register(client: &reqwest::Client, base: &str, seller: &User) -> (String, String) {
    let body = json!({"title": "Kettle", "description": "", "price": 12_000});
    let (status, listing) = http::post(client, base, seller, "/listings", Some(body)).await;
    assert_eq!(status, 201, "{listing}");
    (
        listing["listing_id"].as_str().unwrap().to_owned(),
        listing["consistency_token"].as_str().unwrap().to_owned(),
    )
}

/// `GET /listings/{id}` with `token`, if any: status, and the `x-consistency` header.
async fn read(
    client: &reqwest::Client,
    base: &str,
    user: &User,
    id: &str,
    token: Option<&str>,
) -> (u16, String) {
    let mut request = client
        .get(format!("{base}/listings/{id}"))
        .bearer_auth(&user.token);
    if let Some(token) = token {
        request = request.header("x-consistency-token", token);
    }
    let response = request.send().await.unwrap();
    let consistency = response
        .headers()
        .get("x-consistency")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (response.status().as_u16(), consistency)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_serves_reads_with_read_your_writes_and_is_bypassed_while_far_behind() {
    let pair = Pair::start("replica-reads", &[], false).await;
    let sim = Process::payment_sim();
    let replica_url = pair.standby.url(DATABASE);
    let env = common::service_env(
        &pair.primary.url(DATABASE),
        &sim.address,
        &[
            ("CARROT_READ_DATABASE_URL", &replica_url),
            ("CARROT_READ_MAX_LAG_MS", "1000"),
            ("CARROT_CONSISTENCY_WAIT_MS", "10000"),
        ],
    );
    let carrot = Process::start(&["serve"], &env, "listening on");
    let (client, base) = (http::client(), carrot.address.clone());
    let seller = http::signup(&client, &base).await;
    until_reads_from(&client, &base, "replica").await;
    let standby = pair.standby_pool("postgres").await;

    // Replay paused (the replica falls behind, within the bound): a new listing is not on
    // the replica, so a read without a token does not find it: reads go there.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&standby)
        .await
        .unwrap();
    let (listing, token) = register(&client, &base, &seller).await;
    let (status, _) = read(&client, &base, &seller, &listing, None).await;
    assert_eq!(
        status, 404,
        "read from the replica, which has not replayed it"
    );

    // A read with the token waits for the replica, and answers once it has replayed.
    let waiting = {
        let (client, base, seller, listing, token) = (
            client.clone(),
            base.clone(),
            seller.clone(),
            listing.clone(),
            token.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = read(&client, &base, &seller, &listing, Some(&token)).await;
            (answer, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "answered before the replica replayed the write"
    );
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&standby)
        .await
        .unwrap();
    let ((status, consistency), took) = waiting.await.unwrap();
    assert_eq!((status, consistency.as_str()), (200, "consistent"));
    assert!(took >= Duration::from_millis(500), "{took:?}");

    // Paused for longer than the bound: reads go to the primary, and say so.
    sqlx::query("SELECT pg_wal_replay_pause()")
        .execute(&standby)
        .await
        .unwrap();
    let (behind, _) = register(&client, &base, &seller).await;
    let bypassed_after = until_reads_from(&client, &base, "primary").await;
    let (status, _) = read(&client, &base, &seller, &behind, None).await;
    assert_eq!(
        status, 200,
        "read from the primary while the replica is behind"
    );
    let (fresh, fresh_token) = register(&client, &base, &seller).await;
    let started = Instant::now();
    let (status, consistency) = read(&client, &base, &seller, &fresh, Some(&fresh_token)).await;
    assert_eq!((status, consistency.as_str()), (200, "consistent"));
    let on_primary = started.elapsed();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("carrot_read_replica_serving 0"),
        "{metrics}"
    );

    // Caught up again: back to the replica.
    sqlx::query("SELECT pg_wal_replay_resume()")
        .execute(&standby)
        .await
        .unwrap();
    let back_after = until_reads_from(&client, &base, "replica").await;
    // Within the bound is not caught up: without a token the replica may not have it yet;
    // with one, the read waits for it.
    let (status, consistency) = read(&client, &base, &seller, &fresh, Some(&fresh_token)).await;
    assert_eq!((status, consistency.as_str()), (200, "consistent"));
    eprintln!(
        "replica reads: a token read waited {:.0} ms for the paused replica; bypassed {:.0} ms \
         after a pause began; a token read on the primary then took {:.0} ms; back on the \
         replica {:.0} ms after it resumed",
        took.as_secs_f64() * 1000.0,
        bypassed_after.as_secs_f64() * 1000.0,
        on_primary.as_secs_f64() * 1000.0,
        back_after.as_secs_f64() * 1000.0,
    );
    standby.close().await;
    drop((carrot, sim));
}
