//! Operators' endpoints (admin role): subscribers' progress, the saga's dead letters and
//! retrying one, and the mismatches reconciliation with the gateway left for a person.

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_projections::log::status::SubscriberStatus;
use carrot_projections::settlement::mismatches::{self, Mismatch};
use carrot_projections::settlement::outbox::{self, DeadLetter};
use carrot_projections::views::page::{Items, Page};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::extract::page::{self, Cursor, PageParams, Paging};
use crate::extract::{AdminUser, Json as JsonBody};
use crate::openapi::vocabulary::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
use crate::state::AppState;

/// Whether `id` could be one of Carrot's ids of a saga command or a movement
/// (`refund:<payment id>`...): visible ASCII, at most 200 bytes. Anything else names
/// nothing, and never reaches the database.
fn is_plain_id(id: &str) -> bool {
    (1..=200).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/subscriptions", get(subscriptions))
        .route("/admin/dead-letters", get(dead_letters))
        .route("/admin/dead-letters/{id}/retry", post(retry))
        .route("/admin/reconciliation/mismatches", get(mismatches))
        .route(
            "/admin/reconciliation/mismatches/{key}/resolve",
            post(resolve_mismatch),
        )
}

/// A dead letter's `command_id` sent back as a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommandId(String);

impl Cursor for CommandId {
    fn parse(raw: &str) -> Option<Self> {
        is_plain_id(raw).then(|| CommandId(raw.to_owned()))
    }
}

/// A dead letter put back in line.
#[derive(Serialize, utoipa::ToSchema)]
struct Retried {
    /// The saga command.
    command_id: String,
    /// Always `pending`: a dispatcher runs it again.
    #[schema(example = "pending")]
    status: &'static str,
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
    let open = is_plain_id(&key)
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

/// Saga commands that gave up, most recent first.
#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "admin",
    operation_id = "list_dead_letters",
    params(PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of dead letters, most recent first.",
         body = Page<DeadLetter>),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 422, description = "`validation_failed` (with `errors`: limit, query).",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
async fn dead_letters(
    State(state): State<AppState>,
    _admin: AdminUser,
    page: Paging<CommandId>,
) -> Result<Json<Page<DeadLetter>>, ApiError> {
    let after = page.cursor.as_ref().map(|c| c.0.as_str());
    let items = outbox::dead_letters(&state.pool, page.limit + 1, after).await?;
    Ok(Json(Page::cut(items, page.limit, |d| d.command_id.clone())))
}

/// Puts a dead letter back in line, attempts reset.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/retry",
    tag = "admin",
    operation_id = "retry_dead_letter",
    params(("id" = String, Path, description = "The dead letter's `command_id`."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back in line.", body = Retried),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`idempotency_key_in_flight`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = crate::error::Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(command_id = %id))]
async fn retry(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Json<Retried>, ApiError> {
    if !is_plain_id(&id) || !outbox::revive(&state.pool, &id).await? {
        return Err(ApiError::NotFound);
    }
    tracing::info!(command_id = %id, by = %admin.user_id, "dead letter retried by an operator");
    Ok(Json(Retried {
        command_id: id,
        status: "pending",
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
