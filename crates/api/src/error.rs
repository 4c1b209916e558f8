//! The one error type at the edge: every failure becomes `application/problem+json`
//! (RFC 9457) with a stable `code`. Infrastructure failures become a bare 500, logged once
//! with their cause chain; clients never see internals.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use carrot_domain::{DomainError, ErrorKind};
use carrot_projections::personal::SealingError;
use carrot_projections::views::mypage::OpenTrade;
use carrot_projections::write_side::slots::SlotError;
use carrot_projections::write_side::CommandError;
use serde::Serialize;
use serde_json::json;

use crate::auth::closing::CloseError;

/// How long a client should wait before retrying after a dependency failure.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// Set on the response of a transient refusal (see [`ApiError::is_transient`]), so the
/// idempotency layer, which sees only responses, knows not to keep it as the final answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transient;

/// One field that broke a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as sent.
    pub field: String,
    /// The rule it broke.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The largest request body accepted (64 KiB); larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The body of every error (`application/problem+json`, RFC 9457) for the OpenAPI document:
/// the shape [`ApiError`]'s `IntoResponse` writes (the API tests check answers against it).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(examples(json!({
    "type": "https://carrot.example/problems/listing_not_available",
    "title": "Conflict",
    "status": 409,
    "detail": "the listing is not available (it is reserved)",
    "code": "listing_not_available"
})))]
pub struct Problem {
    /// A URI naming the kind of problem: `https://carrot.example/problems/<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened, for people.
    pub detail: String,
    /// The stable, machine-readable code (`validation_failed`, `listing_not_available`,
    /// `invalid_transition`, `payment_declined`, `payment_unavailable`...).
    pub code: String,
    /// With `validation_failed`: each field that broke a rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// With `payment_declined`: the request, recorded as `payment_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<uuid::Uuid>,
    /// With `payment_declined`: the declined payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<uuid::Uuid>,
    /// With `payment_declined`: always `payment_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_of_request: Option<String>,
    /// With `open_trades`: the trades that keep the account open, oldest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_trades: Option<Vec<OpenTrade>>,
}

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not well-formed.
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is not declared as JSON.
    #[error("the request body must be sent as application/json")]
    UnsupportedMediaType,
    /// The body is over the limit.
    #[error("the request body is larger than {limit} bytes", limit = BODY_LIMIT_BYTES)]
    PayloadTooLarge,
    /// Valid JSON (or query) that breaks the rules.
    #[error("the request breaks {} rule(s)", .0.len())]
    Validation(Vec<FieldError>),
    /// No usable credentials.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Signed in, but not allowed here.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Wrong username or password (the same answer for both).
    #[error("unknown username or wrong password")]
    InvalidCredentials,
    /// Nothing there, or nothing the caller may see.
    #[error("there is nothing here with that id")]
    NotFound,
    /// No such route.
    #[error("no such endpoint")]
    NoRoute,
    /// The route exists, not with this method (the `Allow` header lists those it takes).
    #[error("this endpoint does not take this method; see the Allow header")]
    MethodNotAllowed,
    /// A rule of the domain refused the command.
    #[error("{detail}")]
    Domain {
        /// The class of refusal.
        kind: ErrorKind,
        /// The stable code.
        code: &'static str,
        /// What happened, for people.
        detail: String,
    },
    /// A state conflict decided here at the edge (a taken username, a lost race).
    #[error("{detail}")]
    Conflict {
        /// The stable code.
        code: &'static str,
        /// What happened, for people.
        detail: String,
    },
    /// Something we depend on is down; try again later.
    #[error("{detail}")]
    Unavailable {
        /// The stable code.
        code: &'static str,
        /// What is unavailable.
        detail: String,
        /// Seconds to wait before retrying.
        retry_after: u32,
    },
    /// Too many calls from this user or address; try again after `retry_after` seconds.
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited {
        /// Seconds to wait before retrying.
        retry_after: u32,
    },
    /// The buyer's payment was declined (the request is recorded as `payment_failed`).
    #[error("the payment was declined: {reason}")]
    PaymentDeclined {
        /// The gateway's reason.
        reason: String,
        /// The request recorded as `payment_failed`.
        request_id: uuid::Uuid,
        /// The declined payment.
        payment_id: uuid::Uuid,
    },
    /// The account cannot close while its person is still in these trades.
    #[error("the account is still in {} open trade(s); close it once they are settled", .0.len())]
    OpenTrades(Vec<OpenTrade>),
    /// A fault of ours; logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// Wraps an infrastructure failure: 503 with Retry-After when it is the database being
    /// unreachable for now (down, restarting, failing over: see
    /// [`carrot_projections::postgres::is_unavailable`]), 500 otherwise.
    pub fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::boxed(Box::new(error))
    }

    fn boxed(error: Box<dyn std::error::Error + Send + Sync>) -> Self {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
        while let Some(e) = cause {
            if e.downcast_ref::<sqlx::Error>()
                .is_some_and(carrot_projections::postgres::is_unavailable)
            {
                return ApiError::Unavailable {
                    code: "database_unavailable",
                    detail: "the database cannot be reached right now (restarting or failing \
                             over); nothing was changed unless a consistency token was returned"
                        .into(),
                    retry_after: RETRY_AFTER_SECONDS,
                };
            }
            cause = e.source();
        }
        ApiError::Internal(error)
    }

    /// A single-field validation failure.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated(_) | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Domain { kind, .. } => match kind {
                ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            },
            ApiError::PaymentDeclined { .. } => StatusCode::PAYMENT_REQUIRED,
            ApiError::Conflict { .. } | ApiError::OpenTrades(_) => StatusCode::CONFLICT,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the same request sent again may be answered otherwise: a rate limit, a race
    /// lost to concurrent updates, a key still in flight, or a failure on our side (5xx,
    /// dependencies down). Every other refusal is a final answer about the request itself.
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::RateLimited { .. } => true,
            ApiError::Conflict { code, .. } => {
                matches!(*code, "concurrent_update" | "idempotency_key_in_flight")
            }
            other => other.status().is_server_error(),
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::NoRoute => "no_such_endpoint",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Domain { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Unavailable { code, .. } => code,
            ApiError::PaymentDeclined { .. } => "payment_declined",
            ApiError::OpenTrades(_) => "open_trades",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Internal(_) => "internal_error",
        }
    }
}

/// Logs an error with its whole cause chain, once.
fn log_internal(error: &(dyn std::error::Error + 'static)) {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %chain, "request failed");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(cause) => {
                log_internal(cause.as_ref());
                "something went wrong on our side; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({
            "type": format!("https://carrot.example/problems/{}", self.code()),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
            "code": self.code(),
        });
        match &self {
            ApiError::Validation(errors) => body["errors"] = json!(errors),
            ApiError::PaymentDeclined {
                request_id,
                payment_id,
                ..
            } => {
                body["request_id"] = json!(request_id);
                body["payment_id"] = json!(payment_id);
                body["status_of_request"] = json!("payment_failed");
            }
            ApiError::OpenTrades(trades) => body["open_trades"] = json!(trades),
            _ => {}
        }
        let mut response = (status, axum::Json(body)).into_response();
        if self.is_transient() {
            response.extensions_mut().insert(Transient);
        }
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::Unavailable { retry_after, .. } | ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unauthenticated(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl ApiError {
    /// A domain refusal: its class decides the status; `Unavailable` carries Retry-After.
    pub fn refused<E: DomainError>(e: &E) -> Self {
        match e.kind() {
            ErrorKind::Unavailable => ApiError::Unavailable {
                code: e.code(),
                detail: e.to_string(),
                retry_after: e.retry_after_secs().unwrap_or(RETRY_AFTER_SECONDS),
            },
            kind => ApiError::Domain {
                kind,
                code: e.code(),
                detail: e.to_string(),
            },
        }
    }
}

impl<E: DomainError + 'static> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Refused(e) => ApiError::refused(&e),
            CommandError::Contended => ApiError::Conflict {
                code: "concurrent_update",
                detail: "too many concurrent changes to the same item; try again".into(),
            },
            // Written in the instant its account closed: refused like its revoked token.
            CommandError::Failed(e) if is_closed_account(e.as_ref()) => {
                ApiError::Unauthenticated("this account is closed")
            }
            CommandError::Failed(e) => ApiError::boxed(e),
        }
    }
}

fn is_closed_account(error: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        error.downcast_ref::<SealingError>(),
        Some(SealingError::Closed(_))
    )
}

impl From<CloseError> for ApiError {
    fn from(error: CloseError) -> Self {
        match error {
            CloseError::OpenTrades(trades) => ApiError::OpenTrades(trades),
            CloseError::Lagging => ApiError::Unavailable {
                code: "views_catching_up",
                detail: error.to_string(),
                retry_after: 1,
            },
            CloseError::NotFound => ApiError::Unauthenticated("this account is closed"),
            other => ApiError::internal(other),
        }
    }
}

impl From<SlotError> for ApiError {
    fn from(e: SlotError) -> Self {
        match e {
            SlotError::AlreadyOpen => ApiError::Conflict {
                code: "request_already_open",
                detail: e.to_string(),
            },
            SlotError::Failed(e) => ApiError::Internal(e),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(e)
    }
}

/// Whether a database error is a unique-constraint violation.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}
