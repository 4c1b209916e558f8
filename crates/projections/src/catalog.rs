//! The catalog view: every listing with its current status, for browsing and for
//! `GET /listings/{id}`. Kept by the `catalog` subscriber in the `catalog` schema.

use async_trait::async_trait;
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::ListingId;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runner::{ApplyError, Subscriber};

/// The subscriber that keeps the catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const CATALOG: &str = "catalog";

#[async_trait]
impl Subscriber for CatalogProjection {
    fn name(&self) -> &'static str {
        CATALOG
    }

    async fn apply(&self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        if event.aggregate_type != Listing::TYPE {
            return Ok(());
        }
        let listing = event.decode::<ListingEvent>()?;
        match listing {
            ListingEvent::ListingRegistered {
                listing_id,
                seller_id,
                title,
                description,
                price,
                category,
                registered_at,
            } => {
                sqlx::query(
                    "INSERT INTO listings (listing_id, seller_id, title, description, price,
                                           category, status, created_at, updated_at, version)
                     VALUES ($1, $2, $3, $4, $5, $6, 'available', $7, $7, $8)
                     ON CONFLICT (listing_id) DO NOTHING",
                )
                .bind(listing_id.as_uuid())
                .bind(seller_id.as_uuid())
                .bind(title.as_str())
                .bind(description.as_str())
                .bind(price.as_krw())
                .bind(category.as_ref().map(|c| c.as_str()))
                .bind(registered_at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
            ListingEvent::ListingEdited {
                listing_id,
                title,
                description,
                price,
                edited_at,
            } => {
                sqlx::query(
                    "UPDATE listings SET title = $2, description = $3, price = $4,
                                         updated_at = $5, version = $6
                      WHERE listing_id = $1 AND version < $6",
                )
                .bind(listing_id.as_uuid())
                .bind(title.as_str())
                .bind(description.as_str())
                .bind(price.as_krw())
                .bind(edited_at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
            ListingEvent::ListingWithdrawn {
                listing_id,
                withdrawn_at: at,
            }
            | ListingEvent::ListingReserved {
                listing_id,
                reserved_at: at,
                ..
            }
            | ListingEvent::ListingReleased {
                listing_id,
                released_at: at,
                ..
            }
            | ListingEvent::ListingSold {
                listing_id,
                sold_at: at,
                ..
            } => {
                let status = match listing {
                    ListingEvent::ListingWithdrawn { .. } => "withdrawn",
                    ListingEvent::ListingReserved { .. } => "reserved",
                    ListingEvent::ListingSold { .. } => "sold",
                    _ => "available",
                };
                sqlx::query(
                    "UPDATE listings SET status = $2, updated_at = $3, version = $4
                      WHERE listing_id = $1 AND version < $4",
                )
                .bind(listing_id.as_uuid())
                .bind(status)
                .bind(at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

/// A listing as the catalog shows it (the `GET /listings/{id}` body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ListingView {
    /// The listing.
    pub listing_id: Uuid,
    /// Who sells it.
    pub seller_id: Uuid,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// The asking price in KRW.
    pub price: i64,
    /// Its category, if any.
    pub category: Option<String>,
    /// `available`, `reserved`, `sold` or `withdrawn`.
    pub status: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

const VIEW_COLUMNS: &str =
    "listing_id, seller_id, title, description, price, category, status, created_at, updated_at";

/// One listing by id, if the catalog has it.
#[tracing::instrument(skip(pool))]
pub async fn listing_by_id(
    pool: &PgPool,
    id: ListingId,
) -> Result<Option<ListingView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM catalog.listings WHERE listing_id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
}

/// Where a catalog page ends: the last listing's `(created_at, listing_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatalogCursor {
    created_at: DateTime<Utc>,
    listing_id: Uuid,
}

impl CatalogCursor {
    /// The cursor's text form, opaque to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.listing_id.simple()
        )
    }

    /// Parses a cursor from its text form.
    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        Some(CatalogCursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            listing_id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// What to list.
#[derive(Debug, Clone)]
pub struct CatalogQuery {
    /// Only listings in this status.
    pub status: String,
    /// A case-insensitive substring of the title or description.
    pub text: Option<String>,
    /// Continue after this cursor.
    pub after: Option<CatalogCursor>,
    /// At most this many items.
    pub limit: i64,
}

/// One page of the catalog, newest first, and the cursor of the next page if there is one.
#[tracing::instrument(skip(pool))]
pub async fn list(
    pool: &PgPool,
    query: &CatalogQuery,
) -> Result<(Vec<ListingView>, Option<CatalogCursor>), sqlx::Error> {
    let pattern = query
        .text
        .as_deref()
        .map(|t| format!("%{}%", escape_like(t)));
    let mut items: Vec<ListingView> = sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM catalog.listings
          WHERE status = $1
            AND ($2::text IS NULL OR title ILIKE $2 OR description ILIKE $2)
            AND ($3::timestamptz IS NULL OR (created_at, listing_id) < ($3, $4))
          ORDER BY created_at DESC, listing_id DESC
          LIMIT $5"
    ))
    .bind(&query.status)
    .bind(pattern)
    .bind(query.after.map(|c| c.created_at))
    .bind(query.after.map(|c| c.listing_id))
    .bind(query.limit + 1)
    .fetch_all(pool)
    .await?;
    let next = if items.len() as i64 > query.limit {
        items.truncate(query.limit as usize);
        items.last().map(|l| CatalogCursor {
            created_at: l.created_at,
            listing_id: l.listing_id,
        })
    } else {
        None
    };
    Ok((items, next))
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
