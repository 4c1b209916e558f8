//! The saga's timer: fires due deadlines (in the injectable clock's time: the database's in
//! production, so one worker's clock stepping forward fires nothing early) into the outbox.
//!
//! A deadline that calls for nothing (the trade moved on) is only dropped; one whose
//! command cannot be built from what the saga knows is dropped with a warning, never
//! silently.
//!
//! A deadline is taken (deleted) and its command decided in one transaction, so any number
//! of timers may run. What it decides depends on the saga's state at that moment; deciding
//! on a state that is a little behind is safe, because a command the trade has overtaken is
//! refused by its aggregate and counted moot.

use std::sync::Arc;
use std::time::Duration;

use carrot_domain::{Clock, ListingId, PaymentId, Price, RequestId, Trade, UserId};
use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::SagaCommand;
use super::outbox;
use crate::log::signals::Shutdown;
use crate::postgres::Db;

/// Fires deadlines.
#[derive(Clone)]
pub struct Timer {
    pool: Db,
    clock: Arc<dyn Clock>,
}

/// Deadlines taken per transaction.
const BATCH: i64 = 200;

impl Timer {
    /// A timer over `pool`, telling time by `clock`.
    pub fn new(pool: Db, clock: Arc<dyn Clock>) -> Self {
        Timer { pool, clock }
    }

    /// Fires one batch of due deadlines; returns how many.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The saga's tables are named unqualified, as in its batches.
        sqlx::query("SELECT set_config('search_path', 'settlement, public', true)")
            .execute(&mut *tx)
            .await?;
        let due: Vec<(Uuid, String)> = sqlx::query_as(
            "DELETE FROM deadlines d
              USING (SELECT request_id, kind FROM deadlines
                      WHERE due_at <= $1 ORDER BY due_at LIMIT $2
                      FOR UPDATE SKIP LOCKED) due
              WHERE d.request_id = due.request_id AND d.kind = due.kind
             RETURNING d.request_id, d.kind",
        )
        .bind(self.clock.now())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        for (request_id, kind) in &due {
            let request_id = RequestId::from_uuid(*request_id);
            if let Some(command) = decide(&mut tx, request_id, kind).await? {
                outbox::enqueue(&mut tx, &command).await?;
            }
        }
        tx.commit().await?;
        Ok(due.len())
    }

    /// Fires every due deadline. For tests and the CLI.
    pub async fn fire_due(&self) -> Result<usize, sqlx::Error> {
        let mut total = 0;
        loop {
            match self.run_once().await? {
                0 => return Ok(total),
                n => total += n,
            }
        }
    }

    /// Ticks every `tick` until `shutdown`.
    pub async fn run(self, tick: Duration, mut shutdown: Shutdown) {
        while !shutdown.is_triggered() {
            if let Err(e) = self.fire_due().await {
                tracing::error!(error = %e, "saga timer failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(tick) => {}
                () = shutdown.wait() => {}
            }
        }
    }
}

/// The command a due deadline calls for, given the saga's state now.
async fn decide(
    tx: &mut PgConnection,
    request_id: RequestId,
    kind: &str,
) -> Result<Option<SagaCommand>, sqlx::Error> {
    let trade: Option<(String, Uuid, Option<String>, Option<Uuid>)> = sqlx::query_as(
        "SELECT t.status, t.listing_id, l.status, l.holder
           FROM trades t LEFT JOIN listings l USING (listing_id)
          WHERE t.request_id = $1",
    )
    .bind(request_id.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match (kind, trade) {
        ("expire", Some((status, ..))) if status == "requested" => {
            Some(SagaCommand::ExpireRequest { request_id })
        }
        ("complete", Some((status, ..))) if status == "accepted" => {
            Some(SagaCommand::CompleteRequest { request_id })
        }
        ("check_listing", Some((status, listing, listing_status, holder)))
            if listing_status.as_deref() == Some("reserved")
                && holder == Some(request_id.as_uuid()) =>
        {
            let listing_id = ListingId::from_uuid(listing);
            match status.as_str() {
                "requested" => Some(SagaCommand::AcceptRequest { request_id }),
                "completed" => Some(SagaCommand::MarkListingSold {
                    listing_id,
                    request_id,
                }),
                "rejected" | "cancelled" | "expired" => Some(SagaCommand::ReleaseListing {
                    listing_id,
                    request_id,
                }),
                _ => None,
            }
        }
        ("check_placement", None) => unplaced(tx, request_id).await?,
        ("reconcile", _) => {
            let unknown: Option<Uuid> = sqlx::query_scalar(
                "SELECT payment_id FROM payments
                  WHERE request_id = $1 AND status IN ('started', 'unknown')",
            )
            .bind(request_id.as_uuid())
            .fetch_optional(&mut *tx)
            .await?;
            unknown.map(|payment| SagaCommand::ReconcileCapture {
                request_id,
                payment_id: PaymentId::from_uuid(payment),
            })
        }
        _ => None,
    })
}

type PaymentRow = (Uuid, Uuid, Uuid, Uuid, i64, String, Option<String>);

/// A payment with an outcome whose request was never recorded: abandon it (captured: it
/// will be refunded) or record its failure (declined: visible on MyPage).
async fn unplaced(
    tx: &mut PgConnection,
    request_id: RequestId,
) -> Result<Option<SagaCommand>, sqlx::Error> {
    let row: Option<PaymentRow> = sqlx::query_as(
        "SELECT payment_id, listing_id, buyer_id, seller_id, amount, status, reason
           FROM payments WHERE request_id = $1",
    )
    .bind(request_id.as_uuid())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((payment, listing, buyer, seller, amount, status, reason)) = row else {
        return Ok(None);
    };
    let trade = Trade {
        request_id,
        listing_id: ListingId::from_uuid(listing),
        buyer_id: UserId::from_uuid(buyer),
        seller_id: UserId::from_uuid(seller),
    };
    let payment_id = PaymentId::from_uuid(payment);
    let price = match Price::parse(amount) {
        Ok(price) => price,
        Err(e) => {
            tracing::warn!(%request_id, %payment, amount, error = %e, "a payment with no request cannot be settled by the saga: its amount is not a price; an operator must look");
            return Ok(None);
        }
    };
    Ok(match status.as_str() {
        "captured" => Some(SagaCommand::AbandonRequest {
            trade,
            price,
            payment_id,
        }),
        "failed" => Some(SagaCommand::RecordPaymentFailure {
            trade,
            price,
            payment_id,
            reason: reason.unwrap_or_else(|| "declined".into()),
        }),
        // Its outcome is still unknown (the reconcile deadline settles it first), or no
        // money is held any more.
        "started" | "unknown" | "aborted" | "refunded" | "paid_out" => None,
        other => {
            tracing::warn!(%request_id, %payment, status = other, "a payment with no request is in a state the saga cannot act on; an operator must look");
            None
        }
    })
}
