//! Purchase requests: a buyer requests (and pays for) a listing; the seller accepts or
//! rejects; the buyer completes; either side cancels. The flows live in `crate::trade`.
//! A request's detail page reads the MyPage and timeline views.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use carrot_domain::{ListingId, Price, RequestId};
use carrot_projections::views::mypage::{self, RequestView, MYPAGE};
use carrot_projections::views::timeline::{self, TimelineEntry, TIMELINE};
use serde::Deserialize;

use crate::error::{ApiError, Problem};
use crate::extract::{
    await_views, AuthUser, CommandContext, ConsistencyToken, Freshness, OptionalJson, PathId,
};
use crate::openapi::vocabulary::{
    IdempotencyHeader, MalformedJson, NotFound, NotJson, PayloadTooLarge, Unauthenticated,
};
use crate::state::AppState;
use crate::trade::place::Placed;
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

/// A purchase request's optional body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct RequestBody {
    /// The offered price in KRW; the listing's price when left out (lower is an offer).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    price: Option<i64>,
}

/// A request's detail page: the request with its payment, and everything that happened to
/// the trade.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RequestDetail {
    /// The request.
    #[serde(flatten)]
    request: RequestView,
    /// Everything that happened to the trade, in log order.
    timeline: Vec<TimelineEntry>,
}

/// Requests (and pays for) a listing.
///
/// The payment is captured and held in escrow before this answers.
#[utoipa::path(
    post,
    path = "/listings/{id}/requests",
    tag = "requests",
    operation_id = "request_listing",
    params(("id" = uuid::Uuid, Path, description = "The listing."), IdempotencyHeader),
    request_body(content = Option<RequestBody>, description = "Optional: without a body the \
        request is at the listing's price."),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Requested and paid.", body = Placed,
         headers(("Location" = String, description = "`/requests/{request_id}`")),
         links(
             ("AcceptRequest" = (operation_id = "accept_request",
                 parameters(("id" = "$response.body#/request_id")),
                 description = "The seller accepts it.")),
             ("RejectRequest" = (operation_id = "reject_request",
                 parameters(("id" = "$response.body#/request_id")),
                 description = "The seller rejects it.")),
             ("CancelRequest" = (operation_id = "cancel_request",
                 parameters(("id" = "$response.body#/request_id")),
                 description = "The buyer cancels it.")),
             ("ReadRequest" = (operation_id = "read_request",
                 parameters(("id" = "$response.body#/request_id"),
                     ("header.X-Consistency-Token" = "$response.body#/consistency_token")),
                 description = "Read it with its payment and timeline.")),
             ("ReadPayment" = (operation_id = "read_payment",
                 parameters(("id" = "$response.body#/payment_id"),
                     ("header.X-Consistency-Token" = "$response.body#/consistency_token")),
                 description = "Read its payment (captured).")),
         )),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 402, description = "`payment_declined`: the request is recorded as \
         `payment_failed`; the body adds `request_id`, `payment_id` and `status_of_request`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`listing_not_available`; `request_already_open` (the \
         caller already has an open request on it); `idempotency_key_in_flight`; or \
         `concurrent_update`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = NotJson),
        (status = 422, description = "`own_listing`; `validation_failed` (with `errors`: \
         price); or `idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`payment_unavailable`: the payment gateway is slow, \
         failing or its circuit is open; nothing was recorded. Retry after `Retry-After`.",
         body = Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u32, description = "Seconds to wait."))),
    ),
)]
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

/// The seller accepts: the listing is reserved for this request.
#[utoipa::path(
    post,
    path = "/requests/{id}/accept",
    tag = "requests",
    operation_id = "accept_request",
    params(("id" = uuid::Uuid, Path, description = "The request."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Accepted (`status: accepted`).", body = Outcome,
         links(
             ("CompleteRequest" = (operation_id = "complete_request",
                 parameters(("id" = "$response.body#/request_id")),
                 description = "The buyer completes it: the seller is paid out.")),
             ("CancelRequest" = (operation_id = "cancel_request",
                 parameters(("id" = "$response.body#/request_id")),
                 description = "The buyer cancels it: refunded, the listing is available again.")),
             ("ReadRequest" = (operation_id = "read_request",
                 parameters(("id" = "$response.body#/request_id"),
                     ("header.X-Consistency-Token" = "$response.body#/consistency_token")),
                 description = "Read it, accepted.")),
         )),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_listing`: only the seller accepts.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`listing_not_available`: another request was accepted, \
         or the listing was withdrawn; `invalid_transition`: not pending any more; \
         `idempotency_key_in_flight`; or `concurrent_update`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn accept(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::accept(&state, &ctx, id).await.map(axum::Json)
}

/// A rejection's optional body.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct RejectBody {
    /// Why (at most 500 characters, no control characters; trimmed).
    #[schema(max_length = 500, example = "Sold elsewhere")]
    reason: Option<String>,
}

/// The seller rejects a pending request; the buyer is refunded.
#[utoipa::path(
    post,
    path = "/requests/{id}/reject",
    tag = "requests",
    operation_id = "reject_request",
    params(("id" = uuid::Uuid, Path, description = "The request."), IdempotencyHeader),
    request_body(content = Option<RejectBody>, description = "Optional."),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rejected (`status: rejected`).", body = Outcome),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_listing`: only the seller rejects.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`invalid_transition`: not pending any more; \
         `idempotency_key_in_flight`; or `concurrent_update`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: reason); or \
         `idempotency_key_reused`.", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// The buyer completes an accepted request: the seller is paid out.
#[utoipa::path(
    post,
    path = "/requests/{id}/complete",
    tag = "requests",
    operation_id = "complete_request",
    params(("id" = uuid::Uuid, Path, description = "The request."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Completed (`status: completed`).", body = Outcome,
         links(
             ("ReadRequest" = (operation_id = "read_request",
                 parameters(("id" = "$response.body#/request_id"),
                     ("header.X-Consistency-Token" = "$response.body#/consistency_token")),
                 description = "Read it, completed and paid out.")),
         )),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_request`: only the buyer completes.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`invalid_transition`: not accepted; \
         `idempotency_key_in_flight`; or `concurrent_update`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn complete(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::complete(&state, &ctx, id).await.map(axum::Json)
}

/// Cancels a request: the buyer while requested or accepted, the seller once accepted.
///
/// The buyer is refunded and the listing is available again.
#[utoipa::path(
    post,
    path = "/requests/{id}/cancel",
    tag = "requests",
    operation_id = "cancel_request",
    params(("id" = uuid::Uuid, Path, description = "The request."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled (`status: cancelled`).", body = Outcome),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_request` or `not_your_listing`: neither its \
         buyer nor its seller.", body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`invalid_transition`: not cancellable from its status \
         (or by this side); `idempotency_key_in_flight`; or `concurrent_update`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(request = %id, actor = %ctx.user.user_id))]
async fn cancel(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<RequestId>,
) -> Result<axum::Json<Outcome>, ApiError> {
    respond::cancel(&state, &ctx, id).await.map(axum::Json)
}

/// One request with its payment and full timeline.
///
/// 404 for anyone but its buyer and seller (and for the seller while it was never paid for).
#[utoipa::path(
    get,
    path = "/requests/{id}",
    tag = "requests",
    operation_id = "read_request",
    params(("id" = uuid::Uuid, Path, description = "The request.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The request.", body = RequestDetail),
        (status = 401, response = Unauthenticated),
        (status = 404, response = NotFound),
        (status = 422, description = "`validation_failed`: a malformed `X-Consistency-Token`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(request = %id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<RequestId>,
) -> Result<(Freshness, axum::Json<RequestDetail>), ApiError> {
    let (freshness, views) = await_views(&state, &[MYPAGE, TIMELINE], token).await?;
    let request = mypage::request_for(views, id, user.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let timeline = timeline::timeline(views, id).await?;
    Ok((freshness, axum::Json(RequestDetail { request, timeline })))
}
