//! The frozen corpus read by today's code. `crates/domain/corpus/events.jsonl` holds events
//! that earlier code wrote in real trades (every event type of every aggregate, at the
//! versions they were written with) and is never regenerated, only appended to. Loaded into
//! an empty log, every aggregate in it loads through the event store, every view and the
//! saga run over it, and what they hold equals `tests/corpus/expected.json`, committed when
//! the corpus was. A change that makes old events read differently fails here before it
//! ships.
//!
//! `CARROT_WRITE_EXPECTED=1` writes the expected state (after the corpus was appended to);
//! in its diff no earlier line may change.

use std::collections::BTreeMap;
use std::sync::Arc;

use carrot_domain::listing::Listing;
use carrot_domain::payment::Payment;
use carrot_domain::purchase_request::PurchaseRequest;
use carrot_domain::schema::StateVersion;
use carrot_projections::log::notify::Notifier;
use carrot_projections::postgres::Db;
use carrot_projections::settlement::{SagaConfig, SettlementSaga};
use carrot_projections::testing::test_database;
use carrot_projections::views;
use carrot_projections::write_side::event_store::Store;
use carrot_projections::{Runner, RunnerConfig, Subscriber};
use cqrs_es::{Aggregate, AggregateContext, EventStore};
use serde_json::{Map, Value};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../domain/corpus/events.jsonl");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/expected.json");

/// Columns that say where or when a row was written, not what it holds: a log's
/// transaction ids differ from one database to the next, and the saga's outbox keeps its
/// own clock.
const BOOKKEEPING: [&str; 6] = [
    "transaction_id",
    "global_position",
    "created_at",
    "updated_at",
    "next_attempt_at",
    "locked_until",
];

fn corpus() -> Vec<Value> {
    std::fs::read_to_string(CORPUS)
        .expect("the corpus")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a corpus line"))
        .collect()
}

/// Appends the corpus's events in order, in one transaction, as stored (type, version,
/// payload, metadata and time).
async fn load(pool: &Db, events: &[Value]) {
    let mut tx = pool.begin().await.expect("a transaction");
    for event in events {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::timestamptz)",
        )
        .bind(event["aggregate_type"].as_str())
        .bind(event["aggregate_id"].as_str())
        .bind(event["sequence"].as_i64())
        .bind(event["event_type"].as_str())
        .bind(event["event_version"].as_str())
        .bind(&event["payload"])
        .bind(&event["metadata"])
        .bind(event["recorded_at"].as_str())
        .execute(&mut *tx)
        .await
        .expect("appending a corpus event");
    }
    tx.commit().await.expect("committing the corpus");
}

/// Every aggregate of type `A` in the corpus, as the event store loads it.
async fn aggregates<A: Aggregate + StateVersion + 'static>(
    pool: &Db,
    events: &[Value],
) -> BTreeMap<String, Value> {
    let store = Store::<A>::new(pool.clone(), Notifier::silent(), Default::default());
    let mut loaded = BTreeMap::new();
    for event in events.iter().filter(|e| e["aggregate_type"] == A::TYPE) {
        let id = event["aggregate_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if loaded.contains_key(&id) {
            continue;
        }
        let mut context = store.load_aggregate(&id).await.expect("an aggregate loads");
        let state = serde_json::to_value(context.aggregate()).expect("a state serializes");
        loaded.insert(id, state);
    }
    loaded
}

/// Every row of every table in `schema`, bookkeeping columns left out, in a stable order.
async fn rows(pool: &Db, schema: &str) -> BTreeMap<String, Value> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
          WHERE table_schema = $1 ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("listing tables");
    let mut out = BTreeMap::new();
    for table in tables {
        let raw: Vec<Value> = sqlx::query_scalar(&format!(
            r#"SELECT to_jsonb(t) FROM "{schema}"."{table}" t"#
        ))
        .fetch_all(pool)
        .await
        .expect("reading a table");
        let mut kept: Vec<Value> = raw
            .into_iter()
            .map(|row| {
                let fields: Map<String, Value> = row
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !BOOKKEEPING.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Value::Object(fields)
            })
            .collect();
        kept.sort_by_key(Value::to_string);
        out.insert(table, Value::Array(kept));
    }
    out
}

async fn run(pool: &Db, subscriber: Arc<dyn Subscriber>) {
    let runner = Runner::new(pool.clone(), subscriber, RunnerConfig::default());
    runner.register().await.expect("registering");
    runner
        .catch_up()
        .await
        .expect("catching up over the corpus");
}

#[tokio::test]
async fn the_frozen_corpus_loads_and_replays_to_the_expected_views_under_todays_code() {
    let db = test_database().await;
    let pool = &db.pool;
    let events = corpus();
    load(pool, &events).await;

    let mut state = BTreeMap::new();
    let listings = aggregates::<Listing>(pool, &events).await;
    let requests = aggregates::<PurchaseRequest>(pool, &events).await;
    let payments = aggregates::<Payment>(pool, &events).await;
    let loaded = BTreeMap::from([
        (Listing::TYPE, listings),
        (PurchaseRequest::TYPE, requests),
        (Payment::TYPE, payments),
    ]);
    state.insert(
        "aggregates".to_owned(),
        serde_json::to_value(loaded).expect("states"),
    );
    let mut subscribers = views::all();
    subscribers.push(Arc::new(SettlementSaga::new(SagaConfig::default())));
    for subscriber in subscribers {
        let name = subscriber.name();
        run(pool, subscriber).await;
        let held = serde_json::to_value(rows(pool, name).await).expect("rows");
        state.insert(name.to_owned(), held);
    }
    let state = Value::Object(state.into_iter().collect());

    if std::env::var_os("CARROT_WRITE_EXPECTED").is_some() {
        let text = serde_json::to_string_pretty(&state).expect("the expected state");
        std::fs::create_dir_all(std::path::Path::new(EXPECTED).parent().expect("a folder"))
            .expect("the folder");
        std::fs::write(EXPECTED, text + "\n").expect("writing the expected state");
        return;
    }
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(EXPECTED).expect("tests/corpus/expected.json"),
    )
    .expect("the expected state");
    for (part, held) in state.as_object().into_iter().flatten() {
        for (table, rows) in held.as_object().into_iter().flatten() {
            assert_eq!(
                rows, &expected[part][table],
                "{part}.{table}: today's code reads the frozen corpus differently than the code \
                 that wrote it. Old events must keep their meaning: fix the upcaster or the \
                 reader, never the expected state"
            );
        }
    }
    assert_eq!(state, expected, "the same parts and tables");
}
