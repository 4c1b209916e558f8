//! Operators' endpoints (admin role): subscribers' progress, and the mismatches
//! reconciliation with the gateway left for a person. The saga's dead letters are
//! `dead_letters.rs`'s; declined transfers `transfers.rs`'s.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_projections::log::status::SubscriberStatus;
use carrot_projections::settlement::mismatches::{self, Mismatch};
use carrot_projections::views::page::Items;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::page;
use crate::extract::{AdminUser, Json as JsonBody};
use crate::openapi::vocabulary::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
use crate::state::AppState;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/subscriptions", get(subscriptions))
        .route("/admin/reconciliation/mismatches", get(mismatches))
        .route(
            "/admin/reconciliation/mismatches/{key}/resolve",
            post(resolve_mismatch),
        )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Limit {
    /// How many (1 to 100, default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Differences between the payment gateway and the log that reconciliation could not
/// repair (amounts that differ, money that left escrow both ways, a movement one side has
/// and the other has not), oldest first. Each is also counted in
/// `carrot_reconciliation_mismatches`.
#[utoipa::path(
    get,
    path = "/admin/reconciliation/mismatches",
    tag = "admin",
    operation_id = "list_reconciliation_mismatches",
    params(Limit),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The oldest open mismatches, oldest first.",
         body = Items<Mismatch>),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 422, description = "`validation_failed` (with `errors`: limit, query).",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
async fn mismatches(
    State(state): State<AppState>,
    _admin: AdminUser,
    query: Result<Query<Limit>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Items<Mismatch>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let mut errors = Vec::new();
    let limit = page::limit(query.limit.as_deref(), &mut errors);
    page::refuse(errors)?;
    let items = mismatches::open_mismatches(&state.pool, limit).await?;
    Ok(Json(Items { items }))
}

/// How an operator settled a mismatch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct Resolution {
    /// What was done (a manual refund, a gateway correction...), 1 to 1,000 characters.
    #[schema(example = "refunded by hand at the gateway, ticket 4411")]
    resolution: String,
}

/// A mismatch closed.
#[derive(Serialize, utoipa::ToSchema)]
struct Resolved {
    /// The mismatch's key.
    idempotency_key: String,
    /// Always `resolved`.
    #[schema(example = "resolved")]
    status: &'static str,
}

/// Closes an open mismatch once an operator has dealt with it (reconciliation never
/// changes money it cannot explain), with what was done; the gauge goes down by one.
#[utoipa::path(
    post,
    path = "/admin/reconciliation/mismatches/{key}/resolve",
    tag = "admin",
    operation_id = "resolve_reconciliation_mismatch",
    params(("key" = String, Path, description = "The mismatch's `idempotency_key`."), IdempotencyHeader),
    request_body = Resolution,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Closed.", body = Resolved),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`idempotency_key_in_flight`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (with `errors`: resolution), or \
         `idempotency_key_reused`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(key = %key))]
async fn resolve_mismatch(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(key): Path<String>,
    JsonBody(body): JsonBody<Resolution>,
) -> Result<Json<Resolved>, ApiError> {
    let resolution = body.resolution.trim();
    if !(1..=1000).contains(&resolution.chars().count()) || resolution.contains('\0') {
        return Err(ApiError::invalid(
            "resolution",
            "must be 1 to 1,000 characters, with no NUL",
        ));
    }
    let open = super::dead_letters::is_plain_id(&key)
        && mismatches::resolve(&state.pool, &key, admin.user_id.as_uuid(), resolution).await?;
    if !open {
        return Err(ApiError::NotFound);
    }
    tracing::info!(key = %key, by = %admin.user_id, resolution, "reconciliation mismatch resolved by an operator");
    Ok(Json(Resolved {
        idempotency_key: key,
        status: "resolved",
    }))
}

/// Every subscriber's progress.
///
/// Each subscriber's checkpoint, how far behind the log it is (in events and in
/// milliseconds: the age of the oldest event it has not applied), and its last error.
#[utoipa::path(
    get,
    path = "/admin/subscriptions",
    tag = "admin",
    operation_id = "list_subscriptions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every subscriber's progress, by name.",
         body = Items<SubscriberStatus>),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
    ),
)]
#[tracing::instrument(skip_all)]
async fn subscriptions(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Items<SubscriberStatus>>, ApiError> {
    let items = carrot_projections::log::status::status(&state.pool).await?;
    Ok(Json(Items { items }))
}
