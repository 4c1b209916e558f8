//! The HTTP routes, one module per resource, each owning its `router()`.

pub mod admin;
pub mod auth;
pub mod docs;
pub mod health;
pub mod listings;
pub mod mypage;
pub mod notifications;
pub mod payments;
pub mod quarantine;
pub mod requests;
pub mod transfers;

use axum::http::HeaderValue;
use axum::response::{IntoResponseParts, ResponseParts};

use crate::error::ApiError;
use crate::extract::ConsistencyToken;
use crate::state::AppState;

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

/// Waits (bounded) until every view in `views` has applied the event the token names.
pub async fn await_views(
    state: &AppState,
    views: &[&str],
    token: ConsistencyToken,
) -> Result<Freshness, ApiError> {
    let Some(token) = token.0 else {
        return Ok(Freshness::Unasked);
    };
    let reached =
        carrot_projections::consistency::wait_for(&state.pool, views, token, state.consistency)
            .await?;
    Ok(if reached {
        Freshness::Consistent
    } else {
        Freshness::Stale
    })
}

/// A list's `?limit=`: 1 to 100, 20 when absent.
pub fn page_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    match raw.map(str::parse::<i64>) {
        None => Ok(20),
        Some(Ok(n)) if (1..=100).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            "must be a whole number from 1 to 100",
        )),
    }
}
