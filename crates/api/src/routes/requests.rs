//! Purchase requests: a buyer requests (and pays for) a listing; the seller accepts or
//! rejects; the buyer completes; either side cancels. The flows live in `crate::trade`.
//! A request's detail page reads the MyPage and timeline views.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use carrot_domain::{ListingId, Price, RequestId};
use carrot_projections::mypage::{self, MYPAGE};
use carrot_projections::timeline::{self, TIMELINE};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::extract::{AuthUser, CommandContext, ConsistencyToken, OptionalJson, PathId};
use crate::routes::{await_views, Freshness};
use crate::state::AppState;
use crate::trade::{place, respond, Outcome};

/// The purchase request routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/listings/{id}/requests", post(request_listing))
        .route("/requests/{id}", get(read))
        .route("/requests/{id}/accept", post(accept))
        .route("/requests/{id}/reject", post(reject))
        .route("/requests/{id}/complete", post(complete))
        .route("/requests/{id}/cancel", post(cancel))
}

#[derive(Debug, Default, Deserialize)]
struct RequestBody {
    price: Option<i64>,
}

#[tracing::instrument(skip_all, fields(listing = %listing_id, buyer = %ctx.user.user_id))]
async fn request_listing(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(listing_id): PathId<ListingId>,
    OptionalJson(body): OptionalJson<RequestBody>,
) -> Result<impl IntoResponse, ApiError> {
    let offer = body
        .price
        .map(Price::parse)
        .transpose()
        .map_err(|e| ApiError::invalid("price", e.to_string()))?;
    let placed = place::place(&state, &ctx, listing_id, offer).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/requests/{}", placed.request_id))],
        axum::Json(placed),
    ))
}

#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn accept(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::accept(&state, &ctx, id).await.map(axum::Json)
}

#[derive(Debug, Default, Deserialize)]
struct RejectBody {
    reason: Option<String>,
}

#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn reject(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
    OptionalJson(body): OptionalJson<RejectBody>,
) -> Result<axum::Json<Outcome>, ApiError> {
    let reason = body
        .reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500 || r.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(
            "reason",
            "must be at most 500 characters with no control characters",
        ));
    }
    respond::reject(&state, &ctx, id, reason)
        .await
        .map(axum::Json)
}

#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn complete(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::complete(&state, &ctx, id).await.map(axum::Json)
}

#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn cancel(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::cancel(&state, &ctx, id).await.map(axum::Json)
}

/// The request with its payment and full timeline; 404 for anyone but its buyer and seller
/// (and for the seller while it was never paid for).
#[tracing::instrument(skip_all, fields(request = %id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<RequestId>,
) -> Result<(Freshness, axum::Json<Value>), ApiError> {
    let freshness = await_views(&state, &[MYPAGE, TIMELINE], token).await?;
    let request = mypage::request_for(&state.pool, id, user.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut body = request.to_json();
    body["timeline"] = Value::Array(timeline::timeline(&state.pool, id).await?);
    Ok((freshness, axum::Json(body)))
}
