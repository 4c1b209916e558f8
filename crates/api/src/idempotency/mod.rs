//! Idempotent POSTs (API.md, "Idempotency"): the first *final* response to a user's
//! `Idempotency-Key` is kept in Postgres and replayed for the same key and body; the same
//! key with another body is 422 `idempotency_key_reused`; a key whose call is still running
//! is 409 `idempotency_key_in_flight`.
//!
//! A key's row is `in_flight` while a call runs, `done` with the response to replay, or
//! `retryable`: the last call ended in a transient refusal ([`ApiError::is_transient`]: 429,
//! 409 `concurrent_update`, any 5xx), which is not an answer about the request, so the
//! client's retry with the same key runs again. A `retryable` key keeps its request's
//! fingerprint: after a 5xx whose effects are unknown (a capture that timed out), the same
//! key with another body is still 422 and can never derive a second payment.
//!
//! The handler and the storing of its response run in a task of their own that the
//! middleware awaits: a client that drops its connection drops only the waiting, so the key
//! still gets its final answer, which the client's retry replays. (A process that dies
//! mid-call, or a database that fails as the answer is stored, leaves the key `in_flight`;
//! a retry takes it over after a minute.)
//!
//! `/auth/*` is not covered: its answers hold a token and its bodies a password, and neither
//! belongs in this table. A retried signup is kept single by username uniqueness (409
//! `username_taken`, then log in); a retried login just issues another token.
//!
//! cqrs-es commits events in its own transaction, so the stored response alone cannot make
//! a retry safe after a crash between the commit and the store. The key therefore also
//! reaches the handler ([`IdempotencyKey`]), which derives the ids of what it creates from
//! it: a retry addresses the same listing, request and payment, which the aggregates treat
//! as already done, and the gateway sees the same payment idempotency key.

mod store;

use std::panic::AssertUnwindSafe;

use carrot_projections::postgres::Db;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, response, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use sha2::{Digest, Sha256};
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ApiError, FieldError, Transient, BODY_LIMIT_BYTES};
use crate::state::AppState;
use store::Stored;
pub use store::{purge_expired, KEPT_FOR};

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Marks a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Response headers worth replaying (the rest are per-response).
const REPLAYED_HEADERS: [header::HeaderName; 3] =
    [header::CONTENT_TYPE, header::LOCATION, header::RETRY_AFTER];

/// The validated key of the request being handled, with the fingerprint of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    key: String,
    request_hash: String,
}

impl IdempotencyKey {
    /// A stable id for the thing this request creates, named by `purpose`: the same for a
    /// retry of the same request by the same user, different for anything else.
    pub fn derive_id(&self, user: Uuid, purpose: &str) -> Uuid {
        let digest = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update(self.key.as_bytes())
            .chain_update([0])
            .chain_update(self.request_hash.as_bytes())
            .chain_update([0])
            .chain_update(purpose.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Uuid::new_v8(bytes)
    }

    /// The key as the client sent it.
    pub fn as_str(&self) -> &str {
        &self.key
    }
}

/// The middleware: a no-op without the header, outside POST, and on `/auth/*`.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST
        || !request.headers().contains_key(HEADER)
        || request.uri().path().starts_with("/auth/")
    {
        return next.run(request).await;
    }
    let key = match parse_key(request.headers()) {
        Ok(key) => key,
        Err(error) => return error.into_response(),
    };
    // No valid token: the handler answers 401, and an anonymous caller must not fill the
    // key store (nor learn whether a key was used) with calls that do nothing.
    let Some(user) = caller(&state, request.headers()) else {
        return next.run(request).await;
    };
    // From the claim to the stored answer, in a task this request only waits for: if the
    // client goes away, the key still ends `done` or `retryable`, never stuck `in_flight`.
    let call = async move {
        run(&state, user, key, request, next)
            .await
            .unwrap_or_else(IntoResponse::into_response)
    };
    match tokio::spawn(call.in_current_span()).await {
        Ok(response) => response,
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn run(
    state: &AppState,
    user: Uuid,
    key: String,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let request_hash = fingerprint(&parts.method, parts.uri.path(), parts.uri.query(), &body);
    match store::claim(&state.pool, user, &key, &request_hash).await? {
        Stored::Claimed => {}
        Stored::Done {
            status,
            body,
            headers,
        } => return Ok(replay(status, body, &headers)),
        Stored::InFlight => {
            return Err(ApiError::Conflict {
                code: "idempotency_key_in_flight",
                detail: "a request with this Idempotency-Key is still being processed".into(),
            })
        }
        Stored::Reused => {
            return Err(ApiError::Domain {
                kind: carrot_domain::ErrorKind::Invalid,
                code: "idempotency_key_reused",
                detail: "this Idempotency-Key was used with a different request".into(),
            })
        }
    }
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(IdempotencyKey {
        key: key.clone(),
        request_hash,
    });
    let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
        Ok(response) => response,
        // Outside this task the panic layer would never see it: answer as it would.
        Err(_) => ApiError::Internal("a handler panicked".into()).into_response(),
    };
    finish(&state.pool, user, &key, response).await
}

fn parse_key(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )])
        })
}

/// Keys are per user: the caller's id, if the request carries a valid token.
fn caller(state: &AppState, headers: &HeaderMap) -> Option<Uuid> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|token| state.jwt.verify(token.trim()).ok())
        .map(|claims| claims.sub)
}

fn fingerprint(method: &Method, path: &str, query: Option<&str>, body: &Bytes) -> String {
    let digest = Sha256::new()
        .chain_update(method.as_str())
        .chain_update([0])
        .chain_update(path)
        .chain_update([0])
        .chain_update(query.unwrap_or_default())
        .chain_update([0])
        .chain_update(body)
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a response is a transient refusal rather than a final answer: any 5xx, and
/// the refusals the edge error marks [`Transient`] (429, 409 `concurrent_update`).
fn is_transient(parts: &response::Parts) -> bool {
    parts.status.is_server_error() || parts.extensions.get::<Transient>().is_some()
}

/// Keeps a final response for replay. A transient refusal is not kept: the key becomes
/// `retryable` with its fingerprint, so a retry of the same request runs again (with the
/// same derived ids, so nothing happens twice) and another request with it is still 422.
async fn finish(
    pool: &Db,
    user: Uuid,
    key: &str,
    response: Response,
) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    if is_transient(&parts) {
        store::release(pool, user, key).await?;
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            // No answer to keep: a 500 the client may retry.
            store::release(pool, user, key).await?;
            return Err(ApiError::Internal(Box::new(e)));
        }
    };
    let headers: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.into()))
        })
        .collect();
    store::keep(pool, user, key, parts.status, &bytes, headers).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(status: u16, body: Vec<u8>, headers: &serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let out = response.headers_mut();
    if let Some(stored) = headers.as_object() {
        for (name, value) in stored {
            let (Ok(name), Some(Ok(value))) = (
                header::HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            out.insert(name, value);
        }
    }
    out.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use carrot_domain::ErrorKind;

    fn conflict(code: &'static str) -> ApiError {
        ApiError::Conflict {
            code,
            detail: String::new(),
        }
    }

    #[test]
    fn transient_refusals_are_told_apart_from_final_answers() {
        let cases: Vec<(&str, Response, bool)> = vec![
            (
                "429",
                ApiError::RateLimited { retry_after: 1 }.into_response(),
                true,
            ),
            (
                "409 concurrent_update",
                conflict("concurrent_update").into_response(),
                true,
            ),
            (
                "409 in flight",
                conflict("idempotency_key_in_flight").into_response(),
                true,
            ),
            (
                "503",
                ApiError::Unavailable {
                    code: "payment_unavailable",
                    detail: String::new(),
                    retry_after: 2,
                }
                .into_response(),
                true,
            ),
            (
                "500",
                ApiError::Internal("boom".into()).into_response(),
                true,
            ),
            ("a bare 502", StatusCode::BAD_GATEWAY.into_response(), true),
            ("201", StatusCode::CREATED.into_response(), false),
            (
                "409 username_taken",
                conflict("username_taken").into_response(),
                false,
            ),
            (
                "409 listing_not_available",
                ApiError::Domain {
                    kind: ErrorKind::Conflict,
                    code: "listing_not_available",
                    detail: String::new(),
                }
                .into_response(),
                false,
            ),
            (
                "422",
                ApiError::invalid("price", "too low").into_response(),
                false,
            ),
            ("404", ApiError::NotFound.into_response(), false),
            (
                "402",
                ApiError::PaymentDeclined {
                    reason: String::new(),
                    request_id: Uuid::nil(),
                    payment_id: Uuid::nil(),
                }
                .into_response(),
                false,
            ),
        ];
        for (name, response, transient) in cases {
            let (parts, _) = response.into_parts();
            assert_eq!(is_transient(&parts), transient, "{name}");
        }
    }
}
