//! Operators' view of the events a subscriber holds in quarantine (admin role), and their
//! word to try them again once the code that reads them is deployed or the row is mended
//! (`carrot_projections::quarantine`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_projections::page::page;
use carrot_projections::quarantine::{self, QuarantinedEvent};
use carrot_projections::Checkpoint;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::routes::admin::Page;
use crate::routes::docs::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
use crate::routes::page_limit;
use crate::state::AppState;

/// The quarantine routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/subscriptions/{name}/quarantine", get(list))
        .route("/admin/subscriptions/{name}/quarantine/retry", post(retry))
}

/// The subscriber named `name`, if there is one: the name reaches the database only then.
fn subscriber(name: &str) -> Result<&'static str, ApiError> {
    carrot_projections::subscriber_names()
        .into_iter()
        .find(|known| *known == name)
        .ok_or(ApiError::NotFound)
}

/// A page of held events.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `list` writes the same two fields
struct QuarantinePage {
    /// In log order.
    items: Vec<QuarantinedEvent>,
    /// Pass it as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A retry asked for.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: `retry` writes these fields
struct RetryRequested {
    /// The subscriber.
    subscriber: String,
    /// How many events it holds; its runners try them again, in log order, at their next
    /// batch. Those still unreadable stay, with their new error.
    held: u64,
    /// Always `retry_requested`.
    #[schema(example = "retry_requested")]
    status: String,
}

/// The events a subscriber holds in quarantine, in log order.
///
/// A poison (a payload its code cannot read) with its error, and every later event of the
/// same aggregate, held behind it so the aggregate's events are applied in order. Every
/// other aggregate goes on. Each subscriber's count is in `GET /admin/subscriptions`,
/// readiness and `carrot_subscription_quarantined_events`.
#[utoipa::path(
    get,
    path = "/admin/subscriptions/{name}/quarantine",
    tag = "admin",
    operation_id = "list_quarantined_events",
    params(("name" = String, Path, description = "The subscriber (`settlement`, `catalog`...)."), Page),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of held events.", body = QuarantinePage),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 422, description = "`validation_failed` (with `errors`: limit, cursor, query).",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(subscriber = %name))]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(name): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let name = subscriber(&name)?;
    let Query(query) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = page_limit(query.limit.as_deref())?;
    let after = query
        .cursor
        .as_deref()
        .map(|c| c.parse::<Checkpoint>())
        .transpose()
        .map_err(|_| ApiError::invalid("cursor", "is not a cursor this endpoint returned"))?;
    let items = quarantine::list(&state.pool, name, limit + 1, after).await?;
    let (items, next) = page(items, limit, |e| e.position.clone());
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

/// Asks a subscriber's runners to try its held events again.
///
/// For after the code that reads them is deployed (runners also try at start) or a damaged
/// event is mended. They are applied at the runners' next batch, under the subscriber's
/// checkpoint lock, so once; an event still unreadable stays held with its new error.
#[utoipa::path(
    post,
    path = "/admin/subscriptions/{name}/quarantine/retry",
    tag = "admin",
    operation_id = "retry_quarantined_events",
    params(("name" = String, Path, description = "The subscriber."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Asked; the runners apply them shortly.", body = RetryRequested),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`idempotency_key_in_flight`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(subscriber = %name))]
async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = subscriber(&name)?;
    let held = quarantine::request_retry(&state.pool, name).await?;
    tracing::info!(subscriber = name, held, by = %admin.user_id, "quarantine retry asked by an operator");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "subscriber": name, "held": held, "status": "retry_requested" })),
    ))
}
