//! The payments view: each payment once its capture has an outcome, with its trade, for
//! `GET /payments/{id}`. Kept by the `payments` subscriber in the `payments` schema.
//! A capture whose outcome is still unknown is not shown: no request was recorded for it,
//! and no client was given its id.

use async_trait::async_trait;
use carrot_domain::payment::{Payment, PaymentEvent};
use carrot_domain::{Money, PaymentId, Trade, UserId};
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runner::{ApplyError, Subscriber};

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

    async fn apply(&self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ApplyError> {
        if event.aggregate_type != Payment::TYPE {
            return Ok(());
        }
        let version = event.sequence;
        match event.decode::<PaymentEvent>()? {
            PaymentEvent::PaymentCaptured {
                payment_id,
                trade,
                amount,
                captured_at,
                ..
            } => {
                let row = Outcome::new(payment_id, trade, amount, "captured", None);
                row.upsert(tx, Some(captured_at), captured_at, version)
                    .await?;
            }
            PaymentEvent::PaymentDeclined {
                payment_id,
                trade,
                amount,
                reason,
                declined_at,
            } => {
                let row = Outcome::new(payment_id, trade, amount, "failed", Some(reason));
                row.upsert(tx, None, declined_at, version).await?;
            }
            PaymentEvent::PaymentCaptureTimedOut { .. } => {}
            PaymentEvent::PaymentRefunded {
                payment_id,
                refunded_at: at,
                ..
            }
            | PaymentEvent::PaymentPaidOut {
                payment_id,
                paid_out_at: at,
                ..
            } => {
                let status = if event.event_type == "PaymentRefunded" {
                    "refunded"
                } else {
                    "paid_out"
                };
                sqlx::query(
                    "UPDATE payments SET status = $2, settled_at = $3, updated_at = $3,
                                         version = $4
                      WHERE payment_id = $1 AND version < $4",
                )
                .bind(payment_id.as_uuid())
                .bind(status)
                .bind(at)
                .bind(version)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

/// A capture's outcome, as first written to the view.
struct Outcome {
    payment_id: PaymentId,
    trade: Trade,
    amount: Money,
    status: &'static str,
    reason: Option<String>,
}

impl Outcome {
    fn new(
        payment_id: PaymentId,
        trade: Trade,
        amount: Money,
        status: &'static str,
        reason: Option<String>,
    ) -> Self {
        Outcome {
            payment_id,
            trade,
            amount,
            status,
            reason,
        }
    }

    async fn upsert(
        &self,
        tx: &mut PgConnection,
        captured_at: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
        version: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO payments (payment_id, request_id, listing_id, buyer_id, seller_id,
                                   amount, status, reason, captured_at, updated_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (payment_id) DO UPDATE
                SET status = $7, reason = $8, captured_at = $9, updated_at = $10, version = $11
              WHERE payments.version < $11",
        )
        .bind(self.payment_id.as_uuid())
        .bind(self.trade.request_id.as_uuid())
        .bind(self.trade.listing_id.as_uuid())
        .bind(self.trade.buyer_id.as_uuid())
        .bind(self.trade.seller_id.as_uuid())
        .bind(self.amount.as_krw())
        .bind(self.status)
        .bind(&self.reason)
        .bind(captured_at)
        .bind(at)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// A payment as `GET /payments/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
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
    /// `captured` (held in escrow), `refunded`, `paid_out` or `failed`.
    pub status: String,
    /// Why it failed, if it did.
    pub reason: Option<String>,
    /// When the money was captured.
    pub captured_at: Option<DateTime<Utc>>,
    /// When it was refunded or paid out.
    pub settled_at: Option<DateTime<Utc>>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A payment by id, if `reader` is its buyer or seller: anyone else learns nothing.
#[tracing::instrument(skip(pool))]
pub async fn payment_for(
    pool: &PgPool,
    id: PaymentId,
    reader: UserId,
) -> Result<Option<PaymentView>, sqlx::Error> {
    sqlx::query_as(
        "SELECT payment_id, request_id, listing_id, buyer_id, seller_id, amount, status, reason,
                captured_at, settled_at, updated_at
           FROM payments.payments
          WHERE payment_id = $1 AND $2 IN (buyer_id, seller_id)",
    )
    .bind(id.as_uuid())
    .bind(reader.as_uuid())
    .fetch_optional(pool)
    .await
}
