//! Operators' endpoints (admin role): subscribers' progress, the saga's dead letters, and
//! retrying one.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_projections::settlement::outbox::{self, DeadLetter};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::extract::AdminUser;
use crate::routes::page_limit;
use crate::state::AppState;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/subscriptions", get(subscriptions))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/dead-letters/{id}/retry", post(retry))
}

#[derive(Debug, Deserialize)]
struct Page {
    cursor: Option<String>,
    limit: Option<String>,
}

/// Saga commands that gave up, most recent first.
#[tracing::instrument(skip_all)]
async fn dead_letters(
    State(state): State<AppState>,
    _admin: AdminUser,
    page: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(page) = page.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = page_limit(page.limit.as_deref())?;
    let mut items: Vec<DeadLetter> =
        outbox::dead_letters(&state.pool, limit + 1, page.cursor.as_deref()).await?;
    let next = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| d.command_id.clone())
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next })))
}

/// Puts a dead letter back in line, attempts reset.
#[tracing::instrument(skip_all, fields(command_id = %id))]
async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if !outbox::revive(&state.pool, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(command_id = %id, by = %admin.user_id, "dead letter retried by an operator");
    Ok(Json(json!({ "command_id": id, "status": "pending" })))
}

/// Each subscriber's checkpoint, how far behind the log it is (in events and in
/// milliseconds: the age of the oldest event it has not applied), and its last error.
#[tracing::instrument(skip_all)]
async fn subscriptions(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Value>, ApiError> {
    let rows = carrot_projections::runner::status(&state.pool).await?;
    Ok(Json(json!({ "items": rows })))
}
