//! Idempotent POSTs (API.md, "Idempotency"): the first response to a user's
//! `Idempotency-Key` is kept in Postgres and replayed for the same key and body; the same
//! key with another body is 422 `idempotency_key_reused`; a key whose first call is still
//! running is 409.
//!
//! cqrs-es commits events in its own transaction, so the stored response alone cannot make
//! a retry safe after a crash between the commit and the store. The key therefore also
//! reaches the handler ([`IdempotencyKey`]), which derives the ids of what it creates from
//! it: a retry addresses the same listing, request and payment, which the aggregates treat
//! as already done, and the gateway sees the same payment idempotency key.

use carrot_projections::postgres::Db;
use std::time::Duration;

use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::startup::BODY_LIMIT_BYTES;
use crate::state::AppState;

/// The request header.
pub const HEADER: &str = "idempotency-key";
/// Marks a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// A first call still `in_flight` after this long was abandoned (its process died): a
/// retry may take the key over. Safe, because the handler's ids come from the key.
const ABANDONED_AFTER: Duration = Duration::from_secs(60);
/// Keys are kept at least 24 h (API.md); older ones are purged after this.
pub const KEPT_FOR: Duration = Duration::from_secs(48 * 3600);
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

/// What the stored row says about a key.
enum Stored {
    /// This call owns the key now.
    Claimed,
    /// The first call's response, to replay.
    Done {
        status: u16,
        body: Vec<u8>,
        headers: serde_json::Value,
    },
    /// Another call with the key is running.
    InFlight,
    /// The key was used with another body.
    Reused,
}

/// The middleware: a no-op without the header or outside POST.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(HEADER) {
        return next.run(request).await;
    }
    match run(&state, request, next).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn run(state: &AppState, request: Request, next: Next) -> Result<Response, ApiError> {
    let key = parse_key(request.headers())?;
    let user = match caller(state, request.headers()) {
        Some(user) => user,
        // Only signup and login are for callers without a token; anything else answers 401
        // from its handler, and an anonymous caller must not fill the key store (nor learn
        // whether a key was used) with calls that do nothing.
        None if request.uri().path().starts_with("/auth/") => Uuid::nil(),
        None => return Ok(next.run(request).await),
    };
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, BODY_LIMIT_BYTES)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let request_hash = fingerprint(&parts.method, parts.uri.path(), parts.uri.query(), &body);
    match claim(&state.pool, user, &key, &request_hash).await? {
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
    let response = next.run(request).await;
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

/// Keys are per user: the caller's id, if the request carries a valid token. `/auth` calls
/// (no token; the body holds the secret) are scoped to no one, the nil id.
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

type Row = (
    String,
    String,
    Option<i16>,
    Option<Vec<u8>>,
    Option<serde_json::Value>,
    bool,
);

async fn claim(pool: &Db, user: Uuid, key: &str, hash: &str) -> Result<Stored, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (user_id, key, request_hash, state)
         VALUES ($1, $2, $3, 'in_flight') ON CONFLICT DO NOTHING",
    )
    .bind(user)
    .bind(key)
    .bind(hash)
    .execute(pool)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Stored::Claimed);
    }
    let row: Option<Row> = sqlx::query_as(
        "SELECT request_hash, state, response_status, response_body, response_headers,
                created_at < now() - make_interval(secs => $3)
           FROM idempotency_keys WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(ABANDONED_AFTER.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    let Some((stored_hash, state, status, body, headers, abandoned)) = row else {
        // Purged between the two statements: start again.
        return Box::pin(claim(pool, user, key, hash)).await;
    };
    if stored_hash != hash {
        return Ok(Stored::Reused);
    }
    match (state.as_str(), status, body) {
        ("done", Some(status), Some(body)) => Ok(Stored::Done {
            status: status as u16,
            body,
            headers: headers.unwrap_or_default(),
        }),
        _ if abandoned => {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = now()
                  WHERE user_id = $1 AND key = $2 AND state = 'in_flight'
                    AND created_at < now() - make_interval(secs => $3)",
            )
            .bind(user)
            .bind(key)
            .bind(ABANDONED_AFTER.as_secs_f64())
            .execute(pool)
            .await?;
            Ok(if taken.rows_affected() == 1 {
                Stored::Claimed
            } else {
                Stored::InFlight
            })
        }
        _ => Ok(Stored::InFlight),
    }
}

/// Keeps the response for replay, except a server-side failure: then the key is freed so
/// a retry runs again (with the same derived ids, so nothing happens twice).
async fn finish(
    pool: &Db,
    user: Uuid,
    key: &str,
    response: Response,
) -> Result<Response, ApiError> {
    let (parts, body) = response.into_parts();
    if parts.status.is_server_error() {
        sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2")
            .bind(user)
            .bind(key)
            .execute(pool)
            .await?;
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let headers: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = parts.headers.get(name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.into()))
        })
        .collect();
    sqlx::query(
        "UPDATE idempotency_keys
            SET state = 'done', response_status = $3, response_body = $4, response_headers = $5
          WHERE user_id = $1 AND key = $2",
    )
    .bind(user)
    .bind(key)
    .bind(parts.status.as_u16() as i16)
    .bind(bytes.as_ref())
    .bind(serde_json::Value::Object(headers))
    .execute(pool)
    .await?;
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

/// Deletes keys older than [`KEPT_FOR`]; returns how many.
pub async fn purge_expired(pool: &Db) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(KEPT_FOR.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
