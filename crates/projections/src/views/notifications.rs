//! In-app notifications: every status change of a request tells the other party (both, when
//! Carrot itself made the change), and money moving tells whoever receives it. Kept by the
//! `notifications` subscriber; each batch ends with `NOTIFY carrot_notifications` naming the
//! users it wrote to, so live streams (server-sent events) push within milliseconds.
//!
//! A notification's id is its event's place in the log (`<transaction_id>.<global_position>`),
//! so it orders like the log and is the same after a rebuild.

use std::collections::BTreeSet;

use async_trait::async_trait;
use carrot_domain::payment::{MovementKind, Payment, PaymentEvent};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestEvent as E};
use carrot_domain::trade::Party;
use carrot_domain::{Actor, Trade, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;

use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::{Checkpoint, StoredEvent};
use crate::postgres::Db;
use crate::views::fold;

/// The subscriber that keeps the notifications.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotificationsProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const NOTIFICATIONS: &str = "notifications";

/// The channel a batch notifies on; the payload is the id of a user who was written to.
pub const CHANNEL: &str = "carrot_notifications";

#[async_trait]
impl Subscriber for NotificationsProjection {
    fn name(&self) -> &'static str {
        NOTIFICATIONS
    }

    // Rows are keyed by their event's place in the log and never replaced (a replay
    // only wakes streams, which then find nothing new).
    fn replays_idempotently(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[PurchaseRequest::TYPE, Payment::TYPE])
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let mut rows = Vec::new();
        for (stored, event) in fold::decode::<E>(events, PurchaseRequest::TYPE)? {
            rows.extend(notify_request(stored, &event)?);
        }
        for (stored, event) in fold::decode::<PaymentEvent>(events, Payment::TYPE)? {
            rows.extend(notify_payment(stored, &event)?);
        }
        if rows.is_empty() {
            return Ok(());
        }
        let users: BTreeSet<String> = rows.iter().map(|r| r.user_id.to_string()).collect();
        fold::upsert(tx, "notifications", None, &rows).await?;
        sqlx::query("SELECT pg_notify($1, u) FROM unnest($2::text[]) u")
            .bind(CHANNEL)
            .bind(users.into_iter().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

/// A row of `notifications.notifications`.
#[derive(Debug, Clone, Serialize)]
struct Row {
    user_id: Uuid,
    transaction_id: i64,
    global_position: i64,
    request_id: Uuid,
    kind: &'static str,
    status: &'static str,
    message: &'static str,
    at: DateTime<Utc>,
}

/// Who hears of a change, and what.
struct Notice {
    to: Vec<UserId>,
    kind: &'static str,
    status: &'static str,
    message: &'static str,
    at: DateTime<Utc>,
}

fn rows(stored: &StoredEvent, trade: &Trade, notice: Notice) -> Result<Vec<Row>, ApplyError> {
    let transaction_id = i64::try_from(stored.checkpoint.transaction_id)
        .map_err(|e| ApplyError::payload(stored, serde::de::Error::custom(e)))?;
    Ok(notice
        .to
        .into_iter()
        .map(|user| Row {
            user_id: user.as_uuid(),
            transaction_id,
            global_position: stored.checkpoint.global_position,
            request_id: trade.request_id.as_uuid(),
            kind: notice.kind,
            status: notice.status,
            message: notice.message,
            at: notice.at,
        })
        .collect())
}

fn notify_request(stored: &StoredEvent, event: &E) -> Result<Vec<Row>, ApplyError> {
    let trade = event.trade();
    let (buyer, seller, both) = (
        vec![trade.buyer_id],
        vec![trade.seller_id],
        vec![trade.buyer_id, trade.seller_id],
    );
    let notice = |to, kind, status, message, at| Notice {
        to,
        kind,
        status,
        message,
        at,
    };
    let notice = match event {
        E::PurchaseRequested { requested_at, .. } => notice(
            seller,
            "request_received",
            "requested",
            "A buyer requested your listing and paid; the money is held until the trade ends.",
            *requested_at,
        ),
        // Unpaid requests never reach the seller.
        E::PurchaseRequestPaymentFailed { failed_at, .. } => notice(
            buyer,
            "payment_failed",
            "payment_failed",
            "Your payment was declined, so your request was not sent.",
            *failed_at,
        ),
        E::PurchaseRequestAccepted { accepted_at, .. } => notice(
            buyer,
            "request_accepted",
            "accepted",
            "The seller accepted your request.",
            *accepted_at,
        ),
        E::PurchaseRequestRejected {
            by, rejected_at, ..
        } => notice(
            buyer,
            "request_rejected",
            "rejected",
            match by {
                Actor::System => {
                    "Your request ended: the listing is no longer available. You will be refunded."
                }
                Actor::User(_) => "The seller rejected your request. You will be refunded.",
            },
            *rejected_at,
        ),
        E::PurchaseRequestCompleted {
            automatic,
            completed_at,
            ..
        } => notice(
            if *automatic { both } else { seller },
            "request_completed",
            "completed",
            if *automatic {
                "The trade was completed automatically after the completion deadline."
            } else {
                "The buyer completed the trade; the payment goes to you."
            },
            *completed_at,
        ),
        E::PurchaseRequestCancelled {
            by, cancelled_at, ..
        } => match by {
            Party::Buyer => notice(
                seller,
                "request_cancelled",
                "cancelled",
                "The buyer cancelled their request.",
                *cancelled_at,
            ),
            Party::Seller => notice(
                buyer,
                "request_cancelled",
                "cancelled",
                "The seller cancelled the trade. You will be refunded.",
                *cancelled_at,
            ),
        },
        E::PurchaseRequestExpired { expired_at, .. } => notice(
            both,
            "request_expired",
            "expired",
            "The request expired unanswered; the buyer will be refunded.",
            *expired_at,
        ),
        E::PurchaseRequestAbandoned { abandoned_at, .. } => notice(
            buyer,
            "request_expired",
            "expired",
            "Your request could not be completed after a payment problem. You will be refunded.",
            *abandoned_at,
        ),
    };
    rows(stored, trade, notice)
}

fn notify_payment(stored: &StoredEvent, event: &PaymentEvent) -> Result<Vec<Row>, ApplyError> {
    let notice = match event {
        PaymentEvent::PaymentRefunded {
            trade, refunded_at, ..
        } => (
            trade,
            Notice {
                to: vec![trade.buyer_id],
                kind: "payment_refunded",
                status: "refunded",
                message: "Your payment was refunded.",
                at: *refunded_at,
            },
        ),
        PaymentEvent::PaymentPaidOut {
            trade, paid_out_at, ..
        } => (
            trade,
            Notice {
                to: vec![trade.seller_id],
                kind: "payment_paid_out",
                status: "paid_out",
                message: "The buyer's payment was paid out to you.",
                at: *paid_out_at,
            },
        ),
        PaymentEvent::PaymentSettledOutside {
            trade,
            kind,
            settled_at,
            ..
        } => (
            trade,
            match kind {
                MovementKind::Payout => Notice {
                    to: vec![trade.seller_id],
                    kind: "payment_paid_out",
                    status: "paid_out",
                    message: "The buyer's payment was paid out to you outside Carrot.",
                    at: *settled_at,
                },
                _ => Notice {
                    to: vec![trade.buyer_id],
                    kind: "payment_refunded",
                    status: "refunded",
                    message: "Your payment was refunded outside Carrot.",
                    at: *settled_at,
                },
            },
        ),
        _ => return Ok(Vec::new()),
    };
    rows(stored, notice.0, notice.1)
}

/// A notification as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// Its id: the event's place in the log, `<transaction_id>.<global_position>`.
    pub id: String,
    /// The trade.
    pub request_id: Uuid,
    /// What happened (`request_accepted`, `payment_refunded`...).
    pub kind: String,
    /// The request's or payment's status after it.
    pub status: String,
    /// For people.
    pub message: String,
    /// When.
    pub at: DateTime<Utc>,
}

type NotificationRow = (i64, i64, Uuid, String, String, String, DateTime<Utc>);

fn view_of((tx, pos, request_id, kind, status, message, at): NotificationRow) -> NotificationView {
    NotificationView {
        id: Checkpoint {
            transaction_id: u64::try_from(tx).unwrap_or_default(),
            global_position: pos,
        }
        .to_string(),
        request_id,
        kind,
        status,
        message,
        at,
    }
}

fn bound(id: Option<Checkpoint>) -> (Option<i64>, Option<i64>) {
    match id {
        Some(c) => (
            i64::try_from(c.transaction_id).ok(),
            Some(c.global_position),
        ),
        None => (None, None),
    }
}

/// A user's notifications, newest first, before `before` (a notification id), at most `limit`.
#[tracing::instrument(skip(pool))]
pub async fn newest(
    pool: &Db,
    user: UserId,
    before: Option<Checkpoint>,
    limit: i64,
) -> Result<Vec<NotificationView>, sqlx::Error> {
    let (tx, pos) = bound(before);
    let rows: Vec<NotificationRow> = sqlx::query_as(
        "SELECT transaction_id, global_position, request_id, kind, status, message, at
           FROM notifications.notifications
          WHERE user_id = $1 AND ($2::bigint IS NULL OR (transaction_id, global_position) < ($2, $3))
          ORDER BY transaction_id DESC, global_position DESC
          LIMIT $4",
    )
    .bind(user.as_uuid())
    .bind(tx)
    .bind(pos)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view_of).collect())
}

/// A user's notifications after `after` (oldest first): what a live stream sends next.
#[tracing::instrument(skip(pool))]
pub async fn since(
    pool: &Db,
    user: UserId,
    after: Option<Checkpoint>,
    limit: i64,
) -> Result<Vec<NotificationView>, sqlx::Error> {
    let (tx, pos) = bound(after);
    let rows: Vec<NotificationRow> = sqlx::query_as(
        "SELECT transaction_id, global_position, request_id, kind, status, message, at
           FROM notifications.notifications
          WHERE user_id = $1 AND ($2::bigint IS NULL OR (transaction_id, global_position) > ($2, $3))
          ORDER BY transaction_id, global_position
          LIMIT $4",
    )
    .bind(user.as_uuid())
    .bind(tx)
    .bind(pos)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(view_of).collect())
}

/// The newest notification id of a user, where a new live stream starts.
pub async fn latest_id(pool: &Db, user: UserId) -> Result<Option<Checkpoint>, sqlx::Error> {
    Ok(newest(pool, user, None, 1)
        .await?
        .first()
        .and_then(|n| n.id.parse().ok()))
}
