//! MyPage: the caller's summary, purchases and sales, from the MyPage view only.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use carrot_projections::mypage::{self, PageCursor, RequestView, MYPAGE};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::{AuthUser, ConsistencyToken};
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
#[derive(Debug, Deserialize)]
pub struct PageParams {
    cursor: Option<String>,
    limit: Option<String>,
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

/// The caller's listings, newest first, each with its paid requests.
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
