//! The `X-Consistency-Token` a client sends back to read its own writes, the wait for the
//! views to reach it, and the `X-Consistency` header that says whether they did.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};
use carrot_projections::postgres::Db;
use carrot_projections::Checkpoint;

use crate::error::ApiError;
use crate::state::AppState;

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

/// Whether a read waited for, and reached, the client's consistency token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// No token was sent.
    Unasked,
    /// The views had reached the token.
    Consistent,
    /// The wait ran out; the answer may predate the client's write.
    Stale,
}

impl IntoResponseParts for Freshness {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        let value = match self {
            Freshness::Unasked => return Ok(res),
            Freshness::Consistent => "consistent",
            Freshness::Stale => "stale",
        };
        res.headers_mut()
            .insert("x-consistency", HeaderValue::from_static(value));
        Ok(res)
    }
}

/// Chooses the pool a read uses (the read replica while it keeps up, or the primary), and
/// waits there (bounded) until every view in `views` has applied the event the token names.
/// The read must use the pool returned: the wait says nothing about another one.
pub async fn await_views<'a>(
    state: &'a AppState,
    views: &[&str],
    token: ConsistencyToken,
) -> Result<(Freshness, &'a Db), ApiError> {
    let pool = state.reads.choose();
    let Some(token) = token.0 else {
        return Ok((Freshness::Unasked, pool.db));
    };
    let reached = carrot_projections::views::consistency::wait_on(
        pool.db,
        pool.primary,
        views,
        token,
        state.consistency,
    )
    .await?;
    let freshness = if reached {
        Freshness::Consistent
    } else {
        Freshness::Stale
    };
    Ok((freshness, pool.db))
}
