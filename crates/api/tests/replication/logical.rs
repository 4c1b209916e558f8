//! The log streamed out by logical decoding (what Debezium does on its way to Kafka), read
//! with `pg_recvlogical` and the wal2json plugin: every committed event arrives once, in
//! commit order, each with its global position and transaction id.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::{connect, ensure_database};
use serde_json::Value;

use crate::common::load::Load;
use crate::common::{self, http, trades, Process};

/// The slot the test decodes from.
const SLOT: &str = "carrot_stream_test";

/// One decoded transaction: where its commit record is in the WAL (what "commit order"
/// means), and the events it inserted, as (transaction_id, global_position), in the order
/// decoded.
#[derive(Debug, Default)]
struct Decoded {
    commit_lsn: u64,
    events: Vec<(u64, i64)>,
}

/// A WAL position, `X/Y` in hexadecimal, as a number.
fn lsn(text: &str) -> u64 {
    let (high, low) = text.split_once('/').unwrap();
    (u64::from_str_radix(high, 16).unwrap() << 32) | u64::from_str_radix(low, 16).unwrap()
}

/// wal2json's format 2 lines, grouped by transaction.
fn transactions(output: &str) -> Vec<Decoded> {
    let mut decoded = Vec::new();
    let mut current = Decoded::default();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let message: Value = serde_json::from_str(line).unwrap();
        match message["action"].as_str() {
            Some("B") => current = Decoded::default(),
            Some("I") if message["table"] == "events" => {
                let column = |name: &str| {
                    message["columns"]
                        .as_array()
                        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
                        .map(|c| c["value"].clone())
                        .unwrap_or(Value::Null)
                };
                let xid = match column("transaction_id") {
                    Value::String(s) => s.parse().unwrap(),
                    other => other.as_u64().unwrap(),
                };
                let position = column("global_position").as_i64().unwrap();
                current.events.push((xid, position));
            }
            Some("C") => {
                current.commit_lsn = lsn(message["lsn"].as_str().unwrap());
                if !current.events.is_empty() {
                    decoded.push(std::mem::take(&mut current));
                }
            }
            _ => {}
        }
    }
    decoded
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_committed_event_streams_out_once_in_commit_order_with_its_position() {
    let dir = std::env::temp_dir().join(format!("carrot-logical-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bin = Binaries::locate().unwrap();
    let options = ClusterOptions {
        data_dir: dir.join("pg"),
        durable: false,
        remove_on_stop: true,
        port: None,
        settings: vec!["wal_level=logical".into()],
    };
    let recvlogical = bin.path("pg_recvlogical");
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&bin, &options))
        .await
        .unwrap()
        .unwrap();
    ensure_database(&cluster.url("postgres"), "carrot")
        .await
        .unwrap();
    let url = cluster.url("carrot");
    let pool = connect(&url, 2).await.unwrap();
    carrot_projections::postgres::migrate(&pool).await.unwrap();
    let published: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'carrot_events'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(published, ["events"], "the publication Debezium reads");
    sqlx::query("SELECT pg_create_logical_replication_slot($1, 'wal2json')")
        .bind(SLOT)
        .execute(&pool)
        .await
        .unwrap();

    // Trades from four clients at once: transactions that commit out of the order their ids
    // were given in.
    let sim = Process::payment_sim();
    let env = common::service_env(&url, &sim.address, &[]);
    let carrot = Process::start(&["serve"], &env, "listening on");
    let client = http::client();
    let load = Load::start(&client, &carrot.address, 4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let done = load.finish().await;
    trades::settled(&pool).await;
    drop(carrot);
    let end: String = sqlx::query_scalar("SELECT pg_current_wal_lsn()::text")
        .fetch_one(&pool)
        .await
        .unwrap();

    let conninfo = format!("{url}?application_name=carrot_stream_test");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(recvlogical)
            .args([
                "-d",
                &conninfo,
                "--slot",
                SLOT,
                "--start",
                "--no-loop",
                "-f",
                "-",
            ])
            .args(["--endpos", &end])
            .args(["-o", "format-version=2", "-o", "include-lsn=1"])
            .args(["-o", "add-tables=public.events"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "pg_recvlogical: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let streamed = transactions(&String::from_utf8_lossy(&output.stdout));

    // Once each: the stream holds exactly the log's events.
    let logged: Vec<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events ORDER BY global_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let logged: BTreeSet<(u64, i64)> = logged
        .into_iter()
        .map(|(x, p)| (x.parse().unwrap(), p))
        .collect();
    let all: Vec<(u64, i64)> = streamed.iter().flat_map(|t| t.events.clone()).collect();
    let once: BTreeSet<(u64, i64)> = all.iter().copied().collect();
    assert_eq!(all.len(), once.len(), "an event streamed twice");
    assert_eq!(once, logged, "the stream and the log hold the same events");

    // In commit order: the commit records' WAL positions ascend; inside a transaction, one
    // transaction id and ascending positions.
    assert!(
        streamed
            .windows(2)
            .all(|w| w[0].commit_lsn < w[1].commit_lsn),
        "transactions streamed out of commit order"
    );
    for t in &streamed {
        assert!(
            t.events.iter().all(|e| e.0 == t.events[0].0),
            "one transaction"
        );
        assert!(
            t.events.windows(2).all(|w| w[0].1 < w[1].1),
            "positions ascend"
        );
    }
    let reordered = streamed
        .windows(2)
        .filter(|w| w[0].events[0].0 > w[1].events[0].0)
        .count();
    eprintln!(
        "logical decoding: {} trades, {} events in {} transactions streamed once each in \
         commit order; {reordered} transactions committed before one with a smaller id",
        done.len(),
        all.len(),
        streamed.len(),
    );
    sqlx::query("SELECT pg_drop_replication_slot($1)")
        .bind(SLOT)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    drop((sim, cluster));
    let _ = std::fs::remove_dir_all(&dir);
}
