//! MyPage's queries: one request as its parties may see it, a buyer's purchases, a seller's
//! sales (each listing with its newest requests), and the summary of both sides and money.
//! Who sees what: a request that never reached its seller is its buyer's alone.

use carrot_domain::listing::ListingStatus;
use carrot_domain::purchase_request::RequestStatus;
use carrot_domain::{RequestId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::{ObjectBuilder, Type};
use utoipa::ToSchema;
use uuid::Uuid;

use super::RequestRow;
use crate::postgres::Db;
use crate::views::page::{Page, PageCursor};

// The answers' fields are in alphabetical order: they were first written as JSON maps, whose
// keys serde_json sorts, and clients have read these bytes since.

/// A request with its payment, as MyPage and the request's detail page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RequestView {
    /// Who buys.
    pub buyer_id: Uuid,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// The listing.
    pub listing_id: Uuid,
    /// The listing's title now.
    pub listing_title: Option<String>,
    /// Its payment.
    pub payment: PaymentSummary,
    /// The agreed price in KRW.
    pub price: i64,
    /// Why it was rejected, or why its payment failed.
    pub reason: Option<String>,
    /// The request.
    pub request_id: Uuid,
    /// Who sells.
    pub seller_id: Uuid,
    /// Its status.
    #[schema(value_type = crate::views::statuses::RequestStatus)]
    pub status: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A request's payment, as the request pages nest it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PaymentSummary {
    /// The amount in KRW (the request's price).
    pub amount: i64,
    /// The payment.
    pub payment_id: Uuid,
    /// Its status.
    #[schema(value_type = crate::views::statuses::PaymentStatus)]
    pub status: String,
}

/// A row as the queries read it: the view's row, and its listing's title now.
#[derive(sqlx::FromRow)]
struct Fetched {
    #[sqlx(flatten)]
    row: RequestRow,
    listing_title: Option<String>,
}

impl From<Fetched> for RequestView {
    fn from(Fetched { row, listing_title }: Fetched) -> Self {
        RequestView {
            payment: PaymentSummary {
                amount: row.price,
                payment_id: row.payment_id,
                status: row.payment_status,
            },
            buyer_id: row.buyer_id,
            created_at: row.created_at,
            listing_id: row.listing_id,
            listing_title,
            price: row.price,
            reason: row.reason,
            request_id: row.request_id,
            seller_id: row.seller_id,
            status: row.status,
            updated_at: row.updated_at,
        }
    }
}

const REQUEST_COLUMNS: &str = "r.*, l.title AS listing_title";

/// One request, if `reader` is its buyer, or its seller once it was paid for.
#[tracing::instrument(skip(pool))]
pub async fn request_for(
    pool: &Db,
    id: RequestId,
    reader: UserId,
) -> Result<Option<RequestView>, sqlx::Error> {
    let row: Option<Fetched> = sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM mypage.requests r
           LEFT JOIN mypage.listings l USING (listing_id)
          WHERE r.request_id = $1
            AND (r.buyer_id = $2 OR (r.seller_id = $2 AND r.seen_by_seller))"
    ))
    .bind(id.as_uuid())
    .bind(reader.as_uuid())
    .fetch_optional(pool)
    .await?;
    Ok(row.map(RequestView::from))
}

/// Every request `user` made, and every paid one made for their listings, oldest first.
#[tracing::instrument(skip(pool))]
pub async fn requests_of(
    pool: &Db,
    user: UserId,
) -> Result<(Vec<RequestView>, Vec<RequestView>), sqlx::Error> {
    let fetched: Vec<Fetched> = sqlx::query_as(&format!(
        "SELECT {REQUEST_COLUMNS} FROM mypage.requests r
           LEFT JOIN mypage.listings l USING (listing_id)
          WHERE r.buyer_id = $1 OR (r.seller_id = $1 AND r.seen_by_seller)
          ORDER BY r.created_at, r.request_id"
    ))
    .bind(user.as_uuid())
    .fetch_all(pool)
    .await?;
    let (purchases, sales) = fetched
        .into_iter()
        .map(RequestView::from)
        .partition(|r| r.buyer_id == user.as_uuid());
    Ok((purchases, sales))
}

/// The buyer's requests, newest first.
#[tracing::instrument(skip(pool))]
pub async fn purchases(
    pool: &Db,
    buyer: UserId,
    after: Option<PageCursor>,
    limit: i64,
) -> Result<Page<RequestView>, sqlx::Error> {
    let items: Vec<Fetched> = sqlx::query_as(&format!(
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
    let items = items.into_iter().map(RequestView::from).collect();
    Ok(Page::cut(items, limit, |r: &RequestView| {
        PageCursor::after(r.created_at, r.request_id).encode()
    }))
}

/// A seller's listing with the paid requests on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SaleView {
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// The listing.
    pub listing_id: Uuid,
    /// Whether it has older requests than those in `requests`.
    pub more_requests: bool,
    /// Its asking price in KRW.
    pub price: i64,
    /// Its newest paid requests, at most 20 ([`REQUESTS_PER_SALE`]), newest first (each
    /// one's whole story is at `GET /requests/{id}`; unpaid ones are the buyers' alone).
    pub requests: Vec<RequestView>,
    /// Its status.
    #[schema(value_type = crate::views::statuses::ListingStatus)]
    pub status: String,
    /// Its title.
    pub title: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
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
) -> Result<Page<SaleView>, sqlx::Error> {
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
    let listings = Page::cut(listings, limit, |l| PageCursor::after(l.4, l.0).encode());
    let ids: Vec<Uuid> = listings.items.iter().map(|l| l.0).collect();
    // The newest REQUESTS_PER_SALE + 1 of each listing (one more, to tell whether there are
    // more), each listing's read bounded by its index.
    let requests: Vec<Fetched> = sqlx::query_as(&format!(
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
    let requests: Vec<RequestView> = requests.into_iter().map(RequestView::from).collect();
    let items = listings
        .items
        .into_iter()
        .map(
            |(listing_id, title, price, status, created_at, updated_at)| {
                let mut on_it = requests.iter().filter(|r| r.listing_id == listing_id);
                let shown: Vec<RequestView> =
                    on_it.by_ref().take(REQUESTS_PER_SALE).cloned().collect();
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
    Ok(Page {
        items,
        next_cursor: listings.next_cursor,
    })
}

/// How many of the caller's requests or listings are in each status: every status present,
/// 0 when none.
pub type Counts = BTreeMap<&'static str, i64>;

/// The caller's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// The caller's listings by status.
    #[schema(schema_with = listing_counts)]
    pub listings: Counts,
    /// The caller's money.
    pub money: Money,
    /// The caller's requests as a buyer, by status.
    #[schema(schema_with = purchase_counts)]
    pub purchases: Counts,
    /// Requests on the caller's listings, by status (a declined payment never reaches its
    /// seller, so there is no `payment_failed`).
    #[schema(schema_with = sale_counts)]
    pub sales: Counts,
}

/// The caller's money, in KRW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct Money {
    /// Paid out to the caller as a seller.
    pub earned: i64,
    /// Paid by the caller and held in escrow.
    pub held: i64,
    /// Held in escrow for the caller's sales, due once completed.
    pub incoming: i64,
    /// Paid by the caller and paid out to sellers.
    pub paid_out: i64,
    /// Refunded to the caller.
    pub refunded: i64,
}

fn listing_statuses() -> impl Iterator<Item = &'static str> {
    ListingStatus::SHOWN.into_iter().map(|s| s.name())
}

fn purchase_statuses() -> impl Iterator<Item = &'static str> {
    RequestStatus::SHOWN.into_iter().map(|s| s.name())
}

fn sale_statuses() -> impl Iterator<Item = &'static str> {
    purchase_statuses().filter(|s| *s != RequestStatus::PaymentFailed.name())
}

/// An object with one whole number per status, every one present.
fn counts_schema(
    description: &str,
    statuses: impl Iterator<Item = &'static str>,
) -> utoipa::openapi::Object {
    statuses
        .fold(
            ObjectBuilder::new().description(Some(description)),
            |object, status| {
                let count = ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                    utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
                ));
                object.property(status, count).required(status)
            },
        )
        .build()
}

fn listing_counts() -> utoipa::openapi::Object {
    counts_schema("The caller's listings by status.", listing_statuses())
}

fn purchase_counts() -> utoipa::openapi::Object {
    counts_schema(
        "The caller's requests as a buyer, by status (every status present, 0 when none).",
        purchase_statuses(),
    )
}

fn sale_counts() -> utoipa::openapi::Object {
    counts_schema(
        "Requests on the caller's listings by status (a declined payment never reaches its \
         seller, so there is no `payment_failed`).",
        sale_statuses(),
    )
}

/// The caller's summary: requests by status on each side, listings by status, and money,
/// from the totals the projection keeps (`tallies.rs`): a handful of rows, whatever the
/// caller's history.
#[tracing::instrument(skip(pool))]
pub async fn summary(pool: &Db, user: UserId) -> Result<Summary, sqlx::Error> {
    let totals: Vec<(String, i64)> =
        sqlx::query_as("SELECT name, value FROM mypage.tallies WHERE user_id = $1")
            .bind(user.as_uuid())
            .fetch_all(pool)
            .await?;
    let total = |name: &str| {
        totals
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0, |(_, value)| *value)
    };
    // Only the statuses shown count: a total of a status the code no longer knows is no key.
    let tally = |side: &str, statuses: &mut dyn Iterator<Item = &'static str>| -> Counts {
        statuses
            .map(|status| (status, total(&format!("{side}:{status}"))))
            .collect()
    };
    Ok(Summary {
        listings: tally("listings", &mut listing_statuses()),
        money: Money {
            earned: total("money:earned"),
            held: total("money:held"),
            incoming: total("money:incoming"),
            paid_out: total("money:paid_out"),
            refunded: total("money:refunded"),
        },
        purchases: tally("purchases", &mut purchase_statuses()),
        sales: tally("sales", &mut sale_statuses()),
    })
}
