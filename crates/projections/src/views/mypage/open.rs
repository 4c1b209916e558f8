//! What keeps an account from closing, as MyPage knows it: the trades a person is still in
//! (a request open, or money held in escrow for them or from them), and the listings of
//! theirs still on sale.

use carrot_domain::listing::ListingStatus;
use carrot_domain::payment::PaymentStatus;
use carrot_domain::purchase_request::RequestStatus;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::postgres::Db;

/// A trade that keeps an account open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, sqlx::FromRow)]
pub struct OpenTrade {
    /// The request.
    pub request_id: Uuid,
    /// The person's side of it: `buyer` or `seller`.
    pub role: String,
    /// The request's status.
    #[schema(value_type = crate::views::statuses::RequestStatus)]
    pub status: String,
    /// Its payment's status (`captured`: the money is held in escrow).
    #[schema(value_type = crate::views::statuses::PaymentStatus)]
    pub payment_status: String,
}

/// The trades `user` is still in, oldest first (at most 100: the first ones to settle).
pub async fn open_trades(pool: &Db, user: Uuid) -> Result<Vec<OpenTrade>, sqlx::Error> {
    let open: Vec<&str> = RequestStatus::SHOWN
        .iter()
        .filter(|s| s.is_open())
        .map(RequestStatus::name)
        .collect();
    sqlx::query_as(
        "SELECT request_id, CASE WHEN buyer_id = $1 THEN 'buyer' ELSE 'seller' END AS role,
                status, payment_status
           FROM mypage.requests
          WHERE (buyer_id = $1 OR (seller_id = $1 AND seen_by_seller))
            AND (status = ANY($2) OR payment_status = $3)
          ORDER BY created_at, request_id
          LIMIT 100",
    )
    .bind(user)
    .bind(open)
    .bind(PaymentStatus::Captured.name())
    .fetch_all(pool)
    .await
}

/// The listings of `seller` still available.
pub async fn available_listings(pool: &Db, seller: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT listing_id FROM mypage.listings WHERE seller_id = $1 AND status = $2
          ORDER BY created_at",
    )
    .bind(seller)
    .bind(ListingStatus::Available.name())
    .fetch_all(pool)
    .await
}
