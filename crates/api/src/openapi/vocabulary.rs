//! The OpenAPI vocabulary every route's description shares: where the document is served,
//! the bearer scheme's name, the headers reads and commands accept, the problem responses
//! common to many endpoints, and the status enums (`carrot_projections::views::statuses`).

use utoipa::{IntoParams, ToResponse};

use crate::error::Problem;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where Swagger UI is served.
pub const UI_PATH: &str = "/docs";
/// The name of the bearer security scheme, as operations refer to it.
pub const BEARER: &str = "bearer";

/// The statuses' schemas: the projections' views name them, and the domain their values.
pub use carrot_projections::views::statuses::{ListingStatus, PaymentStatus, RequestStatus};

/// The `X-Consistency-Token` header a read accepts.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ConsistencyHeader {
    /// A `consistency_token` from a command's answer: the read waits (up to 2 s) until the
    /// views have applied that command, then answers with `X-Consistency: consistent`, or
    /// anyway with `X-Consistency: stale`. A malformed token is 422.
    #[param(rename = "X-Consistency-Token", example = "746.1")]
    pub consistency_token: Option<String>,
}

/// The `Idempotency-Key` header every POST accepts.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters. The same key with the same body from the same
    /// caller answers the first final response again (with `Idempotent-Replayed: true`) for
    /// at least 24 h; with another body it is 422 `idempotency_key_reused`; while a call with
    /// it still runs it is 409 `idempotency_key_in_flight`. Transient refusals (429, 409
    /// `concurrent_update`, 5xx) are not kept: a retry with the key runs again. Ignored on
    /// `/auth/*`, whose answers hold a token and are never stored.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\t\\x20-\\x7E]*$"
    )]
    pub idempotency_key: Option<String>,
}

/// 400 `malformed_json`: the body is not well-formed JSON, or nests deeper than 32 levels.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct MalformedJson(pub Problem);

/// 401 `unauthenticated`: no `Authorization: Bearer` token, or an invalid or expired one.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthenticated(pub Problem);

/// 403 `forbidden`: this endpoint is for operators (admin role).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct AdminOnly(pub Problem);

/// 404 `not_found`: no such id, or one the caller may not see (ids are not leaked); a
/// malformed id is the same.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// 413 `payload_too_large`: the body is over 64 KiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// 415 `unsupported_media_type`: a body not sent as `application/json`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotJson(pub Problem);

/// 429 `rate_limited`: too many calls from this user or this address; wait `Retry-After`
/// seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before calling again."))
)]
pub struct RateLimited(pub Problem);

/// 500 `internal_error`: a fault on our side (logged; no detail is shown).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct InternalError(pub Problem);
