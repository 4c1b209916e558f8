//! The event store: snapshots give the same aggregate as replaying every event, concurrent
//! appends on one version conflict, commits report their place in the log, and a snapshot
//! that no longer fits is ignored.

use std::sync::Arc;

use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand, ListingServices};
use carrot_domain::{FixedClock, ListingId, Price, UserId};
use carrot_projections::log::last_event_of;
use carrot_projections::log::notify::Notifier;
use carrot_projections::testing::test_database;
use carrot_projections::write_side::event_store::{with_receipt, Store, SNAPSHOT_EVERY};
use chrono::{TimeZone, Utc};
use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};

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
    let cqrs = CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent()),
        vec![],
        services(),
    );
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    let edits = 2 * SNAPSHOT_EVERY + 37;
    for n in 1..=edits {
        cqrs.execute(&id, edit(seller, n)).await.unwrap();
        if n % 61 == 0 {
            let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent());
            let mut loaded = store.load_aggregate(&id).await.unwrap();
            let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
            assert_eq!(loaded, replayed(&store, &id).await, "after {n} edits");
        }
    }
    let (sequence, snapshot): (i64, serde_json::Value) =
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
    // The snapshot is the listing as of its own sequence, nothing applied twice.
    let mut at_snapshot = Listing::default();
    for envelope in Store::<Listing>::new(db.pool.clone(), Notifier::silent())
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
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent());
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded, replayed(&store, &id).await);
    assert_eq!(loaded.price().map(Price::as_krw), Some(50_000 + edits));
}

#[tokio::test]
async fn two_commits_on_the_same_version_conflict_and_nothing_of_the_loser_is_kept() {
    let db = test_database().await;
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent());
    let cqrs = CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent()),
        vec![],
        services(),
    );
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    let first = store.load_aggregate(&id).await.unwrap();
    let second = store.load_aggregate(&id).await.unwrap();
    let event = |price: i64| carrot_domain::listing::ListingEvent::ListingEdited {
        listing_id: listing,
        title: ListingTitle::parse("Bookshelf").unwrap(),
        description: Description::parse("Oak, five shelves").unwrap(),
        price: Price::parse(price).unwrap(),
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
    let cqrs = CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent()),
        vec![],
        services(),
    );
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

#[tokio::test]
async fn a_snapshot_that_no_longer_fits_is_ignored_and_every_event_replayed() {
    let db = test_database().await;
    let cqrs = CqrsFramework::new(
        Store::<Listing>::new(db.pool.clone(), Notifier::silent()),
        vec![],
        services(),
    );
    let (listing, seller) = (ListingId::new(), UserId::new());
    let id = listing.to_string();
    cqrs.execute(&id, register(listing, seller)).await.unwrap();
    for n in 1..=SNAPSHOT_EVERY {
        cqrs.execute(&id, edit(seller, n)).await.unwrap();
    }
    sqlx::query("UPDATE aggregate_snapshots SET payload = '{\"from\": \"an older shape\"}'")
        .execute(&db.pool)
        .await
        .unwrap();
    let store = Store::<Listing>::new(db.pool.clone(), Notifier::silent());
    let mut loaded = store.load_aggregate(&id).await.unwrap();
    let loaded = cqrs_es::AggregateContext::aggregate(&mut loaded).clone();
    assert_eq!(loaded, replayed(&store, &id).await);
    assert_eq!(loaded.seller_id(), seller);
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
