//! The `X-Consistency-Token` a client sends back to read its own writes.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use carrot_projections::Checkpoint;

use crate::error::ApiError;

/// The header's name.
pub const HEADER: &str = "x-consistency-token";

/// The token a GET waits for, if the client sent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencyToken(pub Option<Checkpoint>);

impl<S: Send + Sync> FromRequestParts<S> for ConsistencyToken {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(HEADER) else {
            return Ok(ConsistencyToken(None));
        };
        raw.to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .map(|cp| ConsistencyToken(Some(cp)))
            .ok_or_else(|| {
                ApiError::invalid(
                    "X-Consistency-Token",
                    "must be a consistency_token from a command response",
                )
            })
    }
}
