//! MyPage: each user's purchases (their requests, with status and payment status), sales
//! (their listings with the requests on them) and money (held, refunded, paid out, earned,
//! summed at read time). Kept by the `mypage` subscriber in the `mypage` schema.
//!
//! A request that never reached its seller (its payment was declined, or it was abandoned
//! after a capture whose answer was lost) is its buyer's alone.

use crate::postgres::Db;
use async_trait::async_trait;
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent as E};
use carrot_domain::{PaymentId, Price, RequestId, Trade, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::page::page;
pub use crate::page::PageCursor;
use crate::runner::{ApplyError, Subscriber};
use crate::view::{self, Fold, KeyedRow};

/// The subscriber that keeps MyPage.
#[derive(Debug, Clone, Copy, Default)]
pub struct MyPageProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const MYPAGE: &str = "mypage";

/// The statuses a request can be in, for counts with every status present.
pub const REQUEST_STATUSES: [&str; 7] = [
    "requested",
    "accepted",
    "rejected",
    "completed",
    "cancelled",
    "expired",
    "payment_failed",
];

/// The statuses a listing can be in.
pub const LISTING_STATUSES: [&str; 4] = ["available", "reserved", "sold", "withdrawn"];

#[async_trait]
impl Subscriber for MyPageProjection {
    fn name(&self) -> &'static str {
        MYPAGE
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let listing_events = view::decode::<ListingEvent>(events, Listing::TYPE)?;
        if !listing_events.is_empty() {
            let keys = view::to_load(listing_events.iter().map(|(_, e)| {
                let creates = matches!(e, ListingEvent::ListingRegistered { .. });
                (e.listing_id().as_uuid(), creates)
            }));
            let mut listings = Fold::<ListingRow>::load(tx, keys).await?;
            for (stored, event) in listing_events {
                fold_listing(&mut listings, stored.sequence, event);
            }
            listings.store(tx).await?;
        }
        let request_events = view::decode::<E>(events, PurchaseRequest::TYPE)?;
        let payment_events = view::decode::<PaymentEvent>(events, Payment::TYPE)?;
        if request_events.is_empty() && payment_events.is_empty() {
            return Ok(());
        }
        // Captures and declines come before their request and change no row: only
        // settlements of payments touch requests.
        let keys = view::to_load(
            request_events
                .iter()
                .map(|(_, e)| {
                    let creates = matches!(
                        e,
                        E::PurchaseRequested { .. }
                            | E::PurchaseRequestPaymentFailed { .. }
                            | E::PurchaseRequestAbandoned { .. }
                    );
                    (e.trade().request_id.as_uuid(), creates)
                })
                .chain(
                    payment_events
                        .iter()
                        .filter(|(_, e)| {
                            matches!(
                                e,
                                PaymentEvent::PaymentRefunded { .. }
                                    | PaymentEvent::PaymentPaidOut { .. }
                            )
                        })
                        .map(|(_, e)| (e.trade().request_id.as_uuid(), false)),
                ),
        );
        let mut requests = Fold::<RequestRow>::load(tx, keys).await?;
        // In log order across both aggregates: a capture precedes its request, a refund
        // follows its request's end.
        let mut request_events = request_events.into_iter().peekable();
        let mut payment_events = payment_events.into_iter().peekable();
        loop {
            let request_first = match (request_events.peek(), payment_events.peek()) {
                (Some((r, _)), Some((p, _))) => r.checkpoint < p.checkpoint,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if request_first {
                if let Some((stored, event)) = request_events.next() {
                    fold_request(&mut requests, stored.sequence, event);
                }
            } else if let Some((stored, event)) = payment_events.next() {
                fold_payment(&mut requests, stored.sequence, event);
            }
        }
        requests.store(tx).await
    }
}

/// A row of `mypage.listings`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
struct ListingRow {
    listing_id: Uuid,
    seller_id: Uuid,
    title: String,
    price: i64,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl KeyedRow for ListingRow {
    const TABLE: &'static str = "listings";
    const KEY: &'static str = "listing_id";
    fn key(&self) -> Uuid {
        self.listing_id
    }
}

/// A row of `mypage.requests`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
struct RequestRow {
    request_id: Uuid,
    listing_id: Uuid,
    buyer_id: Uuid,
    seller_id: Uuid,
    price: i64,
    status: String,
    reason: Option<String>,
    payment_id: Uuid,
    payment_status: String,
    seen_by_seller: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    payment_version: i64,
}

impl KeyedRow for RequestRow {
    const TABLE: &'static str = "requests";
    const KEY: &'static str = "request_id";
    fn key(&self) -> Uuid {
        self.request_id
    }
}

fn fold_listing(listings: &mut Fold<ListingRow>, version: i64, event: ListingEvent) {
    let id = event.listing_id().as_uuid();
    if let ListingEvent::ListingRegistered {
        listing_id,
        seller_id,
        title,
        price,
        registered_at,
        ..
    } = event
    {
        listings.create(ListingRow {
            listing_id: listing_id.as_uuid(),
            seller_id: seller_id.as_uuid(),
            title: title.as_str().to_owned(),
            price: price.as_krw(),
            status: "available".into(),
            created_at: registered_at,
            updated_at: registered_at,
            version,
        });
        return;
    }
    let Some(row) = listings.change(id).filter(|row| row.version < version) else {
        return;
    };
    row.version = version;
    if let Some((status, at)) = event.status_change() {
        row.status = status.to_owned();
        row.updated_at = at;
    } else if let ListingEvent::ListingEdited {
        title,
        price,
        edited_at,
        ..
    } = event
    {
        row.title = title.as_str().to_owned();
        row.price = price.as_krw();
        row.updated_at = edited_at;
    }
}

fn new_request(
    trade: Trade,
    price: Price,
    payment_id: PaymentId,
    (status, payment_status): (&str, &str),
    reason: Option<String>,
    at: DateTime<Utc>,
    version: i64,
) -> RequestRow {
    RequestRow {
        request_id: trade.request_id.as_uuid(),
        listing_id: trade.listing_id.as_uuid(),
        buyer_id: trade.buyer_id.as_uuid(),
        seller_id: trade.seller_id.as_uuid(),
        price: price.as_krw(),
        status: status.to_owned(),
        reason,
        payment_id: payment_id.as_uuid(),
        payment_status: payment_status.to_owned(),
        seen_by_seller: status == "requested",
        created_at: at,
        updated_at: at,
        version,
        payment_version: 0,
    }
}

fn fold_request(requests: &mut Fold<RequestRow>, version: i64, event: E) {
    let id = event.trade().request_id.as_uuid();
    // A request exists only with a captured payment (or a failed one, or an abandoned
    // capture): the payment's status follows from how it was created.
    let (status, at, reason) = match event {
        E::PurchaseRequested {
            trade,
            price,
            payment_id,
            requested_at: at,
        } => {
            let statuses = ("requested", "captured");
            requests.create(new_request(
                trade, price, payment_id, statuses, None, at, version,
            ));
            return;
        }
        E::PurchaseRequestPaymentFailed {
            trade,
            price,
            payment_id,
            reason,
            failed_at: at,
        } => {
            let statuses = ("payment_failed", "failed");
            let row = new_request(
                trade,
                price,
                payment_id,
                statuses,
                Some(reason),
                at,
                version,
            );
            requests.create(row);
            return;
        }
        E::PurchaseRequestAbandoned {
            trade,
            price,
            payment_id,
            abandoned_at: at,
        } => {
            let statuses = ("expired", "captured");
            requests.create(new_request(
                trade, price, payment_id, statuses, None, at, version,
            ));
            return;
        }
        E::PurchaseRequestAccepted { accepted_at, .. } => ("accepted", accepted_at, None),
        E::PurchaseRequestRejected {
            rejected_at,
            reason,
            ..
        } => ("rejected", rejected_at, reason),
        E::PurchaseRequestCompleted { completed_at, .. } => ("completed", completed_at, None),
        E::PurchaseRequestCancelled { cancelled_at, .. } => ("cancelled", cancelled_at, None),
        E::PurchaseRequestExpired { expired_at, .. } => ("expired", expired_at, None),
    };
    let Some(row) = requests.change(id).filter(|row| row.version < version) else {
        return;
    };
    row.version = version;
    row.status = status.to_owned();
    row.updated_at = at;
    if reason.is_some() {
        row.reason = reason;
    }
}

/// Only settlements change a request's payment status: captures and declines come before
/// the request exists and are implied by how it was created.
fn fold_payment(requests: &mut Fold<RequestRow>, version: i64, event: PaymentEvent) {
    let (status, at) = match &event {
        PaymentEvent::PaymentRefunded { refunded_at, .. } => ("refunded", *refunded_at),
        PaymentEvent::PaymentPaidOut { paid_out_at, .. } => ("paid_out", *paid_out_at),
        _ => return,
    };
    let id = event.trade().request_id.as_uuid();
    if let Some(row) = requests
        .change(id)
        .filter(|row| row.payment_version < version)
    {
        row.payment_status = status.to_owned();
        row.payment_version = version;
        row.updated_at = row.updated_at.max(at);
    }
}

/// A request as MyPage and its detail page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RequestView {
    /// The request.
    pub request_id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// The listing's title now.
    pub listing_title: Option<String>,
    /// Who buys.
    pub buyer_id: Uuid,
    /// Who sells.
    pub seller_id: Uuid,
    /// The agreed price in KRW.
    pub price: i64,
    /// `requested`, `accepted`, `rejected`, `completed`, `cancelled`, `expired`, `payment_failed`.
    pub status: String,
    /// Why it was rejected, or why its payment failed.
    pub reason: Option<String>,
    /// The payment.
    #[serde(skip)]
    pub payment_id: Uuid,
    /// Its status: `captured` (held in escrow), `refunded`, `paid_out`, `failed`.
    #[serde(skip)]
    pub payment_status: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl RequestView {
    /// The API shape: the request with its payment nested.
    pub fn to_json(&self) -> Value {
        let mut body = serde_json::to_value(self).unwrap_or_default();
        body["payment"] = json!({
            "payment_id": self.payment_id,
            "status": self.payment_status,
            "amount": self.price,
        });
        body
    }
}

const REQUEST_COLUMNS: &str = "r.request_id, r.listing_id, l.title AS listing_title, r.buyer_id,
    r.seller_id, r.price, r.status, r.reason, r.payment_id, r.payment_status, r.created_at,
    r.updated_at";

/// One request, if `reader` is its buyer, or its seller once it was paid for.
#[tracing::instrument(skip(pool))]
pub async fn request_for(
    pool: &Db,
    id: RequestId,
    reader: UserId,
) -> Result<Option<RequestView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM mypage.requests r
           LEFT JOIN mypage.listings l USING (listing_id)
          WHERE r.request_id = $1
            AND (r.buyer_id = $2 OR (r.seller_id = $2 AND r.seen_by_seller))"
    ))
    .bind(id.as_uuid())
    .bind(reader.as_uuid())
    .fetch_optional(pool)
    .await
}

/// The buyer's requests, newest first.
#[tracing::instrument(skip(pool))]
pub async fn purchases(
    pool: &Db,
    buyer: UserId,
    after: Option<PageCursor>,
    limit: i64,
) -> Result<(Vec<RequestView>, Option<PageCursor>), sqlx::Error> {
    let items: Vec<RequestView> = sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM mypage.requests r
           LEFT JOIN mypage.listings l USING (listing_id)
          WHERE r.buyer_id = $1
            AND ($2::timestamptz IS NULL OR (r.created_at, r.request_id) < ($2, $3))
          ORDER BY r.created_at DESC, r.request_id DESC
          LIMIT $4"
    ))
    .bind(buyer.as_uuid())
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(page(items, limit, |r| {
        PageCursor::after(r.created_at, r.request_id)
    }))
}

/// A seller's listing with the paid requests on it.
#[derive(Debug, Clone, Serialize)]
pub struct SaleView {
    /// The listing.
    pub listing_id: Uuid,
    /// Its title.
    pub title: String,
    /// Its asking price in KRW.
    pub price: i64,
    /// `available`, `reserved`, `sold` or `withdrawn`.
    pub status: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its requests, newest first (unpaid ones are the buyers' alone).
    pub requests: Vec<Value>,
}

type SaleRow = (Uuid, String, i64, String, DateTime<Utc>, DateTime<Utc>);

/// The seller's listings, newest first, each with its requests.
#[tracing::instrument(skip(pool))]
pub async fn sales(
    pool: &Db,
    seller: UserId,
    after: Option<PageCursor>,
    limit: i64,
) -> Result<(Vec<SaleView>, Option<PageCursor>), sqlx::Error> {
    let listings: Vec<SaleRow> = sqlx::query_as(
        "SELECT listing_id, title, price, status, created_at, updated_at FROM mypage.listings
          WHERE seller_id = $1
            AND ($2::timestamptz IS NULL OR (created_at, listing_id) < ($2, $3))
          ORDER BY created_at DESC, listing_id DESC
          LIMIT $4",
    )
    .bind(seller.as_uuid())
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    let (listings, next) = page(listings, limit, |l| PageCursor::after(l.4, l.0));
    let ids: Vec<Uuid> = listings.iter().map(|l| l.0).collect();
    let requests: Vec<RequestView> = sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM mypage.requests r
           LEFT JOIN mypage.listings l USING (listing_id)
          WHERE r.listing_id = ANY($1) AND r.seller_id = $2 AND r.seen_by_seller
          ORDER BY r.created_at DESC, r.request_id DESC"
    ))
    .bind(&ids)
    .bind(seller.as_uuid())
    .fetch_all(pool)
    .await?;
    let sales = listings
        .into_iter()
        .map(
            |(listing_id, title, price, status, created_at, updated_at)| SaleView {
                requests: requests
                    .iter()
                    .filter(|r| r.listing_id == listing_id)
                    .map(RequestView::to_json)
                    .collect(),
                listing_id,
                title,
                price,
                status,
                created_at,
                updated_at,
            },
        )
        .collect();
    Ok((sales, next))
}

/// The caller's summary: requests by status on each side, listings by status, and money.
#[tracing::instrument(skip(pool))]
pub async fn summary(pool: &Db, user: UserId) -> Result<Value, sqlx::Error> {
    let counts: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT 'purchases', status, count(*) FROM mypage.requests WHERE buyer_id = $1 GROUP BY status
         UNION ALL
         SELECT 'sales', status, count(*) FROM mypage.requests
          WHERE seller_id = $1 AND seen_by_seller GROUP BY status
         UNION ALL
         SELECT 'listings', status, count(*) FROM mypage.listings WHERE seller_id = $1 GROUP BY status",
    )
    .bind(user.as_uuid())
    .fetch_all(pool)
    .await?;
    let money: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(price) FILTER (WHERE buyer_id = $1 AND payment_status = 'captured'), 0)::bigint,
                coalesce(sum(price) FILTER (WHERE buyer_id = $1 AND payment_status = 'refunded'), 0)::bigint,
                coalesce(sum(price) FILTER (WHERE buyer_id = $1 AND payment_status = 'paid_out'), 0)::bigint,
                coalesce(sum(price) FILTER (WHERE seller_id = $1 AND payment_status = 'paid_out'), 0)::bigint,
                coalesce(sum(price) FILTER (WHERE seller_id = $1 AND payment_status = 'captured'
                                              AND seen_by_seller), 0)::bigint
           FROM mypage.requests WHERE buyer_id = $1 OR seller_id = $1",
    )
    .bind(user.as_uuid())
    .fetch_one(pool)
    .await?;
    let tally = |side: &str, statuses: &[&str]| -> Value {
        let mut out: Map<String, Value> = statuses
            .iter()
            .map(|s| ((*s).to_owned(), json!(0)))
            .collect();
        for (_, status, n) in counts.iter().filter(|(s, ..)| s == side) {
            out.insert(status.clone(), json!(n));
        }
        Value::Object(out)
    };
    let mut sales = tally("sales", &REQUEST_STATUSES);
    if let Some(sales) = sales.as_object_mut() {
        sales.remove("payment_failed");
    }
    Ok(json!({
        "purchases": tally("purchases", &REQUEST_STATUSES),
        "sales": sales,
        "listings": tally("listings", &LISTING_STATUSES),
        "money": {
            "held": money.0,
            "refunded": money.1,
            "paid_out": money.2,
            "earned": money.3,
            "incoming": money.4,
        },
    }))
}
