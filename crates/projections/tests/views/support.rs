//! The event log written the way the event store writes it, views run and read back, and a
//! small market several tests share.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use carrot_domain::account::{Account, AccountEvent};
use carrot_domain::listing::fields::{Category, Description, ListingTitle};
use carrot_domain::listing::{Change, Listing, ListingChanges, ListingEvent};
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent as E};
use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, PaymentId, Price, RequestId, Trade, UserId};
use carrot_projections::log::read_after;
use carrot_projections::postgres::Db;
use carrot_projections::views::catalog::{self, ListingView};
use carrot_projections::views::mypage::{self, RequestView};
use carrot_projections::views::payments::{self, PaymentView};
use carrot_projections::{Checkpoint, Runner, RunnerConfig, StoredEvent, Subscriber};
use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------
// The event log, written the way the event store writes it, with the api's metadata.
// ---------------------------------------------------------------------------------------

/// A moment, `minute` minutes into the test's day (whole seconds: the views keep micros).
pub fn at(minute: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + minute * 60, 0).expect("a valid time")
}

/// An event of any of the aggregates the views read.
#[derive(Debug, Clone)]
pub enum Event {
    Listing(ListingEvent),
    Request(E),
    Payment(PaymentEvent),
    Account(AccountEvent),
}

impl Event {
    /// Its aggregate type, event type, event version and payload as cqrs-es stores it.
    pub fn stored_form(&self) -> (&'static str, String, String, Value) {
        fn parts<T: DomainEvent>(event: &T) -> (String, String, Value) {
            let payload = serde_json::to_value(event).expect("an event serializes");
            (event.event_type(), event.event_version(), payload)
        }
        let (aggregate_type, (event_type, version, payload)) = match self {
            Event::Listing(e) => (Listing::TYPE, parts(e)),
            Event::Request(e) => (PurchaseRequest::TYPE, parts(e)),
            Event::Payment(e) => (Payment::TYPE, parts(e)),
            Event::Account(e) => (Account::TYPE, parts(e)),
        };
        (aggregate_type, event_type, version, payload)
    }
}

pub fn text_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

/// Appends events with increasing sequence numbers per aggregate, one transaction each.
pub struct EventLog {
    pub pool: Db,
    pub sequences: HashMap<(&'static str, String), i64>,
    /// How many events of each aggregate type were appended.
    pub appended: BTreeMap<&'static str, i64>,
}

impl EventLog {
    pub fn new(pool: &Db) -> Self {
        EventLog {
            pool: pool.clone(),
            sequences: HashMap::new(),
            appended: BTreeMap::new(),
        }
    }

    /// Appends `event` by `by`, correlated with the trade it names; returns its place.
    pub async fn append(&mut self, event: Event, by: Actor) -> Checkpoint {
        let (aggregate_type, event_type, version, payload) = event.stored_form();
        let body = &payload[&event_type];
        let id_path: &[&str] = match &event {
            Event::Listing(_) => &["listing_id"],
            Event::Request(_) => &["trade", "request_id"],
            Event::Payment(_) => &["payment_id"],
            Event::Account(_) => &["user_id"],
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

    pub async fn append_all(&mut self, events: Vec<(Event, Actor)>) {
        for (event, by) in events {
            self.append(event, by).await;
        }
    }

    pub fn total(&self) -> usize {
        self.appended.values().sum::<i64>() as usize
    }
}

pub fn registered(
    listing: ListingId,
    seller: UserId,
    title: &str,
    price: i64,
    minute: i64,
) -> Event {
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

pub fn edited(
    listing: ListingId,
    title: &str,
    description: &str,
    price: i64,
    minute: i64,
) -> Event {
    Event::Listing(ListingEvent::ListingEdited {
        listing_id: listing,
        changes: ListingChanges {
            title: Some(Change {
                from: None,
                to: ListingTitle::parse(title).expect("a title"),
            }),
            description: Some(Change {
                from: None,
                to: Description::parse(description).expect("a text"),
            }),
            price: Some(Change {
                from: None,
                to: Price::parse(price).expect("a price"),
            }),
        },
        edited_at: at(minute),
    })
}

pub fn withdrawn(listing: ListingId, minute: i64) -> Event {
    Event::Listing(ListingEvent::ListingWithdrawn {
        listing_id: listing,
        withdrawn_at: at(minute),
    })
}

/// `user` closed their account (what they typed reads `[erased]` from here on).
pub fn closed(user: UserId, minute: i64) -> Event {
    Event::Account(AccountEvent::AccountClosed {
        user_id: user,
        by: Actor::User(user),
        closed_at: at(minute),
    })
}

pub fn user(id: UserId) -> Actor {
    Actor::User(id)
}

/// One purchase request with its payment: builds the events of the trade.
#[derive(Debug, Clone, Copy)]
pub struct Deal {
    pub trade: Trade,
    pub payment_id: PaymentId,
    pub price: Price,
}

impl Deal {
    pub fn new(listing: ListingId, seller: UserId, buyer: UserId, price: i64) -> Self {
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

    pub fn id(&self) -> RequestId {
        self.trade.request_id
    }
    pub fn buyer(&self) -> UserId {
        self.trade.buyer_id
    }
    pub fn seller(&self) -> UserId {
        self.trade.seller_id
    }

    pub fn captured(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentCaptured {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("capture:{}", self.payment_id),
            captured_at: at(minute),
        })
    }
    pub fn declined(&self, reason: &str, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentDeclined {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reason: reason.into(),
            declined_at: at(minute),
        })
    }
    pub fn timed_out(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentCaptureTimedOut {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            timed_out_at: at(minute),
        })
    }
    pub fn refunded(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentRefunded {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("refund:{}", self.payment_id),
            refunded_at: at(minute),
        })
    }
    pub fn paid_out(&self, minute: i64) -> Event {
        Event::Payment(PaymentEvent::PaymentPaidOut {
            payment_id: self.payment_id,
            trade: self.trade,
            amount: self.price.money(),
            reference: format!("payout:{}", self.payment_id),
            paid_out_at: at(minute),
        })
    }

    pub fn requested(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequested {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            requested_at: at(minute),
        })
    }
    pub fn payment_failed(&self, reason: &str, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestPaymentFailed {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            reason: reason.into(),
            failed_at: at(minute),
        })
    }
    pub fn accepted(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestAccepted {
            trade: self.trade,
            accepted_at: at(minute),
        })
    }
    pub fn rejected(&self, by: Actor, reason: Option<&str>, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestRejected {
            trade: self.trade,
            by,
            reason: reason.map(str::to_owned),
            rejected_at: at(minute),
        })
    }
    pub fn completed(&self, automatic: bool, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestCompleted {
            trade: self.trade,
            automatic,
            completed_at: at(minute),
        })
    }
    pub fn cancelled(&self, by: Party, after_acceptance: bool, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestCancelled {
            trade: self.trade,
            by,
            after_acceptance,
            cancelled_at: at(minute),
        })
    }
    pub fn expired(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestExpired {
            trade: self.trade,
            expired_at: at(minute),
        })
    }
    pub fn abandoned(&self, minute: i64) -> Event {
        Event::Request(E::PurchaseRequestAbandoned {
            trade: self.trade,
            price: self.price,
            payment_id: self.payment_id,
            abandoned_at: at(minute),
        })
    }

    pub fn reserved(&self, minute: i64) -> Event {
        Event::Listing(ListingEvent::ListingReserved {
            listing_id: self.trade.listing_id,
            request_id: self.id(),
            reserved_at: at(minute),
        })
    }
    pub fn released(&self, minute: i64) -> Event {
        Event::Listing(ListingEvent::ListingReleased {
            listing_id: self.trade.listing_id,
            request_id: self.id(),
            released_at: at(minute),
        })
    }
    pub fn sold(&self, minute: i64) -> Event {
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
pub async fn catch_up_with(pool: &Db, view: Arc<dyn Subscriber>, config: RunnerConfig) -> usize {
    let runner = Runner::new(pool.clone(), view, config);
    runner.register().await.expect("registering the view");
    runner.catch_up().await.expect("catching up")
}

pub async fn catch_up(pool: &Db, view: impl Subscriber) -> usize {
    catch_up_with(pool, Arc::new(view), RunnerConfig::default()).await
}

/// Every row of every table in `schema`, as JSON, in a stable order.
pub async fn snapshot(pool: &Db, schema: &str) -> BTreeMap<String, Value> {
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
pub async fn apply_directly(pool: &Db, view: &dyn Subscriber, events: &[StoredEvent]) {
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

pub async fn whole_log(pool: &Db) -> Vec<StoredEvent> {
    let mut conn = pool.acquire().await.expect("a connection");
    read_after(&mut conn, Checkpoint::ORIGIN, 100_000)
        .await
        .expect("reading the log")
}

/// A subscriber's checkpoint row: where it is, how many events, when it last moved.
pub async fn checkpoint_row(pool: &Db, name: &str) -> (String, i64, i64, DateTime<Utc>) {
    sqlx::query_as(
        "SELECT transaction_id::text, global_position, events_applied, updated_at
           FROM subscription_checkpoints WHERE subscriber = $1",
    )
    .bind(name)
    .fetch_one(pool)
    .await
    .expect("a checkpoint row")
}

pub async fn listing(pool: &Db, id: ListingId) -> ListingView {
    catalog::listing_by_id(pool, id)
        .await
        .expect("reading the catalog")
        .expect("the listing is in the catalog")
}

pub async fn payment(pool: &Db, deal: &Deal, reader: UserId) -> Option<PaymentView> {
    payments::payment_for(pool, deal.payment_id, reader)
        .await
        .expect("reading payments")
}

pub async fn request(pool: &Db, deal: &Deal, reader: UserId) -> Option<RequestView> {
    mypage::request_for(pool, deal.id(), reader)
        .await
        .expect("reading mypage")
}
