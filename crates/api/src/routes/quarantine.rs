//! Operators' view of the events a subscriber holds in quarantine (admin role), and their
//! word to try them again once the code that reads them is deployed or the row is mended
//! (`carrot_projections::log::quarantine`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_projections::log::quarantine::{self, QuarantinedEvent};
use carrot_projections::views::page::Page;
use carrot_projections::Checkpoint;
use serde::Serialize;

use crate::error::ApiError;
use crate::extract::{AdminUser, PageParams, Paging};
use crate::openapi::vocabulary::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
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

/// A retry asked for.
#[derive(Serialize, utoipa::ToSchema)]
struct RetryRequested {
    /// How many events it holds; its runners try them again, in log order, at their next
    /// batch. Those still unreadable stay, with their new error.
    held: u64,
    /// Always `retry_requested`.
    #[schema(example = "retry_requested")]
    status: &'static str,
    /// The subscriber.
    subscriber: &'static str,
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
    params(("name" = String, Path, description = "The subscriber (`settlement`, `catalog`...)."), PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of held events, in log order.",
         body = Page<QuarantinedEvent>),
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
    page: Paging<Checkpoint>,
) -> Result<Json<Page<QuarantinedEvent>>, ApiError> {
    let name = subscriber(&name)?;
    let items = quarantine::list(&state.pool, name, page.limit + 1, page.cursor).await?;
    Ok(Json(Page::cut(items, page.limit, |e| e.position.clone())))
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
) -> Result<(StatusCode, Json<RetryRequested>), ApiError> {
    let name = subscriber(&name)?;
    let held = quarantine::request_retry(&state.pool, name).await?;
    tracing::info!(subscriber = name, held, by = %admin.user_id, "quarantine retry asked by an operator");
    let asked = RetryRequested {
        held,
        status: "retry_requested",
        subscriber: name,
    };
    Ok((StatusCode::ACCEPTED, Json(asked)))
}
