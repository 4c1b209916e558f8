//! The event store: snapshots give the same aggregate as replaying every event, concurrent
//! appends on one version conflict, commits report their place in the log, and a snapshot
//! that no longer fits, or holds another version of the state, is ignored.
//!
//! And the table is postgres-es's. Carrot appends with its own store (one statement per
//! command, README), but what it writes postgres-es reads (except what a person typed,
//! which Carrot seals with their key: tests/sealing.rs; these events have no actor): a listing Carrot wrote loads
//! through postgres-es's own repository to the same state, and one postgres-es committed
//! loads through Carrot's store and reaches the ordered log like any other event.

use std::collections::HashMap;
use std::sync::Arc;

use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand, ListingServices};
use carrot_domain::schema::{CqrsUpcaster, StateVersion};
use carrot_domain::{FixedClock, ListingId, Price, UserId};
use carrot_projections::log::notify::Notifier;
use carrot_projections::log::{events_of_aggregate, last_event_of};
use carrot_projections::testing::{test_database, TestDatabase};
use carrot_projections::write_side::event_store::{with_receipt, Store, SNAPSHOT_EVERY};
use chrono::{TimeZone, Utc};
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, CqrsFramework, EventStore};
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgPoolOptions;

fn services() -> ListingServices {
    ListingServices {
        clock: Arc::new(FixedClock::at(
            Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
        )),
    }
}

fn register(listing_id: ListingId, seller_id: UserId) -> ListingCommand {
    ListingCommand::RegisterListing {
        listing_id,
        seller_id,
        title: ListingTitle::parse("Bookshelf").unwrap(),
        description: Description::parse("Oak, five shelves").unwrap(),
        price: Price::parse(50_000).unwrap(),
        category: None,
    }
}

fn edit(seller: UserId, n: i64) -> ListingCommand {
    ListingCommand::EditListing {
        actor: seller,
        title: Some(ListingTitle::parse(&format!("Bookshelf, take {n}")).unwrap()),
        description: None,
        price: Some(Price::parse(50_000 + n).unwrap()),
    }
}

/// Carrot's command framework for listings over `db`.
fn carrot_framework(db: &TestDatabase) -> CqrsFramework<Listing, Store<Listing>> {
    CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default()),
        vec![],
        services(),
    )
}

/// Replays every event of the listing from the first, ignoring any snapshot.
async fn replayed(store: &Store<Listing>, id: &str) -> Listing {
    let mut listing = Listing::default();
    for envelope in store.load_events(id).await.unwrap() {
        listing.apply(envelope.payload);
    }
    listing
}

#[tokio::test]
async fn a_snapshotted_listing_equals_one_replayed_from_every_event() {
    let db = test_database().await;
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    let edits = 2 * SNAPSHOT_EVERY + 37;
    for n in 1..=edits {
        cqrs.execute(&id, edit(seller, n)).await.unwrap();
        if n % 61 == 0 {
            let store =
                Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
            let mut loaded = store.load_aggregate(&id).await.unwrap();
            let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
            assert_eq!(loaded, replayed(&store, &id).await, "after {n} edits");
        }
    }
    let (sequence, mut snapshot): (i64, serde_json::Value) =
        sqlx::query_as("SELECT sequence, payload FROM aggregate_snapshots WHERE aggregate_id = $1")
            .bind(&id)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(
        sequence,
        2 * SNAPSHOT_EVERY,
        "one snapshot, the latest multiple"
    );
    // The snapshot is the listing as of its own sequence, nothing applied twice (its
    // seller's text sealed in the table, opened as every reader opens it).
    carrot_projections::personal::open_all(&db.pool, [("listing", &mut snapshot)])
        .await
        .unwrap();
    let mut at_snapshot = Listing::default();
    for envelope in Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default())
        .load_events(&id)
        .await
        .unwrap()
    {
        if envelope.sequence as i64 <= sequence {
            at_snapshot.apply(envelope.payload);
        }
    }
    assert_eq!(
        serde_json::from_value::<Listing>(snapshot).unwrap(),
        at_snapshot
    );
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded, replayed(&store, &id).await);
    assert_eq!(loaded.price().map(Price::as_krw), Some(50_000 + edits));
}

#[tokio::test]
async fn two_commits_on_the_same_version_conflict_and_nothing_of_the_loser_is_kept() {
    let db = test_database().await;
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    let first = store.load_aggregate(&id).await.unwrap();
    let second = store.load_aggregate(&id).await.unwrap();
    let event = |price: i64| carrot_domain::listing::ListingEvent::ListingEdited {
        listing_id: listing,
        changes: carrot_domain::listing::ListingChanges {
            price: Some(carrot_domain::listing::Change {
                from: Some(Price::parse(50_000).unwrap()),
                to: Price::parse(price).unwrap(),
            }),
            ..Default::default()
        },
        edited_at: Utc::now(),
    };
    store
        .commit(vec![event(1)], first, Default::default())
        .await
        .unwrap();
    let lost = store
        .commit(vec![event(2)], second, Default::default())
        .await;
    assert!(matches!(lost, Err(AggregateError::AggregateConflict)));
    assert_eq!(
        replayed(&store, &id).await.price().map(Price::as_krw),
        Some(1)
    );
}

#[tokio::test]
async fn a_commit_reports_its_last_events_place_and_a_no_op_the_aggregates_latest() {
    let db = test_database().await;
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    let (outcome, receipt) =
        with_receipt(false, cqrs.execute(&id, register(listing, seller))).await;
    outcome.unwrap();
    let token = receipt.unwrap().token;
    let mut conn = db.pool.acquire().await.unwrap();
    assert_eq!(
        token,
        last_event_of(&mut conn, "listing", &id).await.unwrap()
    );
    // Registering again is a no-op: no event, the same token.
    let (outcome, receipt) =
        with_receipt(false, cqrs.execute(&id, register(listing, seller))).await;
    outcome.unwrap();
    let receipt = receipt.unwrap();
    assert_eq!(receipt.token, token);
    assert!(receipt.aggregate.downcast::<Listing>().is_ok());
}

/// A listing with one snapshot (at event 100) and one event after it: its database, id
/// and seller.
async fn snapshotted_listing() -> (TestDatabase, String, UserId) {
    let db = test_database().await;
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    for n in 1..=SNAPSHOT_EVERY {
        cqrs.execute(&id, edit(seller, n)).await.unwrap();
    }
    (db, id, seller)
}

#[tokio::test]
async fn a_snapshot_that_no_longer_fits_is_ignored_and_every_event_replayed() {
    let (db, id, seller) = snapshotted_listing().await;
    sqlx::query("UPDATE aggregate_snapshots SET payload = '{\"from\": \"an older shape\"}'")
        .execute(&db.pool)
        .await
        .unwrap();
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded, replayed(&store, &id).await);
    assert_eq!(loaded.seller_id(), seller);
}

#[tokio::test]
async fn a_snapshot_of_another_state_version_is_ignored_even_when_it_parses() {
    let (db, id, _) = snapshotted_listing().await;
    // What older code with other fields would have left: JSON today's state still parses,
    // meaning something else (here, another seller).
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let set = |version: i32| {
        sqlx::query(
            "UPDATE aggregate_snapshots
                SET payload = jsonb_set(payload, '{seller_id}', to_jsonb($2::text)),
                    state_version = $1",
        )
        .bind(version)
        .bind(UserId::from_uuid(uuid::Uuid::nil()).to_string())
        .execute(&db.pool)
    };
    set(Listing::STATE_VERSION + 1).await.unwrap();
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded, replayed(&store, &id).await);
    assert_eq!(
        loaded.price().map(Price::as_krw),
        Some(50_000 + SNAPSHOT_EVERY)
    );
    // The version alone decided: at the code's own version the same snapshot is read.
    set(Listing::STATE_VERSION).await.unwrap();
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded.seller_id(), UserId::from_uuid(uuid::Uuid::nil()));
}

/// A gateway for write sides that never pay (listing commands only).
struct NoGateway;

#[async_trait::async_trait]
impl carrot_domain::payment::PaymentGateway for NoGateway {
    async fn capture(
        &self,
        _: carrot_domain::payment::CaptureOrder,
    ) -> Result<carrot_domain::payment::Receipt, carrot_domain::payment::GatewayError> {
        Err(carrot_domain::payment::GatewayError::Unavailable(
            "none".into(),
        ))
    }
    async fn refund(
        &self,
        _: carrot_domain::payment::TransferOrder,
    ) -> Result<carrot_domain::payment::Receipt, carrot_domain::payment::GatewayError> {
        Err(carrot_domain::payment::GatewayError::Unavailable(
            "none".into(),
        ))
    }
    async fn payout(
        &self,
        _: carrot_domain::payment::TransferOrder,
    ) -> Result<carrot_domain::payment::Receipt, carrot_domain::payment::GatewayError> {
        Err(carrot_domain::payment::GatewayError::Unavailable(
            "none".into(),
        ))
    }
    async fn resolve_capture(
        &self,
        _: &str,
    ) -> Result<carrot_domain::payment::CaptureStatus, carrot_domain::payment::GatewayError> {
        Err(carrot_domain::payment::GatewayError::Unavailable(
            "none".into(),
        ))
    }
}

#[tokio::test]
async fn creating_under_an_id_that_exists_falls_back_to_the_usual_path_and_appends_nothing() {
    let db = test_database().await;
    let write = carrot_projections::write_side::WriteSide::new(
        db.pool.clone(),
        services().clock,
        Arc::new(NoGateway),
    );
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    let (first, _) = write
        .create::<Listing>(&id, register(listing, seller), Default::default())
        .await
        .unwrap();
    // The same creation again (a retry): the fresh attempt conflicts, the usual one sees
    // the listing registered by the same seller and does nothing.
    let (again, listing_now) = write
        .create::<Listing>(&id, register(listing, seller), Default::default())
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(listing_now.seller_id(), seller);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1")
        .bind(&id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(events, 1);
    // Another seller creating under that id is refused, not appended.
    let refused = write
        .create::<Listing>(&id, register(listing, UserId::new()), Default::default())
        .await;
    assert!(matches!(
        refused,
        Err(carrot_projections::write_side::CommandError::Refused(_))
    ));
}

/// postgres-es's store over the same table (its own pool: it takes sqlx's).
async fn postgres_es_store(url: &str) -> PersistedEventStore<PostgresEventRepository, Listing> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .unwrap();
    PersistedEventStore::new_event_store(PostgresEventRepository::new(pool))
}

#[tokio::test]
async fn a_listing_carrot_wrote_loads_through_postgres_es_and_one_it_committed_through_carrot() {
    let db = test_database().await;
    let ours = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let theirs = postgres_es_store(&db.url).await;

    // Carrot writes; postgres-es reads.
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    cqrs.execute(&id, edit(seller, 7)).await.unwrap();
    let mut by_carrot = ours.load_aggregate(&id).await.unwrap();
    let mut by_them = theirs.load_aggregate(&id).await.unwrap();
    assert_eq!(by_them.aggregate(), by_carrot.aggregate());
    assert_eq!(by_them.aggregate().price().map(Price::as_krw), Some(50_007));

    // postgres-es writes; Carrot reads, and the ordered log carries its events.
    let cqrs = CqrsFramework::new(theirs, vec![], services());
    let (other, seller) = (ListingId::new(), UserId::new());
    let other_id = other.to_string();
    cqrs.execute_with_metadata(&other_id, register(other, seller), HashMap::new())
        .await
        .unwrap();
    cqrs.execute(&other_id, edit(seller, 9)).await.unwrap();
    let theirs = postgres_es_store(&db.url).await;
    let mut by_them = theirs.load_aggregate(&other_id).await.unwrap();
    let mut by_carrot = ours.load_aggregate(&other_id).await.unwrap();
    assert_eq!(by_carrot.aggregate(), by_them.aggregate());
    assert_eq!(
        by_carrot.aggregate().price().map(Price::as_krw),
        Some(50_009)
    );
    let log = events_of_aggregate(&db.pool, Listing::TYPE, &other_id)
        .await
        .unwrap();
    let in_log: Vec<&str> = log.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(in_log, ["ListingRegistered", "ListingEdited"]);
    assert!(
        log.windows(2).all(|w| w[0].checkpoint < w[1].checkpoint),
        "in log order"
    );
}

#[tokio::test]
async fn postgres_es_reads_an_old_version_through_carrots_upcasters() {
    let db = test_database().await;
    let cqrs = carrot_framework(&db);
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    // An edit as the code before `ListingEdited` 2.0 wrote it.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ('listing', $1, 2, 'ListingEdited', '1.0', jsonb_build_object('ListingEdited',
                 jsonb_build_object('listing_id', $1, 'title', 'Bookshelf, walnut',
                                    'description', 'Oak, five shelves', 'price', 42000,
                                    'edited_at', '2026-05-01T12:00:00Z')), '{}')",
    )
    .bind(&id)
    .execute(&db.pool)
    .await
    .unwrap();
    let ours = Store::<Listing>::new(db.pool.clone(), Notifier::silent(), Default::default());
    let mut by_carrot = ours.load_aggregate(&id).await.unwrap();
    assert_eq!(
        by_carrot.aggregate().price().map(Price::as_krw),
        Some(42_000)
    );
    // Without the upcasters postgres-es cannot read it; with them, the same state.
    assert!(postgres_es_store(&db.url)
        .await
        .load_aggregate(&id)
        .await
        .is_err());
    let theirs = postgres_es_store(&db.url)
        .await
        .with_upcasters(vec![Box::new(CqrsUpcaster)]);
    let mut by_them = theirs.load_aggregate(&id).await.unwrap();
    assert_eq!(by_them.aggregate(), by_carrot.aggregate());
}
