//! "A buyer has at most one open request per listing", enforced before any money moves.
//!
//! The slot for (listing, buyer) is claimed with one INSERT; a second concurrent claim hits
//! the primary key. Slots are not released on the happy path: a new request takes a slot
//! over once the request holding it is closed, or was never recorded and the claim is older
//! than `ABANDONED_AFTER` (a crash between claim and record). The takeover is a
//! compare-and-set on the holder, so two takers cannot both win.

use carrot_domain::purchase_request::{PurchaseRequest, RequestStatus};
use carrot_domain::{ListingId, RequestId, UserId};
use uuid::Uuid;

use super::{BoxError, WriteSide};

/// A claim older than this whose request never got recorded is considered abandoned.
const ABANDONED_AFTER_SECONDS: f64 = 30.0;

/// Why a slot was not claimed.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The buyer already has an open request for the listing.
    #[error("you already have an open purchase request for this listing")]
    AlreadyOpen,
    /// The database or the holder's events failed us.
    #[error("claiming a purchase request slot failed: {0}")]
    Failed(BoxError),
}

impl From<sqlx::Error> for SlotError {
    fn from(e: sqlx::Error) -> Self {
        SlotError::Failed(Box::new(e))
    }
}

impl WriteSide {
    /// Claims the slot of (`listing_id`, `buyer_id`) for `request_id`.
    pub async fn claim_slot(
        &self,
        listing_id: ListingId,
        buyer_id: UserId,
        request_id: RequestId,
    ) -> Result<(), SlotError> {
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO purchase_request_slots (listing_id, buyer_id, request_id)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(listing_id.as_uuid())
            .bind(buyer_id.as_uuid())
            .bind(request_id.as_uuid())
            .execute(&self.pool)
            .await?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            let holder: Option<(Uuid, bool)> = sqlx::query_as(
                "SELECT request_id, claimed_at < now() - make_interval(secs => $3)
                   FROM purchase_request_slots WHERE listing_id = $1 AND buyer_id = $2",
            )
            .bind(listing_id.as_uuid())
            .bind(buyer_id.as_uuid())
            .bind(ABANDONED_AFTER_SECONDS)
            .fetch_optional(&self.pool)
            .await?;
            let Some((holder, old)) = holder else {
                continue;
            };
            if holder == request_id.as_uuid() {
                // A retry of the same request (same idempotency key): it holds the slot already.
                return Ok(());
            }
            let status = self
                .load::<PurchaseRequest>(&holder.to_string())
                .await
                .map_err(SlotError::Failed)?
                .status();
            let never_recorded = status == RequestStatus::None;
            if status.is_open() || (never_recorded && !old) {
                return Err(SlotError::AlreadyOpen);
            }
            let taken = sqlx::query(
                "UPDATE purchase_request_slots SET request_id = $3, claimed_at = now()
                  WHERE listing_id = $1 AND buyer_id = $2 AND request_id = $4",
            )
            .bind(listing_id.as_uuid())
            .bind(buyer_id.as_uuid())
            .bind(request_id.as_uuid())
            .bind(holder)
            .execute(&self.pool)
            .await?;
            if taken.rows_affected() == 1 {
                return Ok(());
            }
        }
        Err(SlotError::AlreadyOpen)
    }

    /// Gives up a claim whose request will not be recorded (the payment never happened).
    pub async fn release_slot(&self, request_id: RequestId) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM purchase_request_slots WHERE request_id = $1")
            .bind(request_id.as_uuid())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
