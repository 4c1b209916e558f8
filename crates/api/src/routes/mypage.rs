//! MyPage: the caller's summary, purchases and sales, from the MyPage view only.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use carrot_projections::mypage::{self, PageCursor, RequestView, MYPAGE};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, Problem};
use crate::extract::{AuthUser, ConsistencyToken};
use crate::routes::docs::{ConsistencyHeader, ListingStatus, Unauthenticated};
use crate::routes::requests::RequestWithPayment;
use crate::routes::{await_views, page_limit, Freshness};
use crate::state::AppState;

/// The MyPage routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mypage", get(summary))
        .route("/mypage/purchases", get(purchases))
        .route("/mypage/sales", get(sales))
}

/// `?cursor=&limit=` of a list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// How many (1 to 100, default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Requests by status (every status is present, 0 when none).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `mypage::summary` writes these counts
pub struct PurchaseCounts {
    requested: i64,
    accepted: i64,
    rejected: i64,
    completed: i64,
    cancelled: i64,
    expired: i64,
    payment_failed: i64,
}

/// Requests on the caller's listings by status (a declined payment never reaches its seller).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct SaleCounts {
    requested: i64,
    accepted: i64,
    rejected: i64,
    completed: i64,
    cancelled: i64,
    expired: i64,
}

/// The caller's listings by status.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ListingCounts {
    available: i64,
    reserved: i64,
    sold: i64,
    withdrawn: i64,
}

/// The caller's money, in KRW.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Money {
    /// Paid by the caller and held in escrow.
    held: i64,
    /// Refunded to the caller.
    refunded: i64,
    /// Paid by the caller and paid out to sellers.
    paid_out: i64,
    /// Paid out to the caller as a seller.
    earned: i64,
    /// Held in escrow for the caller's sales, due once completed.
    incoming: i64,
}

/// The caller's summary.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct MyPageSummary {
    /// The caller's requests as a buyer.
    purchases: PurchaseCounts,
    /// Requests on the caller's listings.
    sales: SaleCounts,
    /// The caller's listings.
    listings: ListingCounts,
    /// The caller's money.
    money: Money,
}

/// A page of the caller's purchases.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PurchasePage {
    /// Newest first.
    items: Vec<RequestWithPayment>,
    /// Pass it as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// One of the caller's listings with the requests on it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `mypage::SaleView` serializes these fields
pub struct Sale {
    /// The listing.
    listing_id: uuid::Uuid,
    /// Its title.
    title: String,
    /// Its asking price in KRW.
    price: i64,
    /// Its status.
    status: ListingStatus,
    /// When it was registered.
    created_at: chrono::DateTime<chrono::Utc>,
    /// When it last changed.
    updated_at: chrono::DateTime<chrono::Utc>,
    /// Its newest paid requests, at most 20, newest first (each one's whole story is at
    /// `GET /requests/{id}`).
    requests: Vec<RequestWithPayment>,
    /// Whether it has older requests than those listed.
    more_requests: bool,
}

/// A page of the caller's sales.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only
pub struct SalePage {
    /// Newest first.
    items: Vec<Sale>,
    /// Pass it as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

type PageQuery = Result<Query<PageParams>, axum::extract::rejection::QueryRejection>;

fn page(params: PageQuery) -> Result<(Option<PageCursor>, i64), ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = page_limit(params.limit.as_deref())?;
    let cursor = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(PageCursor::decode(raw).ok_or_else(|| {
            ApiError::invalid("cursor", "is not a cursor this endpoint returned")
        })?),
    };
    Ok((cursor, limit))
}

/// Requests by status on each side, listings by status, and money.
#[utoipa::path(
    get,
    path = "/mypage",
    tag = "mypage",
    operation_id = "mypage_summary",
    params(ConsistencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's summary.", body = MyPageSummary,
         headers(("X-Consistency" = String, description = "`consistent` or `stale`, when \
          `X-Consistency-Token` was sent."))),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed`: a malformed `X-Consistency-Token`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn summary(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
) -> Result<(Freshness, Json<Value>), ApiError> {
    let freshness = await_views(&state, &[MYPAGE], token).await?;
    Ok((
        freshness,
        Json(mypage::summary(&state.pool, user.user_id).await?),
    ))
}

/// The caller's requests, newest first, each with its payment.
#[utoipa::path(
    get,
    path = "/mypage/purchases",
    tag = "mypage",
    operation_id = "mypage_purchases",
    params(PageParams, ConsistencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's requests.", body = PurchasePage,
         headers(("X-Consistency" = String, description = "`consistent` or `stale`, when \
          `X-Consistency-Token` was sent."))),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed` (with `errors`: cursor, limit, query, \
         or a malformed `X-Consistency-Token`).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn purchases(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    params: PageQuery,
) -> Result<(Freshness, Json<Value>), ApiError> {
    let (cursor, limit) = page(params)?;
    let freshness = await_views(&state, &[MYPAGE], token).await?;
    let (items, next) = mypage::purchases(&state.pool, user.user_id, cursor, limit).await?;
    let items: Vec<Value> = items.iter().map(RequestView::to_json).collect();
    Ok((
        freshness,
        Json(json!({ "items": items, "next_cursor": next.map(|c| c.encode()) })),
    ))
}

/// The caller's listings, newest first, each with its newest paid requests (at most 20).
#[utoipa::path(
    get,
    path = "/mypage/sales",
    tag = "mypage",
    operation_id = "mypage_sales",
    params(PageParams, ConsistencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's listings.", body = SalePage,
         headers(("X-Consistency" = String, description = "`consistent` or `stale`, when \
          `X-Consistency-Token` was sent."))),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed` (with `errors`: cursor, limit, query, \
         or a malformed `X-Consistency-Token`).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn sales(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    params: PageQuery,
) -> Result<(Freshness, Json<Value>), ApiError> {
    let (cursor, limit) = page(params)?;
    let freshness = await_views(&state, &[MYPAGE], token).await?;
    let (items, next) = mypage::sales(&state.pool, user.user_id, cursor, limit).await?;
    Ok((
        freshness,
        Json(json!({ "items": items, "next_cursor": next.map(|c| c.encode()) })),
    ))
}
