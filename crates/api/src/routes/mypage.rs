//! MyPage: the caller's summary, purchases and sales, from the MyPage view only.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use carrot_projections::views::mypage::{self, PageCursor, RequestView, SaleView, Summary, MYPAGE};
use carrot_projections::views::page::Page;

use crate::error::{ApiError, Problem};
use crate::extract::{await_views, AuthUser, ConsistencyToken, Freshness, PageParams, Paging};
use crate::openapi::vocabulary::Unauthenticated;
use crate::state::AppState;

/// The MyPage routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/mypage", get(summary))
        .route("/mypage/purchases", get(purchases))
        .route("/mypage/sales", get(sales))
}

/// Requests by status on each side, listings by status, and money.
#[utoipa::path(
    get,
    path = "/mypage",
    tag = "mypage",
    operation_id = "mypage_summary",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's summary.", body = Summary),
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
) -> Result<(Freshness, Json<Summary>), ApiError> {
    let (freshness, views) = await_views(&state, &[MYPAGE], token).await?;
    Ok((freshness, Json(mypage::summary(views, user.user_id).await?)))
}

/// The caller's requests, newest first, each with its payment.
#[utoipa::path(
    get,
    path = "/mypage/purchases",
    tag = "mypage",
    operation_id = "mypage_purchases",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's requests, newest first.",
         body = Page<RequestView>),
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
    page: Paging<PageCursor>,
) -> Result<(Freshness, Json<Page<RequestView>>), ApiError> {
    let (freshness, views) = await_views(&state, &[MYPAGE], token).await?;
    let purchases = mypage::purchases(views, user.user_id, page.cursor, page.limit).await?;
    Ok((freshness, Json(purchases)))
}

/// The caller's listings, newest first, each with its newest paid requests (at most 20).
#[utoipa::path(
    get,
    path = "/mypage/sales",
    tag = "mypage",
    operation_id = "mypage_sales",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the caller's listings, newest first.",
         body = Page<SaleView>),
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
    page: Paging<PageCursor>,
) -> Result<(Freshness, Json<Page<SaleView>>), ApiError> {
    let (freshness, views) = await_views(&state, &[MYPAGE], token).await?;
    let sales = mypage::sales(views, user.user_id, page.cursor, page.limit).await?;
    Ok((freshness, Json(sales)))
}
