//! MyPage's queries: one request as its parties may see it, a buyer's purchases, a seller's
//! sales (each listing with its newest requests), and the summary of both sides and money.
//! Who sees what: a request that never reached its seller is its buyer's alone.

use crate::postgres::Db;
use carrot_domain::{RequestId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{LISTING_STATUSES, REQUEST_STATUSES};
use crate::page::{page, PageCursor};

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
    /// Its newest requests, at most [`REQUESTS_PER_SALE`], newest first (unpaid ones are
    /// the buyers' alone).
    pub requests: Vec<Value>,
    /// Whether it has older requests than those in `requests`.
    pub more_requests: bool,
}

/// The most requests a sale lists. Buyers control how many requests a listing gathers (a
/// request cancelled at once is refunded, and may be placed again), so without a bound one
/// buyer could make every page of a seller's sales arbitrarily large.
pub const REQUESTS_PER_SALE: usize = 20;

type SaleRow = (Uuid, String, i64, String, DateTime<Utc>, DateTime<Utc>);

/// The seller's listings, newest first, each with its newest requests.
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
    // The newest REQUESTS_PER_SALE + 1 of each listing (one more, to tell whether there are
    // more), each listing's read bounded by its index.
    let requests: Vec<RequestView> = sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM unnest($1::uuid[]) AS sale(id)
          CROSS JOIN LATERAL (
                SELECT * FROM mypage.requests q
                 WHERE q.listing_id = sale.id AND q.seller_id = $2 AND q.seen_by_seller
                 ORDER BY q.created_at DESC, q.request_id DESC
                 LIMIT $3) r
           LEFT JOIN mypage.listings l USING (listing_id)
          ORDER BY r.created_at DESC, r.request_id DESC"
    ))
    .bind(&ids)
    .bind(seller.as_uuid())
    .bind(REQUESTS_PER_SALE as i64 + 1)
    .fetch_all(pool)
    .await?;
    let sales = listings
        .into_iter()
        .map(
            |(listing_id, title, price, status, created_at, updated_at)| {
                let mut on_it = requests.iter().filter(|r| r.listing_id == listing_id);
                let shown: Vec<Value> = on_it
                    .by_ref()
                    .take(REQUESTS_PER_SALE)
                    .map(RequestView::to_json)
                    .collect();
                SaleView {
                    requests: shown,
                    more_requests: on_it.next().is_some(),
                    listing_id,
                    title,
                    price,
                    status,
                    created_at,
                    updated_at,
                }
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
