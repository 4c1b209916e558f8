//! Property test of the write side: random rounds of commands from several users on a few
//! listings, each round sent concurrently, never break the trade's invariants, checked on
//! the event log itself; and the catalog view, rebuilt from those events, equals the
//! listings' aggregates.

use std::collections::{HashMap, HashSet};

use carrot_domain::listing::{Listing, ListingStatus};
use carrot_domain::SystemClock;
use carrot_projections::write_side::WriteSide;
use carrot_projections::Checkpoint;
use futures_util::future::join_all;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};

const USERS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Register {
        seller: usize,
    },
    Request {
        buyer: usize,
        listing: Index,
        offer: bool,
    },
    Act {
        user: usize,
        request: Index,
        action: &'static str,
    },
    Withdraw {
        user: usize,
        listing: Index,
    },
    Edit {
        user: usize,
        listing: Index,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    prop_oneof![
        2 => user.clone().prop_map(|seller| Op::Register { seller }),
        4 => (user.clone(), any::<Index>(), any::<bool>())
            .prop_map(|(buyer, listing, offer)| Op::Request { buyer, listing, offer }),
        6 => (user.clone(), any::<Index>(), prop::sample::select(vec!["accept", "reject", "complete", "cancel"]))
            .prop_map(|(user, request, action)| Op::Act { user, request, action }),
        1 => (user.clone(), any::<Index>()).prop_map(|(user, listing)| Op::Withdraw { user, listing }),
        1 => (user, any::<Index>()).prop_map(|(user, listing)| Op::Edit { user, listing }),
    ]
}

/// What one case created, and the tokens it was answered with.
#[derive(Default)]
struct World {
    listings: Vec<String>,
    requests: Vec<String>,
    tokens: Vec<Checkpoint>,
}

/// Runs one op; returns its status and body.
async fn run(app: &TestApp, users: &[User], world: &World, op: &Op) -> (StatusCode, Value) {
    let pick = |items: &[String], i: &Index| {
        (!items.is_empty()).then(|| items[i.index(items.len())].clone())
    };
    let response = match op {
        Op::Register { seller } => {
            let body = json!({"title": "Thing", "description": "", "price": 10_000});
            app.post(&users[*seller], "/listings")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
        Op::Request {
            buyer,
            listing,
            offer,
        } => {
            let Some(listing) = pick(&world.listings, listing) else {
                return (StatusCode::OK, Value::Null);
            };
            let body = offer.then(|| json!({"price": 9_000}));
            app.request_listing(&users[*buyer], &listing, body).await
        }
        Op::Act {
            user,
            request,
            action,
        } => {
            let Some(request) = pick(&world.requests, request) else {
                return (StatusCode::OK, Value::Null);
            };
            app.act(&users[*user], &request, action).await
        }
        Op::Withdraw { user, listing } => {
            let Some(listing) = pick(&world.listings, listing) else {
                return (StatusCode::OK, Value::Null);
            };
            app.delete(&users[*user], &format!("/listings/{listing}"))
                .send()
                .await
                .unwrap()
        }
        Op::Edit { user, listing } => {
            let Some(listing) = pick(&world.listings, listing) else {
                return (StatusCode::OK, Value::Null);
            };
            app.patch(&users[*user], &format!("/listings/{listing}"))
                .json(&json!({"price": 9_500}))
                .send()
                .await
                .unwrap()
        }
    };
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

async fn case(app: &TestApp, rounds: Vec<Vec<Op>>) -> Result<(), TestCaseError> {
    let users = join_all((0..USERS).map(|_| app.signup("p"))).await;
    let mut world = World::default();
    for round in rounds {
        let outcomes = join_all(round.iter().map(|op| run(app, &users, &world, op))).await;
        for (op, (status, body)) in round.iter().zip(outcomes) {
            prop_assert!(
                [200, 201, 402, 403, 404, 409, 422].contains(&status.as_u16()),
                "{op:?} answered {status}: {body}"
            );
            if let Some(token) = body["consistency_token"].as_str() {
                world.tokens.push(
                    token
                        .parse()
                        .map_err(|_| TestCaseError::fail("bad token"))?,
                );
            }
            if status == StatusCode::CREATED {
                if let Some(id) = body["listing_id"].as_str() {
                    world.listings.push(id.to_owned());
                }
                if let Some(id) = body["request_id"].as_str() {
                    world.requests.push(id.to_owned());
                }
            }
        }
    }
    check_log(app, &world).await?;
    check_views(app, &users[0], &world).await
}

/// One event of this case, in log order.
#[derive(Debug, sqlx::FromRow)]
struct Row {
    aggregate_type: String,
    aggregate_id: String,
    event_type: String,
    payload: Value,
}

async fn check_log(app: &TestApp, world: &World) -> Result<(), TestCaseError> {
    let listings: HashSet<&str> = world.listings.iter().map(String::as_str).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT aggregate_type, aggregate_id, event_type, payload FROM events
          ORDER BY transaction_id, global_position",
    )
    .fetch_all(&app.db.pool)
    .await
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let trade_of = |row: &Row| row.payload[&row.event_type]["trade"].clone();
    let mut holder: HashMap<String, Option<String>> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    let mut open: HashMap<(String, String), String> = HashMap::new();
    let mut captured: HashMap<String, i64> = HashMap::new();
    for row in rows.iter() {
        let body = &row.payload[&row.event_type];
        match (row.aggregate_type.as_str(), row.event_type.as_str()) {
            ("listing", _) if !listings.contains(row.aggregate_id.as_str()) => {}
            ("listing", event) => {
                let id = &row.aggregate_id;
                prop_assert!(
                    !closed.contains(id),
                    "{event} after the listing was sold or withdrawn"
                );
                let held = holder.entry(id.clone()).or_default();
                match event {
                    "ListingReserved" => {
                        prop_assert!(held.is_none(), "reserved twice: {id}");
                        *held = body["request_id"].as_str().map(str::to_owned);
                    }
                    "ListingReleased" => *held = None,
                    "ListingSold" => {
                        prop_assert_eq!(
                            held.as_deref(),
                            body["request_id"].as_str(),
                            "sold to a non-holder"
                        );
                        closed.insert(id.clone());
                    }
                    "ListingWithdrawn" => {
                        prop_assert!(held.is_none(), "withdrawn while reserved");
                        closed.insert(id.clone());
                    }
                    _ => {}
                }
            }
            ("payment", "PaymentCaptured") => {
                captured.insert(
                    row.aggregate_id.clone(),
                    body["amount"].as_i64().unwrap_or(-1),
                );
            }
            ("purchase_request", event) => {
                let trade = trade_of(row);
                let key = (
                    trade["listing_id"].to_string(),
                    trade["buyer_id"].to_string(),
                );
                match event {
                    "PurchaseRequested" => {
                        let payment = body["payment_id"].as_str().unwrap_or_default();
                        prop_assert_eq!(
                            captured.get(payment).copied(),
                            body["price"].as_i64(),
                            "requested without a captured payment of its price"
                        );
                        prop_assert!(
                            !open.contains_key(&key),
                            "a second open request by one buyer"
                        );
                        open.insert(key, row.aggregate_id.clone());
                    }
                    "PurchaseRequestRejected"
                    | "PurchaseRequestCompleted"
                    | "PurchaseRequestCancelled"
                    | "PurchaseRequestExpired" => {
                        open.remove(&key);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The catalog view, caught up to every token of the case, equals each listing aggregate.
async fn check_views(app: &TestApp, reader: &User, world: &World) -> Result<(), TestCaseError> {
    let Some(last) = world.tokens.iter().max() else {
        return Ok(());
    };
    let write = WriteSide::new(
        app.db.pool.clone(),
        std::sync::Arc::new(SystemClock),
        app.gateway.clone(),
    );
    for id in &world.listings {
        let view = app.listing_after(reader, id, &last.to_string()).await;
        let listing: Listing = write
            .load(id)
            .await
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let status = match listing.status() {
            ListingStatus::Available => "available",
            ListingStatus::Reserved(_) => "reserved",
            ListingStatus::Sold(_) => "sold",
            ListingStatus::Withdrawn => "withdrawn",
            ListingStatus::Unregistered => "unregistered",
        };
        prop_assert_eq!(view["status"].as_str(), Some(status), "listing {}", id);
        prop_assert_eq!(view["price"].as_i64(), listing.price().map(|p| p.as_krw()));
    }
    Ok(())
}

#[test]
fn random_concurrent_trades_keep_every_invariant_on_the_log() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(spawn_app());
    let cases = std::env::var("CARROT_PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let rounds = prop::collection::vec(prop::collection::vec(op(), 1..=4), 4..=14);
    runner
        .run(&rounds, |rounds| runtime.block_on(case(&app, rounds)))
        .unwrap();
}
