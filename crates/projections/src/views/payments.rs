//! The payments view: each payment once its capture has an outcome, with its trade, for
//! `GET /payments/{id}`. Kept by the `payments` subscriber in the `payments` schema.
//! A capture started, aborted or whose outcome is still unknown is not shown: no request
//! was recorded for it, and no client was given its id. A capture found only at the
//! gateway (reconciliation) is shown to its buyer, with nil request, listing and seller.

use async_trait::async_trait;
use carrot_domain::payment::{MovementKind, Payment, PaymentEvent};
use carrot_domain::{Money, PaymentId, Trade, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::StoredEvent;
use crate::postgres::Db;
use crate::views::fold::{self, Fold, KeyedRow};

/// The subscriber that keeps the payments view.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaymentsProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const PAYMENTS: &str = "payments";

#[async_trait]
impl Subscriber for PaymentsProjection {
    fn name(&self) -> &'static str {
        PAYMENTS
    }

    // Rows carry a version guard (`VERSIONS`): replaying old events changes nothing.
    fn replays_idempotently(&self) -> bool {
        true
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Payment::TYPE])
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let events = fold::decode::<PaymentEvent>(events, Payment::TYPE)?;
        if events.is_empty() {
            return Ok(());
        }
        let keys = fold::to_load(events.iter().map(|(_, e)| {
            let creates = matches!(
                e,
                PaymentEvent::PaymentCaptured { .. }
                    | PaymentEvent::PaymentDeclined { .. }
                    | PaymentEvent::PaymentCaptureDiscovered { .. }
            );
            (e.payment_id().as_uuid(), creates)
        }));
        let mut payments = Fold::<PaymentRow>::load(tx, keys).await?;
        for (stored, event) in events {
            fold(&mut payments, stored.sequence, event);
        }
        payments.store(tx).await
    }
}

/// A row of `payments.payments`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
struct PaymentRow {
    payment_id: Uuid,
    request_id: Uuid,
    listing_id: Uuid,
    buyer_id: Uuid,
    seller_id: Uuid,
    amount: i64,
    status: String,
    reason: Option<String>,
    captured_at: Option<DateTime<Utc>>,
    settled_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
    /// The payment's sequence of the last event applied.
    version: i64,
}

impl KeyedRow for PaymentRow {
    const TABLE: &'static str = "payments";
    const KEY: &'static str = "payment_id";
    const VERSIONS: &'static [&'static str] = &["version"];
    fn key(&self) -> Uuid {
        self.payment_id
    }
}

fn fold(payments: &mut Fold<PaymentRow>, version: i64, event: PaymentEvent) {
    let row = |payment_id: PaymentId, trade: Trade, amount: Money, status: &str, at| PaymentRow {
        payment_id: payment_id.as_uuid(),
        request_id: trade.request_id.as_uuid(),
        listing_id: trade.listing_id.as_uuid(),
        buyer_id: trade.buyer_id.as_uuid(),
        seller_id: trade.seller_id.as_uuid(),
        amount: amount.as_krw(),
        status: status.to_owned(),
        reason: None,
        captured_at: None,
        settled_at: None,
        updated_at: at,
        version,
    };
    match event {
        // A capture has an outcome: the payment appears (a reconciled one, replacing nothing).
        PaymentEvent::PaymentCaptured {
            payment_id,
            trade,
            amount,
            captured_at,
            ..
        } => payments.create(PaymentRow {
            captured_at: Some(captured_at),
            ..row(payment_id, trade, amount, "captured", captured_at)
        }),
        PaymentEvent::PaymentDeclined {
            payment_id,
            trade,
            amount,
            reason,
            declined_at,
        } => payments.create(PaymentRow {
            reason: Some(reason),
            ..row(payment_id, trade, amount, "failed", declined_at)
        }),
        PaymentEvent::PaymentCaptureDiscovered {
            payment_id,
            trade,
            amount,
            discovered_at,
            ..
        } => payments.create(PaymentRow {
            captured_at: Some(discovered_at),
            ..row(payment_id, trade, amount, "captured", discovered_at)
        }),
        PaymentEvent::PaymentCaptureStarted { .. }
        | PaymentEvent::PaymentCaptureAborted { .. }
        | PaymentEvent::PaymentCaptureTimedOut { .. } => {}
        PaymentEvent::PaymentRefunded {
            payment_id,
            refunded_at: at,
            ..
        } => apply_newer(payments, payment_id, version, at, |row| {
            row.status = "refunded".to_owned();
            row.settled_at = Some(at);
        }),
        PaymentEvent::PaymentPaidOut {
            payment_id,
            paid_out_at: at,
            ..
        } => apply_newer(payments, payment_id, version, at, |row| {
            row.status = "paid_out".to_owned();
            row.settled_at = Some(at);
        }),
        // Still held; the reason says why and waits for an operator.
        PaymentEvent::PaymentTransferDeclined {
            payment_id,
            kind,
            reason,
            declined_at: at,
            ..
        } => apply_newer(payments, payment_id, version, at, |row| {
            row.reason = Some(format!("{} declined: {reason}", kind.name()));
        }),
        PaymentEvent::PaymentTransferRetried {
            payment_id,
            retried_at: at,
            ..
        } => apply_newer(payments, payment_id, version, at, |row| row.reason = None),
        PaymentEvent::PaymentSettledOutside {
            payment_id,
            kind,
            reference,
            settled_at: at,
            ..
        } => apply_newer(payments, payment_id, version, at, |row| {
            row.status = match kind {
                MovementKind::Payout => "paid_out",
                _ => "refunded",
            }
            .to_owned();
            row.reason = Some(format!("settled outside Carrot: {reference}"));
            row.settled_at = Some(at);
        }),
    }
}

/// Changes an existing payment's row with an event at `version`, unless the row already
/// reflects that event or a later one (a replay over the live view).
fn apply_newer(
    payments: &mut Fold<PaymentRow>,
    payment_id: PaymentId,
    version: i64,
    at: DateTime<Utc>,
    change: impl FnOnce(&mut PaymentRow),
) {
    if let Some(row) = payments
        .change(payment_id.as_uuid())
        .filter(|row| row.version < version)
    {
        change(row);
        row.updated_at = at;
        row.version = version;
    }
}

/// A payment as `GET /payments/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct PaymentView {
    /// The payment.
    pub payment_id: Uuid,
    /// Its purchase request.
    pub request_id: Uuid,
    /// The listing.
    pub listing_id: Uuid,
    /// Who pays.
    pub buyer_id: Uuid,
    /// Who is paid, once completed.
    pub seller_id: Uuid,
    /// The amount in KRW.
    pub amount: i64,
    /// Its status.
    #[schema(value_type = crate::views::statuses::PaymentStatus)]
    pub status: String,
    /// Why it failed, why its refund or payout waits (declined by the gateway), or how it
    /// was settled outside Carrot.
    pub reason: Option<String>,
    /// When the money was captured.
    pub captured_at: Option<DateTime<Utc>>,
    /// When it was refunded or paid out.
    pub settled_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// The columns of a [`PaymentView`].
pub(crate) const PAYMENT_COLUMNS: &str = "payment_id, request_id, listing_id, buyer_id, seller_id,
    amount, status, reason, captured_at, settled_at, updated_at";

/// A payment by id, if `reader` is its buyer or seller: anyone else learns nothing.
#[tracing::instrument(skip(pool))]
pub async fn payment_for(
    pool: &Db,
    id: PaymentId,
    reader: UserId,
) -> Result<Option<PaymentView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments.payments
          WHERE payment_id = $1 AND $2 IN (buyer_id, seller_id)"
    ))
    .bind(id.as_uuid())
    .bind(reader.as_uuid())
    .fetch_optional(pool)
    .await
}
