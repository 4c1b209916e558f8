//! Crypto-shredding at the event store: what a seller typed is sealed in the table, in
//! events and in snapshots, opens to itself for every reader while their key exists, and
//! reads as `[erased]` everywhere once it is destroyed; nothing more of theirs is written.

use std::collections::HashMap;
use std::sync::Arc;

use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand, ListingServices};
use carrot_domain::metadata::ACTOR;
use carrot_domain::schema::personal::ERASED;
use carrot_domain::{FixedClock, ListingId, Price, UserId};
use carrot_projections::log::events_of_aggregate;
use carrot_projections::log::notify::Notifier;
use carrot_projections::personal;
use carrot_projections::testing::{test_database, TestDatabase};
use carrot_projections::write_side::event_store::{Store, SNAPSHOT_EVERY};
use chrono::{TimeZone, Utc};
use cqrs_es::{AggregateContext, CqrsFramework, EventStore};
use serde_json::Value;

const TITLE: &str = "Walnut bookshelf SEAL-MARK-7731";
const DESCRIPTION: &str = "Five shelves, from my flat in Mapo SEAL-MARK-7732";

fn framework(db: &TestDatabase) -> CqrsFramework<Listing, Store<Listing>> {
    let clock = FixedClock::at(Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap());
    CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default()),
        vec![],
        ListingServices {
            clock: Arc::new(clock),
        },
    )
}

fn by(seller: UserId) -> HashMap<String, String> {
    HashMap::from([(ACTOR.to_owned(), seller.to_string())])
}

async fn registered(db: &TestDatabase) -> (String, UserId) {
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    let register = ListingCommand::RegisterListing {
        listing_id: listing,
        seller_id: seller,
        title: ListingTitle::parse(TITLE).unwrap(),
        description: Description::parse(DESCRIPTION).unwrap(),
        price: Price::parse(50_000).unwrap(),
        category: None,
    };
    framework(db)
        .execute_with_metadata(&id, register, by(seller))
        .await
        .unwrap();
    (id, seller)
}

async fn raw(db: &TestDatabase, table: &str) -> String {
    sqlx::query_scalar::<_, String>(&format!(
        "SELECT coalesce(string_agg(t::text, ' '), '') FROM {table} t"
    ))
    .fetch_one(&db.pool)
    .await
    .unwrap()
}

async fn loaded(db: &TestDatabase, id: &str) -> Value {
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let mut context = store.load_aggregate(id).await.unwrap();
    serde_json::to_value(context.aggregate()).unwrap()
}

async fn destroy(db: &TestDatabase, seller: UserId) {
    let mut conn = db.pool.acquire().await.unwrap();
    personal::destroy(&mut conn, seller.as_uuid())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sellers_text_is_sealed_in_the_log_and_opens_only_while_their_key_exists() {
    let db = test_database().await;
    let (id, seller) = registered(&db).await;
    let stored = raw(&db, "events").await;
    assert!(
        !stored.contains("SEAL-MARK"),
        "plaintext in the log: {stored}"
    );
    assert!(stored.contains("sealed_by"));

    assert_eq!(loaded(&db, &id).await["title"], TITLE);
    let read = events_of_aggregate(&db.pool, "listing", &id).await.unwrap();
    assert_eq!(
        read[0].payload["ListingRegistered"]["description"],
        DESCRIPTION
    );
    assert_eq!(
        read[0].payload["ListingRegistered"]["category"],
        Value::Null
    );

    destroy(&db, seller).await;
    assert_eq!(loaded(&db, &id).await["title"], ERASED);
    let read = events_of_aggregate(&db.pool, "listing", &id).await.unwrap();
    assert_eq!(read[0].payload["ListingRegistered"]["title"], ERASED);
    assert_eq!(read[0].payload["ListingRegistered"]["description"], ERASED);
    assert_eq!(read[0].payload["ListingRegistered"]["price"], 50_000);
}

#[tokio::test]
async fn a_snapshot_is_sealed_under_its_owners_key_and_nothing_is_written_once_it_is_gone() {
    let db = test_database().await;
    let (id, seller) = registered(&db).await;
    let cqrs = framework(&db);
    for n in 1..=SNAPSHOT_EVERY {
        let edit = ListingCommand::EditListing {
            actor: seller,
            title: Some(ListingTitle::parse(&format!("{TITLE} take {n}")).unwrap()),
            description: None,
            price: None,
        };
        cqrs.execute_with_metadata(&id, edit, by(seller))
            .await
            .unwrap();
    }
    let snapshots = raw(&db, "aggregate_snapshots").await;
    assert!(snapshots.contains("sealed_by"), "a snapshot was taken");
    assert!(!snapshots.contains("SEAL-MARK"), "{snapshots}");
    assert!(!raw(&db, "events").await.contains("SEAL-MARK"));
    let expected = format!("{TITLE} take {SNAPSHOT_EVERY}");
    assert_eq!(loaded(&db, &id).await["title"], expected.as_str());

    destroy(&db, seller).await;
    assert_eq!(loaded(&db, &id).await["title"], ERASED);
    let edit = ListingCommand::EditListing {
        actor: seller,
        title: Some(ListingTitle::parse("written after closing").unwrap()),
        description: None,
        price: None,
    };
    // A fresh store: no key cached from before.
    let refused = framework(&db)
        .execute_with_metadata(&id, edit, by(seller))
        .await;
    assert!(refused.is_err(), "a closed account's text is never written");
    assert!(!raw(&db, "events").await.contains("written after closing"));
}
