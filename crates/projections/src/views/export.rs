//! Everything the views and the log hold about one user, for `GET /me/export`: the
//! listings they sell, the requests they made and those made to them, the payments of both,
//! their notifications, and every event of those listings, requests and payments (with
//! others' metadata cut to who and which trade).

use carrot_domain::listing::Listing;
use carrot_domain::metadata::{ACTOR, CORRELATION_ID};
use carrot_domain::payment::Payment;
use carrot_domain::purchase_request::PurchaseRequest;
use carrot_domain::UserId;
use cqrs_es::Aggregate;
use serde::Serialize;
use serde_json::Value;

use crate::log::{events_of_aggregates, EventRecord};
use crate::postgres::Db;
use crate::views::catalog::{ListingView, VIEW_COLUMNS};
use crate::views::mypage::{self, RequestView};
use crate::views::notifications::{self, NotificationView};
use crate::views::payments::{PaymentView, PAYMENT_COLUMNS};

/// What the views and the log hold about one user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Holdings {
    /// The listings they sell, oldest first.
    pub listings: Vec<ListingView>,
    /// The requests they made, each with its payment, oldest first.
    pub purchases: Vec<RequestView>,
    /// The paid requests made for their listings, oldest first.
    pub sales: Vec<RequestView>,
    /// The payments of both, oldest first.
    pub payments: Vec<PaymentView>,
    /// Their notifications, oldest first.
    pub notifications: Vec<NotificationView>,
    /// Every event of those listings, requests and payments, in log order (as
    /// `carrot events --json` prints them).
    pub events: Vec<EventRecord>,
}

/// Metadata the caller may take: all of it for what they did; for what someone else did on
/// their trade (a seller's accept, the saga's refund), who and which trade, but not that
/// person's request ids and idempotency keys.
fn only_theirs(mut record: EventRecord, caller: &str) -> EventRecord {
    if record.metadata.get(ACTOR).and_then(Value::as_str) != Some(caller) {
        if let Some(fields) = record.metadata.as_object_mut() {
            fields.retain(|k, _| k == ACTOR || k == CORRELATION_ID);
        }
    }
    record
}

/// Everything held about `user`.
#[tracing::instrument(skip(pool))]
pub async fn holdings(pool: &Db, user: UserId) -> Result<Holdings, sqlx::Error> {
    let listings: Vec<ListingView> = sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM catalog.listings WHERE seller_id = $1
          ORDER BY created_at, listing_id"
    ))
    .bind(user.as_uuid())
    .fetch_all(pool)
    .await?;
    let (purchases, sales) = mypage::requests_of(pool, user).await?;
    // The payments of the requests they may see: a payment that never reached its seller
    // (declined, abandoned) is its buyer's alone, as `GET /payments/{id}` has it.
    let payment_ids: Vec<uuid::Uuid> = purchases
        .iter()
        .chain(&sales)
        .map(|r| r.payment.payment_id)
        .collect();
    let payments: Vec<PaymentView> = sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments.payments WHERE payment_id = ANY($1)
          ORDER BY captured_at NULLS FIRST, payment_id"
    ))
    .bind(&payment_ids)
    .fetch_all(pool)
    .await?;
    let mut notifications = notifications::newest(pool, user, None, i64::MAX).await?;
    notifications.reverse();
    let aggregates: Vec<(String, String)> = listings
        .iter()
        .map(|l| (Listing::TYPE.to_owned(), l.listing_id.to_string()))
        .chain(purchases.iter().chain(&sales).flat_map(|r| {
            [
                (PurchaseRequest::TYPE.to_owned(), r.request_id.to_string()),
                (Payment::TYPE.to_owned(), r.payment.payment_id.to_string()),
            ]
        }))
        .collect();
    let caller = user.to_string();
    let events = events_of_aggregates(pool, &aggregates)
        .await?
        .iter()
        .map(|event| only_theirs(event.record(), &caller))
        .collect();
    Ok(Holdings {
        listings,
        purchases,
        sales,
        payments,
        notifications,
        events,
    })
}
