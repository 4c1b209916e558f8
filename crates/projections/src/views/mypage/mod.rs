//! MyPage: each user's purchases (their requests, with status and payment status), sales
//! (their listings with the requests on them) and the summary of both and of money (held,
//! refunded, paid out, earned), kept as running totals (`tallies.rs`). Kept by the
//! `mypage` subscriber in the `mypage` schema.
//!
//! A request that never reached its seller (its payment was declined, or it was abandoned
//! after a capture whose answer was lost) is its buyer's alone. This file folds the events
//! into rows; `queries.rs` reads them.

use async_trait::async_trait;
use carrot_domain::listing::{Listing, ListingEvent};
use carrot_domain::payment::{MovementKind, Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent as E};
use carrot_domain::{PaymentId, Price, Trade};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

mod open;
mod queries;
mod tallies;

pub use crate::views::page::PageCursor;
pub use open::{available_listings, open_trades, OpenTrade};
pub use queries::{
    purchases, request_for, requests_of, sales, summary, Counts, Money, PaymentSummary,
    RequestView, SaleView, Summary, REQUESTS_PER_SALE,
};

use crate::log::subscriber::{ApplyError, Filling, Subscriber};
use crate::log::StoredEvent;
use crate::replay::Shadow;
use crate::views::erasure::{self, Part};
use crate::views::fold::{self, Fold, KeyedRow};

/// The subscriber that keeps MyPage.
#[derive(Debug, Clone, Copy)]
pub struct MyPageProjection {
    /// How many totals a rebuild keeps moving in memory before it writes them aside.
    kept_totals: usize,
}

impl Default for MyPageProjection {
    fn default() -> Self {
        MyPageProjection::keeping(tallies::KEPT_TOTALS)
    }
}

impl MyPageProjection {
    /// One whose rebuilds write the totals aside whenever `totals` of them are moving, and
    /// at the end (a test's small number makes a rebuild write aside at every batch).
    pub fn keeping(totals: usize) -> Self {
        MyPageProjection {
            kept_totals: totals,
        }
    }
}

/// The subscriber's name, its checkpoint row and its schema.
pub const MYPAGE: &str = "mypage";

#[async_trait]
impl Subscriber for MyPageProjection {
    fn name(&self) -> &'static str {
        MYPAGE
    }

    // Rows carry version guards (`VERSIONS`): replaying old events changes nothing.
    fn replays_idempotently(&self) -> bool {
        true
    }

    // A rebuild adds the totals' moves as rows and sums them at the end (tallies.rs).
    fn unique_after_fill(&self) -> &'static [&'static str] {
        &["tallies_pkey"]
    }

    // A rebuild writes the totals aside (tallies.rs).
    fn filling(&self, shadow: &Shadow) -> Option<Box<dyn Filling>> {
        Some(Box::new(tallies::KeptMoves::new(shadow, self.kept_totals)))
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let mut deltas = tallies::Deltas::default();
        apply_rows(tx, events, &mut deltas, Loading::Every).await?;
        deltas.store(tx).await
    }
}

/// Which of the rows a batch touches it loads first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loading {
    /// Every one, those its events create too: in a replay over the live view a "new" row
    /// may be stored already, and the totals must know what each write replaces.
    Every,
    /// Only those created before the batch: a rebuild's shadow holds exactly what the log
    /// made up to the batch, so a row the batch creates is not there yet. At ten million
    /// events nearly every trade begins and ends within one batch, and probing for its rows
    /// cost the fill a seventh of its time.
    CreatedBefore,
}

impl Loading {
    /// The keys to load, from each touched key and whether its event creates the row.
    fn keys(self, touched: impl IntoIterator<Item = (Uuid, bool)>) -> Vec<Uuid> {
        match self {
            Loading::Every => touched.into_iter().map(|(key, _)| key).collect(),
            Loading::CreatedBefore => fold::to_load(touched),
        }
    }
}

/// Writes a batch's rows, and adds the totals' moves they make to `deltas` (written by the
/// caller: erasing a closed account's fields moves no total).
async fn apply_rows(
    tx: &mut PgConnection,
    events: &[StoredEvent],
    deltas: &mut tallies::Deltas,
    loading: Loading,
) -> Result<(), ApplyError> {
    for part in erasure::cut_at_closings(events)? {
        match part {
            Part::Events(events) => apply_trades(tx, events, deltas, loading).await?,
            Part::Closed(user) => erasure::mypage(tx, user).await?,
        }
    }
    Ok(())
}

/// Folds a batch of listing, request and payment events into the rows they touch.
async fn apply_trades(
    tx: &mut PgConnection,
    events: &[StoredEvent],
    deltas: &mut tallies::Deltas,
    loading: Loading,
) -> Result<(), ApplyError> {
    let listing_events = fold::decode::<ListingEvent>(events, Listing::TYPE)?;
    if !listing_events.is_empty() {
        let keys = loading.keys(listing_events.iter().map(|(_, e)| {
            let creates = matches!(e, ListingEvent::ListingRegistered { .. });
            (e.listing_id().as_uuid(), creates)
        }));
        let mut listings = Fold::<ListingRow>::load_tracked(tx, keys).await?;
        for (stored, event) in listing_events {
            fold_listing(&mut listings, stored.sequence, event);
        }
        deltas.add(&listings);
        listings.store(tx).await?;
    }
    let request_events = fold::decode::<E>(events, PurchaseRequest::TYPE)?;
    let payment_events = fold::decode::<PaymentEvent>(events, Payment::TYPE)?;
    if request_events.is_empty() && payment_events.is_empty() {
        return Ok(());
    }
    // Captures and declines come before their request and change no row: only
    // settlements of payments touch requests.
    let creates = |e: &E| {
        matches!(
            e,
            E::PurchaseRequested { .. }
                | E::PurchaseRequestPaymentFailed { .. }
                | E::PurchaseRequestAbandoned { .. }
        )
    };
    let keys = loading.keys(
        request_events
            .iter()
            .map(|(_, e)| (e.trade().request_id.as_uuid(), creates(e)))
            .chain(
                payment_events
                    .iter()
                    .filter(|(_, e)| {
                        matches!(
                            e,
                            PaymentEvent::PaymentRefunded { .. }
                                | PaymentEvent::PaymentPaidOut { .. }
                                | PaymentEvent::PaymentSettledOutside { .. }
                        )
                    })
                    .map(|(_, e)| (e.trade().request_id.as_uuid(), false)),
            ),
    );
    let mut requests = Fold::<RequestRow>::load_tracked(tx, keys).await?;
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
                fold_request(&mut requests, stored, event);
            }
        } else if let Some((stored, event)) = payment_events.next() {
            fold_payment(&mut requests, stored.sequence, event);
        }
    }
    deltas.add(&requests);
    requests.store(tx).await?;
    Ok(())
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
    const VERSIONS: &'static [&'static str] = &["version"];
    fn key(&self) -> Uuid {
        self.listing_id
    }
    fn versions(&self) -> Vec<i64> {
        vec![self.version]
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
    /// The person who wrote `reason`, when one did (closing their account erases it).
    reason_by: Option<Uuid>,
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
    const VERSIONS: &'static [&'static str] = &["version", "payment_version"];
    fn key(&self) -> Uuid {
        self.request_id
    }
    fn versions(&self) -> Vec<i64> {
        vec![self.version, self.payment_version]
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
        changes, edited_at, ..
    } = event
    {
        if let Some(title) = changes.title {
            row.title = title.to.as_str().to_owned();
        }
        if let Some(price) = changes.price {
            row.price = price.to.as_krw();
        }
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
        reason_by: None,
        payment_id: payment_id.as_uuid(),
        payment_status: payment_status.to_owned(),
        seen_by_seller: status == "requested",
        created_at: at,
        updated_at: at,
        version,
        payment_version: 0,
    }
}

fn fold_request(requests: &mut Fold<RequestRow>, stored: &StoredEvent, event: E) {
    let version = stored.sequence;
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
        row.reason_by = erasure::reason_author(stored);
    }
}

/// Only settlements change a request's payment status: captures and declines come before
/// the request exists and are implied by how it was created.
fn fold_payment(requests: &mut Fold<RequestRow>, version: i64, event: PaymentEvent) {
    let (status, at) = match &event {
        PaymentEvent::PaymentRefunded { refunded_at, .. } => ("refunded", *refunded_at),
        PaymentEvent::PaymentPaidOut { paid_out_at, .. } => ("paid_out", *paid_out_at),
        PaymentEvent::PaymentSettledOutside {
            kind, settled_at, ..
        } => match kind {
            MovementKind::Payout => ("paid_out", *settled_at),
            _ => ("refunded", *settled_at),
        },
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
