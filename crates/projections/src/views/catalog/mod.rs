//! The catalog view: every listing with its current status, for browsing and for
//! `GET /listings/{id}`. Kept by the `catalog` subscriber in the `catalog` schema; how a
//! text search finds its matches is `search.rs`.

pub mod search;

use crate::views::page::{Page, PageCursor};
use async_trait::async_trait;
use carrot_domain::account::Account;
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::ListingId;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::{ApplyError, Filling, Subscriber};
use crate::log::{Checkpoint, StoredEvent};
use crate::postgres::Db;
use crate::replay::{Aside, Shadow};
use crate::views::aside::{RowsAside, WritesAside};
use crate::views::erasure::{self, Part};
use crate::views::fold::{self, Fold, KeyedRow};

/// The subscriber that keeps the catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct CatalogProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const CATALOG: &str = "catalog";

/// The channel the catalog announces its changes on, at each batch's commit:
/// `<checkpoint>;<listing id>,<listing id>...`, or `<checkpoint>;*` when it changed more
/// than a payload holds (or erased a person's listings). Readers that keep listings in
/// memory (the API's `listing_cache.rs`) drop what it names.
pub const CHANGES: &str = "carrot_catalog";

/// How many ids one announcement names at most, before it says `*` (a payload holds 8,000
/// bytes; an id and its comma, 37).
const NAMED_AT_MOST: usize = 200;

#[async_trait]
impl Subscriber for CatalogProjection {
    fn name(&self) -> &'static str {
        CATALOG
    }

    // Rows carry a version guard (`VERSIONS`): replaying old events changes nothing.
    fn replays_idempotently(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Listing::TYPE, Account::TYPE])
    }

    // A rebuild writes the listings aside (`WritesAside`, below).
    fn filling(&self, shadow: &Shadow) -> Option<Box<dyn Filling>> {
        RowsAside::filling(shadow, *self)
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let mut changed: Option<std::collections::BTreeSet<Uuid>> = Some(Default::default());
        for part in erasure::cut_at_closings(events)? {
            match part {
                Part::Events(events) => {
                    if let Some(ids) = changed.as_mut() {
                        ids.extend(
                            events
                                .iter()
                                .filter(|e| e.aggregate_type == Listing::TYPE)
                                .filter_map(|e| Uuid::try_parse(&e.aggregate_id).ok()),
                        );
                    }
                    apply_listings(tx, events).await?
                }
                Part::Closed(user) => {
                    changed = None;
                    erasure::catalog(tx, user).await?
                }
            }
        }
        announce(tx, events.last(), changed).await
    }
}

/// Announces on [`CHANGES`] the listings a batch changed (`None`: any), as of the batch's
/// last event; delivered when the batch commits.
async fn announce(
    tx: &mut PgConnection,
    last: Option<&StoredEvent>,
    changed: Option<std::collections::BTreeSet<Uuid>>,
) -> Result<(), ApplyError> {
    let Some(last) = last else { return Ok(()) };
    let ids = match changed {
        Some(ids) if ids.is_empty() => return Ok(()),
        Some(ids) if ids.len() <= NAMED_AT_MOST => ids
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(","),
        _ => "*".to_owned(),
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES)
        .bind(format!("{};{ids}", last.checkpoint))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn apply_listings(tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
    let Some((events, keys)) = listing_events(events)? else {
        return Ok(());
    };
    fold_listings(tx, events, keys).await?.store(tx).await
}

/// A batch's listing events, decoded, and the keys of the rows they change but do not
/// create (`None`: the batch has none).
#[allow(clippy::type_complexity)]
fn listing_events(
    events: &[StoredEvent],
) -> Result<Option<(Vec<(&StoredEvent, ListingEvent)>, Vec<Uuid>)>, ApplyError> {
    let events = fold::decode::<ListingEvent>(events, Listing::TYPE)?;
    if events.is_empty() {
        return Ok(None);
    }
    let keys = fold::to_load(events.iter().map(|(_, e)| {
        let creates = matches!(e, ListingEvent::ListingRegistered { .. });
        (e.listing_id().as_uuid(), creates)
    }));
    Ok(Some((events, keys)))
}

/// Loads the rows with `keys` and folds `events` into them.
async fn fold_listings(
    tx: &mut PgConnection,
    events: Vec<(&StoredEvent, ListingEvent)>,
    keys: Vec<Uuid>,
) -> Result<Fold<ListingRow>, ApplyError> {
    let mut listings = Fold::<ListingRow>::load(tx, keys).await?;
    for (stored, event) in events {
        fold(&mut listings, stored.sequence, event);
    }
    Ok(listings)
}

/// A rebuild's listings, written aside: a batch's rows are written while the next batch is
/// read and folded (each registration's search keys made). A batch that changes a listing
/// made before it waits for the write under way first. The shadow is no reader's yet, so
/// nothing is announced: the swap announces everything.
#[async_trait]
impl WritesAside for CatalogProjection {
    async fn events(
        &mut self,
        aside: &mut Aside,
        tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        let Some((events, keys)) = listing_events(events)? else {
            return Ok(());
        };
        if !keys.is_empty() {
            aside.written().await?;
        }
        let listings = fold_listings(tx, events, keys).await?;
        aside
            .start(|mut tx| async move {
                listings.store(&mut tx).await?;
                Ok(tx)
            })
            .await
    }

    async fn erase(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError> {
        erasure::catalog(tx, user).await
    }
}

/// A row of `catalog.listings`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
struct ListingRow {
    listing_id: Uuid,
    seller_id: Uuid,
    title: String,
    description: String,
    price: i64,
    category: Option<String>,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The aggregate sequence of the last event applied: an event at or below it is skipped.
    version: i64,
    /// What a text search finds it by ([`search::keys`] of the title and description).
    search_keys: Vec<String>,
}

impl KeyedRow for ListingRow {
    const TABLE: &'static str = "listings";
    const KEY: &'static str = "listing_id";
    const VERSIONS: &'static [&'static str] = &["version"];
    fn key(&self) -> Uuid {
        self.listing_id
    }
}

fn fold(listings: &mut Fold<ListingRow>, version: i64, event: ListingEvent) {
    let id = event.listing_id().as_uuid();
    if let ListingEvent::ListingRegistered {
        listing_id,
        seller_id,
        title,
        description,
        price,
        category,
        registered_at,
    } = event
    {
        listings.create(ListingRow {
            listing_id: listing_id.as_uuid(),
            seller_id: seller_id.as_uuid(),
            search_keys: search::keys(title.as_str(), description.as_str()),
            title: title.as_str().to_owned(),
            description: description.as_str().to_owned(),
            price: price.as_krw(),
            category: category.map(|c| c.as_str().to_owned()),
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
        changes, edited_at, ..
    } = event
    {
        if let Some(title) = changes.title {
            row.title = title.to.as_str().to_owned();
        }
        if let Some(description) = changes.description {
            row.description = description.to.as_str().to_owned();
        }
        if let Some(price) = changes.price {
            row.price = price.to.as_krw();
        }
        row.search_keys = search::keys(&row.title, &row.description);
        row.updated_at = edited_at;
    }
}

/// A listing as the catalog shows it (the `GET /listings/{id}` body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
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
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub price: i64,
    /// Its category, if any.
    pub category: Option<String>,
    /// Its status.
    #[schema(value_type = crate::views::statuses::ListingStatus)]
    pub status: String,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

pub(crate) const VIEW_COLUMNS: &str =
    "listing_id, seller_id, title, description, price, category, status, created_at, updated_at";

/// One listing by id, if the catalog has it.
#[tracing::instrument(skip(pool))]
pub async fn listing_by_id(pool: &Db, id: ListingId) -> Result<Option<ListingView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM catalog.listings WHERE listing_id = $1"
    ))
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
}

/// [`listing_by_id`], with the catalog's checkpoint in the same snapshot: the row is as of
/// that place in the log (for a reader that keeps it, `listing_cache.rs`).
#[tracing::instrument(skip(pool))]
pub async fn listing_as_of(
    pool: &Db,
    id: ListingId,
) -> Result<(Option<ListingView>, Option<Checkpoint>), sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT c.transaction_id::text AS checkpoint_tx, c.global_position AS checkpoint_pos, l.*
           FROM public.subscription_checkpoints c
           LEFT JOIN (SELECT {VIEW_COLUMNS} FROM catalog.listings WHERE listing_id = $1) l ON true
          WHERE c.subscriber = $2"
    ))
    .bind(id.as_uuid())
    .bind(CATALOG)
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok((None, None));
    };
    use sqlx::Row;
    let tx: String = row.try_get("checkpoint_tx")?;
    let checkpoint = Checkpoint {
        transaction_id: tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        global_position: row.try_get("checkpoint_pos")?,
    };
    let listing_id: Option<Uuid> = row.try_get("listing_id")?;
    let listing = match listing_id {
        Some(_) => Some(<ListingView as sqlx::FromRow<_>>::from_row(&row)?),
        None => None,
    };
    Ok((listing, Some(checkpoint)))
}

/// What to list.
#[derive(Debug, Clone)]
pub struct CatalogQuery {
    /// Only listings in this status.
    pub status: String,
    /// The text looked for, in which order, from where.
    pub search: Search,
    /// At most this many items.
    pub limit: i64,
}

/// A catalog query's text filter and order.
#[derive(Debug, Clone)]
pub enum Search {
    /// Newest first, optionally holding a text (a case-insensitive substring of the title
    /// or description), after a cursor.
    Newest {
        /// The text, if any.
        text: Option<String>,
        /// Continue after this cursor.
        after: Option<PageCursor>,
    },
    /// The newest matches of a text, most relevant first ([`search::rank`]).
    Relevance {
        /// The text.
        text: String,
        /// Continue after this cursor.
        after: Option<search::RankedCursor>,
    },
}

/// One page of the catalog and the cursor of the next page if there is one.
#[tracing::instrument(skip(pool))]
pub async fn list(pool: &Db, query: &CatalogQuery) -> Result<Page<ListingView>, sqlx::Error> {
    list_with(pool, query, search::Plan::DEFAULT).await
}

/// [`list`] with a search plan of the caller's (tests walk a few rows, not a thousand).
pub async fn list_with(
    pool: &Db,
    query: &CatalogQuery,
    plan: search::Plan,
) -> Result<Page<ListingView>, sqlx::Error> {
    let status = query.status.as_str();
    match &query.search {
        Search::Newest { text: None, after } => {
            let items: Vec<ListingView> = sqlx::query_as(&format!(
                "SELECT {VIEW_COLUMNS} FROM catalog.listings
                  WHERE status = $1
                    AND ($2::timestamptz IS NULL OR (created_at, listing_id) < ($2, $3))
                  ORDER BY created_at DESC, listing_id DESC
                  LIMIT $4"
            ))
            .bind(status)
            .bind(after.map(|c| c.created_at))
            .bind(after.map(|c| c.id))
            .bind(query.limit + 1)
            .fetch_all(pool)
            .await?;
            Ok(newest_page(items, query.limit))
        }
        Search::Newest {
            text: Some(text),
            after,
        } => {
            let pattern = format!("%{}%", escape_like(text));
            let want = query.limit + 1;
            let items =
                search::newest_matches(pool, status, text, &pattern, *after, want, plan.walk)
                    .await?;
            Ok(newest_page(items, query.limit))
        }
        Search::Relevance { text, after } => {
            let pattern = format!("%{}%", escape_like(text));
            search::ranked_page(pool, status, text, &pattern, *after, query.limit, plan).await
        }
    }
}

fn newest_page(items: Vec<ListingView>, limit: i64) -> Page<ListingView> {
    Page::cut(items, limit, |l| {
        PageCursor::after(l.created_at, l.listing_id).encode()
    })
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
