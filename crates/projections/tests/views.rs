//! The views, fed real domain events through the runner: what each event does to their
//! rows and queries, that applying events twice or in bigger batches changes nothing, and
//! that a projection added later catches up on its own.

use carrot_projections::postgres::Db;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use carrot_domain::listing::fields::{Category, Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent as E};
use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, PaymentId, Price, RequestId, Trade, UserId};
use carrot_projections::catalog::{self, CatalogProjection, ListingView};
use carrot_projections::log::read_after;
use carrot_projections::mypage::{self, MyPageProjection, PageCursor, RequestView};
use carrot_projections::notifications::{self, NotificationsProjection};
use carrot_projections::payments::{self, PaymentView, PaymentsProjection};
use carrot_projections::runner::{ApplyError, Batch, RunnerError};
use carrot_projections::settlement::{SettlementSaga, SETTLEMENT};
use carrot_projections::testing::test_database;
use carrot_projections::timeline::{self, TimelineProjection};
use carrot_projections::{views, Checkpoint, Runner, RunnerConfig, StoredEvent, Subscriber};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// The event log, written the way the event store writes it, with the api's metadata.
// ---------------------------------------------------------------------------------------

/// A moment, `minute` minutes into the test's day (whole seconds: the views keep micros).
fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).expect("a valid time")
}

/// An event of any of the three aggregates.
#[derive(Debug, Clone)]
enum Event {
    Listing(ListingEvent),
    Request(E),
    Payment(PaymentEvent),
}

impl Event {
    /// Its aggregate type, event type, event version and payload as cqrs-es stores it.
    fn stored_form(&self) -> (&'static str, String, String, Value) {
        fn parts<T: DomainEvent>(event: &T) -> (String, String, Value) {
            let payload = serde_json::to_value(event).expect("an event serializes");
            (event.event_type(), event.event_version(), payload)
        }
        let (aggregate_type, (event_type, version, payload)) = match self {
            Event::Listing(e) => (Listing::TYPE, parts(e)),
            Event::Request(e) => (PurchaseRequest::TYPE, parts(e)),
            Event::Payment(e) => (Payment::TYPE, parts(e)),
        };
        (aggregate_type, event_type, version, payload)
    }
}

fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Appends events with increasing sequence numbers per aggregate, one transaction each.
struct EventLog {
    pool: Db,
    sequences: HashMap<(&'static str, String), i64>,
    /// How many events of each aggregate type were appended.
    appended: BTreeMap<&'static str, i64>,
}

impl EventLog {
    fn new(pool: &Db) -> Self {
        EventLog {
            pool: pool.clone(),
            sequences: HashMap::new(),
            appended: BTreeMap::new(),
        }
    }

    /// Appends `event` by `by`, correlated with the trade it names; returns its place.
    async fn append(&mut self, event: Event, by: Actor) -> Checkpoint {
        let (aggregate_type, event_type, version, payload) = event.stored_form();
        let body = &payload[&event_type];
        let id_path: &[&str] = match &event {
            Event::Listing(_) => &["listing_id"],
            Event::Request(_) => &["trade", "request_id"],
            Event::Payment(_) => &["payment_id"],
        };
        let aggregate_id = text_at(body, id_path).expect("an aggregate id").to_owned();
        let mut metadata = Map::new();
        metadata.insert("actor".into(), json!(by.to_string()));
        let correlation =
            text_at(body, &["trade", "request_id"]).or_else(|| text_at(body, &["request_id"]));
        if let Some(request_id) = correlation {
            metadata.insert("correlation_id".into(), json!(request_id));
        }
        let sequence = self
            .sequences
            .entry((aggregate_type, aggregate_id.clone()))
            .or_default();
        *sequence += 1;
        *self.appended.entry(aggregate_type).or_default() += 1;
        let (transaction_id, global_position): (String, i64) = sqlx::query_as(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                                 event_version, payload, metadata)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             RETURNING transaction_id::text, global_position",
        )
        .bind(aggregate_type)
        .bind(&aggregate_id)
        .bind(*sequence)
        .bind(&event_type)
        .bind(&version)
        .bind(&payload)
        .bind(Value::Object(metadata))
        .fetch_one(&self.pool)
        .await
        .expect("appending an event");
        Checkpoint {
            transaction_id: transaction_id.parse().expect("an xid8"),
            global_position,
        }
    }

    async fn append_all(&mut self, events: Vec<(Event, Actor)>) {
        for (event, by) in events {
            self.append(event, by).await;
        }
    }

    fn total(&self) -> usize {
        self.appended.values().sum::<i64>() as usize
    }
}

fn registered(listing: ListingId, seller: UserId, title: &str, price: i64, minute: i64) -> Event {
    Event::Listing(ListingEvent::ListingRegistered {
        listing_id: listing,
        seller_id: seller,
        title: ListingTitle::parse(title).expect("a title"),
        description: Description::parse(&format!("{title}, barely used")).expect("a text"),
        price: Price::parse(price).expect("a price"),
        category: Some(Category::parse("home").expect("a category")),
        registered_at: at(minute),
    })
}

fn edited(listing: ListingId, title: &str, description: &str, price: i64, minute: i64) -> Event {
    Event::Listing(ListingEvent::ListingEdited {
        listing_id: listing,
        title: ListingTitle::parse(title).expect("a title"),
        description: Description::parse(description).expect("a text"),
        price: Price::parse(price).expect("a price"),
        edited_at: at(minute),
    })
}

fn withdrawn(listing: ListingId, minute: i64) -> Event {
    Event::Listing(ListingEvent::ListingWithdrawn {
        listing_id: listing,
        withdrawn_at: at(minute),
    })
}

fn user(id: UserId) -> Actor {
    Actor::User(id)
}

/// One purchase request with its payment: builds the events of the trade.
#[derive(Debug, Clone, Copy)]
struct Deal {
    trade: Trade,
    payment_id: PaymentId,
    price: Price,
}

impl Deal {
    fn new(listing: ListingId, seller: UserId, buyer: UserId, price: i64) -> Self {
        Deal {
            trade: Trade {
                request_id: RequestId::new(),
                listing_id: listing,
                buyer_id: buyer,
                seller_id: seller,
            },
            payment_id: PaymentId::new(),
            price: Price::parse(price).expect("a price"),
        }
    }

    fn id(&self) -> RequestId {
        self.trade.request_id
    }
    fn buyer(&self) -> UserId {
        self.trade.buyer_id
    }
    fn seller(&self) -> UserId {
        self.trade.seller_id
    }

    fn captured(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentCaptured {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("capture:{}", self.payment_id),
            captured_at: at(minute),
        })
    }
    fn declined(&self, reason: &str, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentDeclined {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reason: reason.into(),
            declined_at: at(minute),
        })
    }
    fn timed_out(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentCaptureTimedOut {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            timed_out_at: at(minute),
        })
    }
    fn refunded(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentRefunded {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("refund:{}", self.payment_id),
            refunded_at: at(minute),
        })
    }
    fn paid_out(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentPaidOut {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("payout:{}", self.payment_id),
            paid_out_at: at(minute),
        })
    }

    fn requested(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequested {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            requested_at: at(minute),
        })
    }
    fn payment_failed(&self, reason: &str, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestPaymentFailed {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            reason: reason.into(),
            failed_at: at(minute),
        })
    }
    fn accepted(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestAccepted {
            trade: self.trade,
            accepted_at: at(minute),
        })
    }
    fn rejected(&self, by: Actor, reason: Option<&str>, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestRejected {
            trade: self.trade,
            by,
            reason: reason.map(str::to_owned),
            rejected_at: at(minute),
        })
    }
    fn completed(&self, automatic: bool, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestCompleted {
            trade: self.trade,
            automatic,
            completed_at: at(minute),
        })
    }
    fn cancelled(&self, by: Party, after_acceptance: bool, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestCancelled {
            trade: self.trade,
            by,
            after_acceptance,
            cancelled_at: at(minute),
        })
    }
    fn expired(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestExpired {
            trade: self.trade,
            expired_at: at(minute),
        })
    }
    fn abandoned(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestAbandoned {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            abandoned_at: at(minute),
        })
    }

    fn reserved(&self, minute: i64) -> Event {
        Event::Listing(ListingEvent::ListingReserved {
            listing_id: self.trade.listing_id,
            request_id: self.id(),
            reserved_at: at(minute),
        })
    }
    fn released(&self, minute: i64) -> Event {
        Event::Listing(ListingEvent::ListingReleased {
            listing_id: self.trade.listing_id,
            request_id: self.id(),
            released_at: at(minute),
        })
    }
    fn sold(&self, minute: i64) -> Event {
        Event::Listing(ListingEvent::ListingSold {
            listing_id: self.trade.listing_id,
            request_id: self.id(),
            sold_at: at(minute),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Running views and reading them back.
// ---------------------------------------------------------------------------------------

/// Registers `view` and applies everything in the log to it; returns how many events.
async fn catch_up_with(pool: &Db, view: Arc<dyn Subscriber>, config: RunnerConfig) -> usize {
    let runner = Runner::new(pool.clone(), view, config);
    runner.register().await.expect("registering the view");
    runner.catch_up().await.expect("catching up")
}

async fn catch_up(pool: &Db, view: impl Subscriber) -> usize {
    catch_up_with(pool, Arc::new(view), RunnerConfig::default()).await
}

/// Every row of every table in `schema`, as JSON, in a stable order.
async fn snapshot(pool: &Db, schema: &str) -> BTreeMap<String, Value> {
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
        let rows: Value = sqlx::query_scalar(&format!(
            r#"SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')
                 FROM "{schema}"."{table}" t"#
        ))
        .fetch_one(pool)
        .await
        .expect("reading a table");
        out.insert(table, rows);
    }
    out
}

/// Applies `events` to `view` directly, in one transaction, as the runner would.
async fn apply_directly(pool: &Db, view: &dyn Subscriber, events: &[StoredEvent]) {
    let mut tx = pool.begin().await.expect("a transaction");
    sqlx::query(&format!(
        r#"SET LOCAL search_path TO "{}", public"#,
        view.name()
    ))
    .execute(&mut *tx)
    .await
    .expect("setting the search path");
    view.apply(&mut tx, events).await.expect("applying");
    tx.commit().await.expect("committing");
}

async fn whole_log(pool: &Db) -> Vec<StoredEvent> {
    let mut conn = pool.acquire().await.expect("a connection");
    read_after(&mut conn, Checkpoint::ORIGIN, 100_000)
        .await
        .expect("reading the log")
}

/// A subscriber's checkpoint row: where it is, how many events, when it last moved.
async fn checkpoint_row(pool: &Db, name: &str) -> (String, i64, i64, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT transaction_id::text, global_position, events_applied, updated_at
           FROM subscription_checkpoints WHERE subscriber = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .expect("a checkpoint row")
}

async fn listing(pool: &Db, id: ListingId) -> ListingView {
    catalog::listing_by_id(pool, id)
        .await
        .expect("reading the catalog")
        .expect("the listing is in the catalog")
}

async fn payment(pool: &Db, deal: &Deal, reader: UserId) -> Option<PaymentView> {
    payments::payment_for(pool, deal.payment_id, reader)
        .await
        .expect("reading payments")
}

async fn request(pool: &Db, deal: &Deal, reader: UserId) -> Option<RequestView> {
    mypage::request_for(pool, deal.id(), reader)
        .await
        .expect("reading mypage")
}

/// Follows a cursor-paginated query page by page (through the cursor's text form, as a
/// client would) until it says there is no next page.
async fn every_page<T, F, Fut>(mut page: F) -> Vec<T>
where
    F: FnMut(Option<PageCursor>) -> Fut,
    Fut: Future<Output = (Vec<T>, Option<PageCursor>)>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..50 {
        let (items, next) = page(cursor).await;
        assert!(items.len() <= 1, "a page of limit 1 had {}", items.len());
        all.extend(items);
        let Some(next) = next else { return all };
        cursor = Some(PageCursor::decode(&next.encode()).expect("a cursor round-trips"));
    }
    panic!("pagination never ended");
}

// ---------------------------------------------------------------------------------------
// A small market used by several tests.
// ---------------------------------------------------------------------------------------

/// One seller with four listings and two buyers, with trades in every outcome.
struct Market {
    seller: UserId,
    buyer: UserId,
    other: UserId,
    listings: [ListingId; 4],
    /// r1 accepted, r2 completed and paid out, r3 rejected and refunded, r4 cancelled by the
    /// buyer and refunded, r5 payment failed, r6 cancelled by the seller after acceptance
    /// and refunded, r7 expired and refunded.
    r: [Deal; 7],
}

/// Appends the market's history: listings registered at minutes 0-3 (newest last).
async fn market(log: &mut EventLog) -> Market {
    let (seller, buyer, other) = (UserId::new(), UserId::new(), UserId::new());
    let [l1, l2, l3, l4] = [(); 4].map(|()| ListingId::new());
    let r = [
        Deal::new(l1, seller, buyer, 10_000),
        Deal::new(l2, seller, buyer, 20_000),
        Deal::new(l1, seller, other, 10_000),
        Deal::new(l3, seller, buyer, 5_000),
        Deal::new(l3, seller, buyer, 5_000),
        Deal::new(l4, seller, other, 7_000),
        Deal::new(l4, seller, other, 8_000),
    ];
    let [r1, r2, r3, r4, r5, r6, r7] = r;
    let (s, b, o, system) = (user(seller), user(buyer), user(other), Actor::System);
    log.append_all(vec![
        (registered(l1, seller, "Desk lamp", 10_000, 0), s),
        (registered(l2, seller, "Bicycle", 20_000, 1), s),
        (registered(l3, seller, "Kettle", 5_000, 2), s),
        (registered(l4, seller, "Chair", 7_000, 3), s),
        (edited(l4, "Oak chair", "Solid oak", 7_000, 4), s),
        (r1.captured(10), b),
        (r1.requested(10), b),
        (r3.captured(11), o),
        (r3.requested(11), o),
        // The same instant as r1: purchases order ties by request id.
        (r2.captured(10), b),
        (r2.requested(10), b),
        (r2.reserved(13), s),
        (r2.accepted(13), s),
        (r2.completed(false, 14), b),
        (r2.sold(14), b),
        (r2.paid_out(15), system),
        (r1.reserved(16), s),
        (r1.accepted(16), s),
        (r3.rejected(system, Some("listing_reserved"), 17), system),
        (r3.refunded(18), system),
        (r4.captured(19), b),
        (r4.requested(19), b),
        (r4.cancelled(Party::Buyer, false, 20), b),
        (r4.refunded(21), system),
        (r5.declined("card_declined", 22), b),
        (r5.payment_failed("card_declined", 22), b),
        (withdrawn(l3, 23), s),
        (r6.captured(24), o),
        (r6.requested(24), o),
        (r6.reserved(25), s),
        (r6.accepted(25), s),
        (r6.cancelled(Party::Seller, true, 26), s),
        (r6.released(26), s),
        (r6.refunded(27), system),
        (
            edited(l4, "Oak chair", "Solid oak, one scratch", 8_000, 28),
            s,
        ),
        (r7.captured(29), o),
        (r7.requested(29), o),
        (r7.expired(30), system),
        (r7.refunded(31), system),
    ])
    .await;
    Market {
        seller,
        buyer,
        other,
        listings: [l1, l2, l3, l4],
        r,
    }
}

/// The market plus a capture that timed out, was reconciled, and whose request was
/// abandoned and refunded: every kind of event the views read.
async fn busy_log(log: &mut EventLog) -> Market {
    let market = market(log).await;
    let late = Deal::new(market.listings[3], market.seller, market.buyer, 8_000);
    log.append_all(vec![
        (late.timed_out(40), user(market.buyer)),
        (late.captured(41), Actor::System),
        (late.abandoned(42), Actor::System),
        (late.refunded(43), Actor::System),
    ])
    .await;
    market
}

// ---------------------------------------------------------------------------------------
// 1. Catalog
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_catalog_shows_each_listing_as_its_latest_event_left_it() {
    let db = test_database().await;
    let mut log = EventLog::new(&db.pool);
    let seller = UserId::new();
    let lamp = ListingId::new();

    log.append(
        registered(lamp, seller, "Desk lamp", 15_000, 0),
        user(seller),
    )
    .await;
    catch_up(&db.pool, CatalogProjection).await;
    let fresh = ListingView {
        listing_id: lamp.as_uuid(),
        seller_id: seller.as_uuid(),
        title: "Desk lamp".into(),
        description: "Desk lamp, barely used".into(),
        price: 15_000,
        category: Some("home".into()),
        status: "available".into(),
        created_at: at(0),
        updated_at: at(0),
    };
    assert_eq!(listing(&db.pool, lamp).await, fresh);

    log.append(
        edited(lamp, "Brass desk lamp", "New bulb", 12_000, 1),
        user(seller),
    )
    .await;
    catch_up(&db.pool, CatalogProjection).await;
    let edited_view = ListingView {
        title: "Brass desk lamp".into(),
        description: "New bulb".into(),
        price: 12_000,
        updated_at: at(1),
        ..fresh
    };
    assert_eq!(listing(&db.pool, lamp).await, edited_view);

    let deal = Deal::new(lamp, seller, UserId::new(), 12_000);
    let steps = [
        (deal.reserved(2), "reserved", 2),
        (deal.released(3), "available", 3),
        (deal.reserved(4), "reserved", 4),
        (deal.sold(5), "sold", 5),
    ];
    for (event, status, minute) in steps {
        log.append(event, user(seller)).await;
        catch_up(&db.pool, CatalogProjection).await;
        let expected = ListingView {
            status: status.into(),
            updated_at: at(minute),
            ..edited_view.clone()
        };
        assert_eq!(listing(&db.pool, lamp).await, expected, "after {status}");
    }

    let chair = ListingId::new();
    log.append(registered(chair, seller, "Chair", 30_000, 6), user(seller))
        .await;
    log.append(withdrawn(chair, 7), user(seller)).await;
    catch_up(&db.pool, CatalogProjection).await;
    let chair_view = listing(&db.pool, chair).await;
    assert_eq!(
        (chair_view.status.as_str(), chair_view.created_at),
        ("withdrawn", at(6))
    );
    assert_eq!(chair_view.updated_at, at(7));
    assert_eq!(listing(&db.pool, lamp).await.status, "sold", "untouched");
}

// ---------------------------------------------------------------------------------------
// 2. Payments
// ---------------------------------------------------------------------------------------

/// What the payments view shows of `deal` in `status`, changed last at minute `updated`.
fn payment_view(deal: &Deal, status: &str, updated: i64) -> PaymentView {
    PaymentView {
        payment_id: deal.payment_id.as_uuid(),
        request_id: deal.id().as_uuid(),
        listing_id: deal.trade.listing_id.as_uuid(),
        buyer_id: deal.buyer().as_uuid(),
        seller_id: deal.seller().as_uuid(),
        amount: deal.price.as_krw(),
        status: status.into(),
        reason: None,
        captured_at: None,
        settled_at: None,
        updated_at: at(updated),
    }
}

#[tokio::test]
async fn payments_appear_once_their_capture_has_an_outcome_and_follow_their_settlement() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, listing_id) = (UserId::new(), ListingId::new());
    let paid = Deal::new(listing_id, seller, UserId::new(), 10_000);
    let declined = Deal::new(listing_id, seller, UserId::new(), 11_000);
    let late = Deal::new(listing_id, seller, UserId::new(), 12_000);

    log.append(paid.captured(1), user(paid.buyer())).await;
    catch_up(pool, PaymentsProjection).await;
    let captured = PaymentView {
        captured_at: Some(at(1)),
        ..payment_view(&paid, "captured", 1)
    };
    assert_eq!(
        payment(pool, &paid, paid.buyer()).await,
        Some(captured.clone())
    );

    log.append(
        declined.declined("card_declined", 2),
        user(declined.buyer()),
    )
    .await;
    catch_up(pool, PaymentsProjection).await;
    let failed = PaymentView {
        reason: Some("card_declined".into()),
        ..payment_view(&declined, "failed", 2)
    };
    assert_eq!(
        payment(pool, &declined, declined.buyer()).await,
        Some(failed)
    );

    // A capture whose outcome is unknown is not shown, to anyone.
    log.append(late.timed_out(3), user(late.buyer())).await;
    catch_up(pool, PaymentsProjection).await;
    assert_eq!(payment(pool, &late, late.buyer()).await, None);
    assert_eq!(payment(pool, &late, seller).await, None);
    // Once reconciled, it is.
    log.append(late.captured(4), Actor::System).await;
    catch_up(pool, PaymentsProjection).await;
    let reconciled = PaymentView {
        captured_at: Some(at(4)),
        ..payment_view(&late, "captured", 4)
    };
    assert_eq!(
        payment(pool, &late, late.buyer()).await,
        Some(reconciled.clone())
    );

    log.append(paid.refunded(5), Actor::System).await;
    log.append(late.paid_out(6), Actor::System).await;
    catch_up(pool, PaymentsProjection).await;
    let refunded = PaymentView {
        status: "refunded".into(),
        settled_at: Some(at(5)),
        updated_at: at(5),
        ..captured
    };
    let paid_out = PaymentView {
        status: "paid_out".into(),
        settled_at: Some(at(6)),
        updated_at: at(6),
        ..reconciled
    };
    assert_eq!(
        payment(pool, &paid, paid.buyer()).await,
        Some(refunded.clone())
    );
    assert_eq!(
        payment(pool, &late, late.buyer()).await,
        Some(paid_out.clone())
    );

    // Its buyer and seller see it; nobody else does, not even another buyer of the listing.
    assert_eq!(payment(pool, &paid, seller).await, Some(refunded));
    assert_eq!(payment(pool, &late, seller).await, Some(paid_out));
    assert_eq!(payment(pool, &paid, UserId::new()).await, None);
    assert_eq!(payment(pool, &paid, declined.buyer()).await, None);
    assert_eq!(payment(pool, &declined, paid.buyer()).await, None);
}

// ---------------------------------------------------------------------------------------
// 3. MyPage
// ---------------------------------------------------------------------------------------

/// Catches MyPage up and checks `deal` as its buyer sees it (`None`: no request yet), and
/// that its seller sees the same unless the payment failed (`check_seller: false` leaves
/// the seller's view unchecked).
async fn expect_request(
    pool: &Db,
    deal: &Deal,
    expected: Option<(&str, &str)>,
    hidden_from_seller: bool,
) {
    catch_up(pool, MyPageProjection).await;
    let by_buyer = request(pool, deal, deal.buyer()).await;
    let seen = by_buyer
        .as_ref()
        .map(|r| (r.status.as_str(), r.payment_status.as_str()));
    assert_eq!(seen, expected, "the buyer's view of {:?}", deal.id());
    let by_seller = request(pool, deal, deal.seller()).await;
    match expected {
        Some(("payment_failed", _)) | None => assert_eq!(by_seller, None),
        Some(_) if hidden_from_seller => assert_eq!(by_seller, None, "never reached the seller"),
        Some(_) => assert_eq!(by_seller, by_buyer, "the seller sees what the buyer sees"),
    }
}

#[tokio::test]
async fn mypage_follows_every_request_event_and_its_payment_status() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    log.append(
        registered(lamp, seller, "Desk lamp", 15_000, 0),
        user(seller),
    )
    .await;
    let [done, rejected, cancelled, expired, failed, abandoned] =
        [(); 6].map(|()| Deal::new(lamp, seller, UserId::new(), 15_000));
    let c = "captured";
    let steps = [
        (done, done.captured(1), None),
        (done, done.requested(1), Some(("requested", c))),
        (done, done.accepted(2), Some(("accepted", c))),
        (done, done.completed(false, 3), Some(("completed", c))),
        (done, done.paid_out(4), Some(("completed", "paid_out"))),
        (rejected, rejected.captured(5), None),
        (rejected, rejected.requested(5), Some(("requested", c))),
        (
            rejected,
            rejected.rejected(user(seller), Some("sold elsewhere"), 6),
            Some(("rejected", c)),
        ),
        (
            rejected,
            rejected.refunded(7),
            Some(("rejected", "refunded")),
        ),
        (cancelled, cancelled.captured(8), None),
        (cancelled, cancelled.requested(8), Some(("requested", c))),
        (
            cancelled,
            cancelled.cancelled(Party::Buyer, false, 9),
            Some(("cancelled", c)),
        ),
        (
            cancelled,
            cancelled.refunded(10),
            Some(("cancelled", "refunded")),
        ),
        (expired, expired.captured(11), None),
        (expired, expired.requested(11), Some(("requested", c))),
        (expired, expired.expired(12), Some(("expired", c))),
        (expired, expired.refunded(13), Some(("expired", "refunded"))),
        (failed, failed.declined("card_declined", 14), None),
        (
            failed,
            failed.payment_failed("card_declined", 14),
            Some(("payment_failed", "failed")),
        ),
        (abandoned, abandoned.timed_out(15), None),
        (abandoned, abandoned.captured(16), None),
        (abandoned, abandoned.abandoned(17), Some(("expired", c))),
        (
            abandoned,
            abandoned.refunded(18),
            Some(("expired", "refunded")),
        ),
    ];
    for (deal, event, expected) in steps {
        log.append(event, Actor::System).await;
        // An abandoned request (the buyer was told it failed) never reached the seller.
        let hidden_from_seller = deal.id() == abandoned.id();
        expect_request(pool, &deal, expected, hidden_from_seller).await;
    }

    let done_view = request(pool, &done, done.buyer()).await.expect("visible");
    assert_eq!(
        done_view,
        RequestView {
            request_id: done.id().as_uuid(),
            listing_id: lamp.as_uuid(),
            listing_title: Some("Desk lamp".into()),
            buyer_id: done.buyer().as_uuid(),
            seller_id: seller.as_uuid(),
            price: 15_000,
            status: "completed".into(),
            reason: None,
            payment_id: done.payment_id.as_uuid(),
            payment_status: "paid_out".into(),
            created_at: at(1),
            updated_at: at(4),
        }
    );
    let reason = |view: Option<RequestView>| view.and_then(|v| v.reason);
    assert_eq!(
        reason(request(pool, &rejected, rejected.buyer()).await).as_deref(),
        Some("sold elsewhere"),
        "the rejection's reason is kept through the refund"
    );
    assert_eq!(
        reason(request(pool, &failed, failed.buyer()).await).as_deref(),
        Some("card_declined")
    );
    assert_eq!(
        request(pool, &done, UserId::new()).await,
        None,
        "a stranger"
    );
    assert_eq!(
        request(pool, &done, failed.buyer()).await,
        None,
        "another buyer"
    );

    // The seller's sales list the paid requests, never the one whose payment failed.
    let (sales, _) = mypage::sales(pool, seller, None, 10).await.expect("sales");
    let listed: Vec<&str> = sales[0]
        .requests
        .iter()
        .filter_map(|r| r["request_id"].as_str())
        .collect();
    for deal in [done, rejected, cancelled, expired] {
        assert!(
            listed.contains(&deal.id().to_string().as_str()),
            "{listed:?}"
        );
    }
    assert!(
        !listed.contains(&failed.id().to_string().as_str()),
        "{listed:?}"
    );
}

#[tokio::test]
async fn mypage_summary_counts_each_side_and_sums_the_money() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = market(&mut log).await;
    catch_up(pool, MyPageProjection).await;

    let summary = |who| async move { mypage::summary(pool, who).await.expect("a summary") };
    let no_sales = json!({"requested": 0, "accepted": 0, "rejected": 0, "completed": 0,
                          "cancelled": 0, "expired": 0});
    let no_listings = json!({"available": 0, "reserved": 0, "sold": 0, "withdrawn": 0});
    assert_eq!(
        summary(m.buyer).await,
        json!({
            "purchases": {"requested": 0, "accepted": 1, "rejected": 0, "completed": 1,
                          "cancelled": 1, "expired": 0, "payment_failed": 1},
            "sales": no_sales,
            "listings": no_listings,
            "money": {"held": 10_000, "refunded": 5_000, "paid_out": 20_000,
                      "earned": 0, "incoming": 0},
        })
    );
    assert_eq!(
        summary(m.other).await,
        json!({
            "purchases": {"requested": 0, "accepted": 0, "rejected": 1, "completed": 0,
                          "cancelled": 1, "expired": 1, "payment_failed": 0},
            "sales": no_sales,
            "listings": no_listings,
            "money": {"held": 0, "refunded": 25_000, "paid_out": 0, "earned": 0, "incoming": 0},
        })
    );
    assert_eq!(
        summary(m.seller).await,
        json!({
            "purchases": {"requested": 0, "accepted": 0, "rejected": 0, "completed": 0,
                          "cancelled": 0, "expired": 0, "payment_failed": 0},
            "sales": {"requested": 0, "accepted": 1, "rejected": 1, "completed": 1,
                      "cancelled": 2, "expired": 1},
            "listings": {"available": 1, "reserved": 1, "sold": 1, "withdrawn": 1},
            "money": {"held": 0, "refunded": 0, "paid_out": 0, "earned": 20_000,
                      "incoming": 10_000},
        })
    );
}

#[tokio::test]
async fn mypage_lists_purchases_and_sales_newest_first_and_pages_through_them() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = market(&mut log).await;
    catch_up(pool, MyPageProjection).await;
    let [r1, r2, r3, r4, r5, r6, r7] = m.r.map(|d| d.id().as_uuid());
    let [l1, l2, l3, l4] = m.listings.map(|l| l.as_uuid());

    let ids = |items: &[RequestView]| items.iter().map(|r| r.request_id).collect::<Vec<_>>();
    let tied = if r1 > r2 { [r1, r2] } else { [r2, r1] };
    let by_buyer = vec![r5, r4, tied[0], tied[1]];
    for (buyer, expected) in [(m.buyer, by_buyer), (m.other, vec![r7, r6, r3])] {
        let (all, next) = mypage::purchases(pool, buyer, None, 10)
            .await
            .expect("purchases");
        assert_eq!((ids(&all), next), (expected.clone(), None));
        let paged = every_page(|after| async move {
            mypage::purchases(pool, buyer, after, 1)
                .await
                .expect("a page")
        })
        .await;
        assert_eq!(
            ids(&paged),
            expected,
            "page by page: nothing missed or repeated"
        );
    }

    // Listings newest first, each with its paid requests newest first.
    let shape = |sales: &[mypage::SaleView]| {
        sales
            .iter()
            .map(|s| {
                let requests: Vec<String> = s
                    .requests
                    .iter()
                    .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
                    .collect();
                (s.listing_id, requests)
            })
            .collect::<Vec<_>>()
    };
    let strings = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
    let expected = vec![
        (l4, strings(&[r7, r6])),
        (l3, strings(&[r4])),
        (l2, strings(&[r2])),
        (l1, strings(&[r3, r1])),
    ];
    let seller = m.seller;
    let (all, next) = mypage::sales(pool, seller, None, 10).await.expect("sales");
    assert_eq!((shape(&all), next), (expected.clone(), None));
    let paged =
        every_page(
            |after| async move { mypage::sales(pool, seller, after, 1).await.expect("a page") },
        )
        .await;
    assert_eq!(
        shape(&paged),
        expected,
        "page by page: nothing missed or repeated"
    );
    assert_eq!(
        (all[0].title.as_str(), all[0].price, all[0].status.as_str()),
        ("Oak chair", 8_000, "available")
    );
}

// ---------------------------------------------------------------------------------------
// 4. Timeline
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_trades_timeline_lists_its_own_events_in_log_order_with_time_and_actor() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    let mine = Deal::new(lamp, seller, UserId::new(), 15_000);
    let other = Deal::new(lamp, seller, UserId::new(), 15_000);
    let (s, b, o, system) = (
        user(seller),
        user(mine.buyer()),
        user(other.buyer()),
        Actor::System,
    );
    // (whether it is of `mine`, who, when, what)
    let steps = [
        (
            false,
            s,
            0,
            registered(lamp, seller, "Desk lamp", 15_000, 0),
        ),
        (true, b, 1, mine.captured(1)),
        (true, b, 2, mine.requested(2)),
        (false, o, 3, other.captured(3)),
        (false, o, 4, other.requested(4)),
        (false, s, 5, edited(lamp, "Desk lamp", "Brass", 15_000, 5)),
        (true, s, 6, mine.reserved(6)),
        (true, s, 7, mine.accepted(7)),
        (
            false,
            system,
            8,
            other.rejected(system, Some("listing_reserved"), 8),
        ),
        (false, system, 9, other.refunded(9)),
        (true, b, 10, mine.completed(false, 10)),
        (true, b, 11, mine.sold(11)),
        (true, system, 12, mine.paid_out(12)),
    ];
    let mut expected = Vec::new();
    for (of_mine, by, minute, event) in steps {
        let name = event.stored_form().1;
        log.append(event, by).await;
        if of_mine {
            expected.push((name, at(minute), by.to_string()));
        }
    }
    catch_up(pool, TimelineProjection).await;

    let entries = timeline::timeline(pool, mine.id())
        .await
        .expect("a timeline");
    let seen: Vec<(String, DateTime<Utc>, String)> = entries
        .iter()
        .map(|e| {
            let when = e["at"].as_str().expect("an `at`");
            let when = DateTime::parse_from_rfc3339(when).expect("RFC 3339");
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                when.with_timezone(&Utc),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
    for entry in &entries {
        let keys: Vec<&String> = entry.as_object().expect("an object").keys().collect();
        assert!(!keys.iter().any(|k| *k == "trade"), "{entry}");
        assert!(!keys.iter().any(|k| k.ends_with("_at")), "{entry}");
    }
    let detail = |i: usize, key: &str| entries[i][key].clone();
    assert_eq!(detail(1, "price"), json!(15_000));
    assert_eq!(detail(1, "payment_id"), json!(mine.payment_id));
    assert_eq!(detail(2, "request_id"), json!(mine.id()));
    assert_eq!(detail(2, "listing_id"), json!(lamp));
    assert_eq!(detail(4, "automatic"), json!(false));
    assert_eq!(detail(6, "amount"), json!(15_000));

    let others: Vec<String> = timeline::timeline(pool, other.id())
        .await
        .expect("a timeline")
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect();
    let others_expected = [
        "PaymentCaptured",
        "PurchaseRequested",
        "PurchaseRequestRejected",
        "PaymentRefunded",
    ];
    assert_eq!(others, others_expected, "only the other trade's own events");
}

// ---------------------------------------------------------------------------------------
// 5. Notifications
// ---------------------------------------------------------------------------------------

/// A notification as compared here: id, trade, kind, status, when.
type Told = (String, Uuid, String, String, DateTime<Utc>);

async fn told(pool: &Db, who: UserId, after: Option<Checkpoint>) -> Vec<Told> {
    notifications::since(pool, who, after, 100)
        .await
        .expect("notifications")
        .into_iter()
        .map(|n| (n.id, n.request_id, n.kind, n.status, n.at))
        .collect()
}

#[tokio::test]
async fn notifications_tell_each_party_what_concerns_them() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    let deals = [(); 8].map(|()| Deal::new(lamp, seller, UserId::new(), 9_000));
    let [d1, d2, d3, d4, d5, d6, d7, d8] = deals;
    let s = vec![seller];
    let both = |d: Deal| vec![d.buyer(), seller];
    let nobody = Vec::<UserId>::new;
    let received = ("request_received", "requested");
    let accepted = ("request_accepted", "accepted");
    let completed = ("request_completed", "completed");
    let cancelled = ("request_cancelled", "cancelled");
    let expired = ("request_expired", "expired");
    let refunded = ("payment_refunded", "refunded");
    let none = ("", "");
    // (trade, when, what, told whom, kind and status)
    let steps = [
        (d1, 1, d1.captured(1), nobody(), none),
        (d1, 1, d1.requested(1), s.clone(), received),
        (d1, 2, d1.accepted(2), vec![d1.buyer()], accepted),
        (d1, 3, d1.completed(false, 3), s.clone(), completed),
        (
            d1,
            4,
            d1.paid_out(4),
            s.clone(),
            ("payment_paid_out", "paid_out"),
        ),
        (d2, 5, d2.captured(5), nobody(), none),
        (d2, 5, d2.requested(5), s.clone(), received),
        (
            d2,
            6,
            d2.rejected(user(seller), None, 6),
            vec![d2.buyer()],
            ("request_rejected", "rejected"),
        ),
        (d2, 7, d2.refunded(7), vec![d2.buyer()], refunded),
        (d3, 8, d3.captured(8), nobody(), none),
        (d3, 8, d3.requested(8), s.clone(), received),
        (d3, 9, d3.accepted(9), vec![d3.buyer()], accepted),
        (d3, 10, d3.completed(true, 10), both(d3), completed),
        (d4, 11, d4.captured(11), nobody(), none),
        (d4, 11, d4.requested(11), s.clone(), received),
        (
            d4,
            12,
            d4.cancelled(Party::Buyer, false, 12),
            s.clone(),
            cancelled,
        ),
        (d5, 13, d5.captured(13), nobody(), none),
        (d5, 13, d5.requested(13), s.clone(), received),
        (d5, 14, d5.accepted(14), vec![d5.buyer()], accepted),
        (
            d5,
            15,
            d5.cancelled(Party::Seller, true, 15),
            vec![d5.buyer()],
            cancelled,
        ),
        (d6, 16, d6.captured(16), nobody(), none),
        (d6, 16, d6.requested(16), s.clone(), received),
        (d6, 17, d6.expired(17), both(d6), expired),
        (d7, 18, d7.declined("card_declined", 18), nobody(), none),
        (
            d7,
            18,
            d7.payment_failed("card_declined", 18),
            vec![d7.buyer()],
            ("payment_failed", "payment_failed"),
        ),
        (d8, 19, d8.timed_out(19), nobody(), none),
        (d8, 20, d8.captured(20), nobody(), none),
        (d8, 21, d8.abandoned(21), vec![d8.buyer()], expired),
        (d8, 22, d8.refunded(22), vec![d8.buyer()], refunded),
    ];
    let mut expected: Vec<(UserId, Told)> = Vec::new();
    for (deal, minute, event, to, (kind, status)) in steps {
        let place = log.append(event, Actor::System).await;
        for who in to {
            let id = place.to_string();
            let notice = (
                id,
                deal.id().as_uuid(),
                kind.into(),
                status.into(),
                at(minute),
            );
            expected.push((who, notice));
        }
    }
    catch_up(pool, NotificationsProjection).await;

    let expected_for = |who: UserId| -> Vec<Told> {
        expected
            .iter()
            .filter(|(to, _)| *to == who)
            .map(|(_, n)| n.clone())
            .collect()
    };
    for who in std::iter::once(seller).chain(deals.iter().map(Deal::buyer)) {
        assert_eq!(told(pool, who, None).await, expected_for(who), "told {who}");
    }
    assert_eq!(told(pool, UserId::new(), None).await, vec![], "a stranger");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.notifications")
        .fetch_one(pool)
        .await
        .expect("a count");
    assert_eq!(rows, expected.len() as i64, "no one else was told anything");

    // The seller's: newest first two at a time, and what came after a given one.
    let seller_told = expected_for(seller);
    let mut newest_first = Vec::new();
    let mut before = None;
    loop {
        let page = notifications::newest(pool, seller, before, 2)
            .await
            .expect("a page");
        let Some(last) = page.last() else { break };
        before = Some(
            last.id
                .parse::<Checkpoint>()
                .expect("an id is a checkpoint"),
        );
        assert!(page.len() <= 2 && newest_first.len() < seller_told.len());
        newest_first.extend(page.into_iter().map(|n| n.id));
    }
    let ids: Vec<String> = seller_told.iter().rev().map(|n| n.0.clone()).collect();
    assert_eq!(newest_first, ids);
    let second = seller_told[1].0.parse().ok();
    assert_eq!(told(pool, seller, second).await, seller_told[2..].to_vec());
    assert_eq!(
        notifications::latest_id(pool, seller)
            .await
            .expect("latest"),
        seller_told.last().and_then(|n| n.0.parse().ok())
    );
}

// ---------------------------------------------------------------------------------------
// 6-8. Every view: idempotent, batch-size independent, and a new one catches up alone.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn applying_the_same_events_again_changes_no_view() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let events = whole_log(pool).await;
    assert_eq!(events.len(), log.total());

    for view in views() {
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, view.name()).await;
        assert!(
            before.values().all(|rows| rows != &json!([])),
            "{}: every table has rows: {before:?}",
            view.name()
        );
        apply_directly(pool, view.as_ref(), &events).await;
        assert_eq!(
            snapshot(pool, view.name()).await,
            before,
            "{}: all again",
            view.name()
        );
        for event in &events {
            apply_directly(pool, view.as_ref(), std::slice::from_ref(event)).await;
        }
        assert_eq!(
            snapshot(pool, view.name()).await,
            before,
            "{}: each again",
            view.name()
        );
    }
}

#[tokio::test]
async fn one_batch_of_many_events_gives_the_same_rows_as_one_event_per_batch() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = busy_log(&mut log).await;
    let total = log.total();

    for view in views() {
        let name = view.name();
        let big = RunnerConfig {
            batch_size: 1000,
            ..RunnerConfig::default()
        };
        let runner = Runner::new(pool.clone(), view.clone(), big);
        runner.register().await.expect("registering");
        assert!(
            matches!(runner.run_once().await, Ok(Batch::Applied { events, .. }) if events == total),
            "{name}: the whole log in one batch"
        );
        let one_batch = snapshot(pool, name).await;

        // Start the view over, empty and at the origin, and apply one event per batch.
        for table in one_batch.keys() {
            sqlx::query(&format!(r#"TRUNCATE "{name}"."{table}""#))
                .execute(pool)
                .await
                .expect("emptying the view");
        }
        sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
            .bind(name)
            .execute(pool)
            .await
            .expect("forgetting the checkpoint");
        let single = RunnerConfig {
            batch_size: 1,
            ..RunnerConfig::default()
        };
        assert_eq!(catch_up_with(pool, view.clone(), single).await, total);
        assert_eq!(snapshot(pool, name).await, one_batch, "{name}");
    }

    // And the rows are right, not just equal: the chair went through registered, edited,
    // reserved, released and edited again, all in the one batch.
    let chair = listing(pool, m.listings[3]).await;
    assert_eq!(
        (chair.title.as_str(), chair.description.as_str()),
        ("Oak chair", "Solid oak, one scratch")
    );
    assert_eq!((chair.price, chair.status.as_str()), (8_000, "available"));
    assert_eq!((chair.created_at, chair.updated_at), (at(3), at(28)));
    let r6 = request(pool, &m.r[5], m.other).await.expect("visible");
    assert_eq!(
        (r6.status.as_str(), r6.payment_status.as_str()),
        ("cancelled", "refunded")
    );
}

/// The saga's state and decisions, without the outbox's clock columns.
async fn saga_snapshot(pool: &Db) -> BTreeMap<String, Value> {
    let mut out = snapshot(pool, SETTLEMENT).await;
    let outbox: Value = sqlx::query_scalar(
        "SELECT coalesce(jsonb_agg(jsonb_build_array(command_id, request_id, command, status)
                                   ORDER BY command_id), '[]')
           FROM settlement.outbox",
    )
    .fetch_one(pool)
    .await
    .expect("reading the outbox");
    out.insert("outbox".into(), outbox);
    out
}

#[tokio::test]
async fn the_saga_decides_the_same_in_one_batch_as_one_event_per_batch() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = busy_log(&mut log).await;
    let total = log.total();
    let saga: Arc<dyn Subscriber> = Arc::new(SettlementSaga::default());
    let big = RunnerConfig {
        batch_size: 1000,
        ..RunnerConfig::default()
    };
    assert_eq!(catch_up_with(pool, saga.clone(), big).await, total);
    let one_batch = saga_snapshot(pool).await;

    for table in ["trades", "listings", "payments", "deadlines", "outbox"] {
        sqlx::query(&format!("TRUNCATE settlement.{table}"))
            .execute(pool)
            .await
            .expect("emptying the saga");
    }
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
        .bind(SETTLEMENT)
        .execute(pool)
        .await
        .expect("forgetting the checkpoint");
    let single = RunnerConfig {
        batch_size: 1,
        ..RunnerConfig::default()
    };
    assert_eq!(catch_up_with(pool, saga, single).await, total);
    assert_eq!(saga_snapshot(pool).await, one_batch);

    // And the decisions are right: r3 pending on the lamp when r1 was accepted is
    // rejected; the completed bicycle is paid out; r4 (cancelled) refunded.
    let decided: Vec<String> =
        sqlx::query_scalar("SELECT command_id FROM settlement.outbox ORDER BY command_id")
            .fetch_all(pool)
            .await
            .expect("reading the outbox");
    let r = |i: usize| m.r[i].trade.request_id;
    let p = |i: usize| m.r[i].payment_id;
    for expected in [
        format!("reject:{}", r(2)),
        format!("payout:{}", p(1)),
        format!("refund:{}", p(3)),
    ] {
        assert!(decided.contains(&expected), "{expected} in {decided:?}");
    }
    // Deadlines left: the accepted lamp (r1) completes automatically one day; nothing
    // else waits, the accept and the sale having cleared their listing checks.
    let deadlines: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT request_id, kind FROM settlement.deadlines ORDER BY 1, 2")
            .fetch_all(pool)
            .await
            .expect("reading the deadlines");
    assert!(
        deadlines.contains(&(r(0).as_uuid(), "complete".to_owned())),
        "{deadlines:?}"
    );
    assert!(
        !deadlines.iter().any(|(_, kind)| kind == "check_listing"),
        "{deadlines:?}"
    );
}

/// A projection that did not exist when the log was written: counts events by aggregate
/// type in a table of its own schema (named unqualified, as views do).
struct EventCounts;

#[async_trait]
impl Subscriber for EventCounts {
    fn name(&self) -> &'static str {
        "event_counts"
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for event in events {
            sqlx::query(
                "INSERT INTO counts (aggregate_type, events) VALUES ($1, 1)
                 ON CONFLICT (aggregate_type) DO UPDATE SET events = counts.events + 1",
            )
            .bind(&event.aggregate_type)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_projection_added_later_starts_from_the_origin_without_touching_the_others() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let total = log.total();
    assert_eq!(catch_up(pool, CatalogProjection).await, total);
    let catalog_checkpoint = checkpoint_row(pool, "catalog").await;
    let catalog_rows = snapshot(pool, "catalog").await;

    sqlx::query("CREATE SCHEMA event_counts")
        .execute(pool)
        .await
        .expect("a schema");
    sqlx::query(
        "CREATE TABLE event_counts.counts (aggregate_type text PRIMARY KEY, events bigint NOT NULL)",
    )
    .execute(pool)
    .await
    .expect("a table");
    let runner = Runner::new(
        pool.clone(),
        Arc::new(EventCounts),
        RunnerConfig {
            batch_size: 4,
            ..RunnerConfig::default()
        },
    );
    runner.register().await.expect("registering");
    let origin = checkpoint_row(pool, "event_counts").await;
    assert_eq!((origin.0.as_str(), origin.1, origin.2), ("0", 0, 0));
    assert_eq!(runner.catch_up().await.expect("catching up"), total);

    let counts: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_type, events FROM event_counts.counts ORDER BY 1")
            .fetch_all(pool)
            .await
            .expect("counts");
    let expected: Vec<(String, i64)> = log
        .appended
        .iter()
        .map(|(kind, n)| ((*kind).to_owned(), *n))
        .collect();
    assert_eq!(counts, expected, "every event since the origin");
    let last = whole_log(pool).await.last().map(|e| e.checkpoint);
    let caught_up = checkpoint_row(pool, "event_counts").await;
    assert_eq!(
        Some(format!("{}.{}", caught_up.0, caught_up.1)),
        last.map(|c| c.to_string())
    );
    assert_eq!(caught_up.2, total as i64);
    assert_eq!(checkpoint_row(pool, "catalog").await, catalog_checkpoint);
    assert_eq!(snapshot(pool, "catalog").await, catalog_rows);
}

// ---------------------------------------------------------------------------------------
// A lost checkpoint row: a view replays from the origin and never goes back in time; the
// saga, whose reactions move money, is not replayed over its state.
// ---------------------------------------------------------------------------------------

async fn forget_checkpoint(pool: &Db, subscriber: &str) {
    sqlx::query("DELETE FROM subscription_checkpoints WHERE subscriber = $1")
        .bind(subscriber)
        .execute(pool)
        .await
        .expect("forgetting the checkpoint");
}

#[tokio::test]
async fn replaying_any_prefix_of_the_log_over_a_live_view_changes_nothing() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let events = whole_log(pool).await;
    for view in views() {
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, view.name()).await;
        // A registration applied again alone once took its listing back to how it was
        // registered, until the rest of its events were applied again.
        for (i, event) in events.iter().enumerate() {
            apply_directly(pool, view.as_ref(), std::slice::from_ref(event)).await;
            assert_eq!(
                snapshot(pool, view.name()).await,
                before,
                "{}: event {i} again",
                view.name()
            );
        }
    }
}

#[tokio::test]
async fn a_view_whose_checkpoint_row_is_lost_replays_from_the_origin_and_never_goes_back() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let total = log.total();
    let one_at_a_time = RunnerConfig {
        batch_size: 1,
        ..RunnerConfig::default()
    };
    for view in views() {
        let name = view.name();
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let before = snapshot(pool, name).await;
        let head = checkpoint_row(pool, name).await;
        forget_checkpoint(pool, name).await;

        let runner = Runner::new(pool.clone(), view.clone(), one_at_a_time);
        let mut applied = 0;
        loop {
            match runner.run_once().await.expect("a batch") {
                Batch::Applied { events, .. } => applied += events,
                Batch::Idle => break,
                Batch::Busy => panic!("{name}: a lost row is not a row another worker holds"),
            }
            assert!(applied <= total, "{name}: {applied} events");
            assert_eq!(
                snapshot(pool, name).await,
                before,
                "{name}: after {applied} events again"
            );
        }
        assert_eq!(applied, total, "{name}: replayed from the origin");
        let again = checkpoint_row(pool, name).await;
        assert_eq!(
            (again.0, again.1),
            (head.0, head.1),
            "{name}: back at the head"
        );
    }
}

#[tokio::test]
async fn the_saga_whose_checkpoint_row_is_lost_is_not_replayed_over_its_state() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    busy_log(&mut log).await;
    let saga: Arc<dyn Subscriber> = Arc::new(SettlementSaga::default());
    catch_up_with(pool, saga.clone(), RunnerConfig::default()).await;
    let before = saga_snapshot(pool).await;
    forget_checkpoint(pool, SETTLEMENT).await;

    let runner = Runner::new(pool.clone(), saga, RunnerConfig::default());
    let error = runner.run_once().await.expect_err("not re-created");
    assert!(matches!(error, RunnerError::Missing(_)), "{error}");
    assert_eq!(saga_snapshot(pool).await, before, "nothing decided again");
    let row: Option<i64> =
        sqlx::query_scalar("SELECT 1::bigint FROM subscription_checkpoints WHERE subscriber = $1")
            .bind(SETTLEMENT)
            .fetch_optional(pool)
            .await
            .expect("reading checkpoints");
    assert_eq!(row, None);
}
