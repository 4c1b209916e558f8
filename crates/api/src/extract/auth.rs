//! The authenticated caller, from `Authorization: Bearer <JWT>`: a valid token of a session
//! that was not revoked.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use carrot_domain::UserId;
use std::sync::Arc;

use crate::auth::sessions::Sessions;
use crate::auth::{JwtKeys, Role};
use crate::error::ApiError;
use crate::limits::RateLimits;

/// A caller with a valid access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthUser {
    /// Who.
    pub user_id: UserId,
    /// With what role.
    pub role: Role,
    /// In which session (what logging out ends).
    pub session_id: uuid::Uuid,
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<RateLimits>: FromRef<S>,
    Arc<Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthenticated(
                "an Authorization: Bearer token is required",
            ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthenticated(
                "the Authorization header must be `Bearer <token>`",
            ))?;
        authenticate(token, state).await
    }
}

/// The caller a valid `token` of a live session names, counted against its rate limit.
pub(crate) async fn authenticate<S>(token: &str, state: &S) -> Result<AuthUser, ApiError>
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<RateLimits>: FromRef<S>,
    Arc<Sessions>: FromRef<S>,
{
    let keys = Arc::<JwtKeys>::from_ref(state);
    let claims = keys
        .verify(token)
        .map_err(|_| ApiError::Unauthenticated("the token is invalid or expired"))?;
    // The session first: an ended session's token must not use up its owner's rate limit.
    if !Arc::<Sessions>::from_ref(state).is_live(claims.sid).await? {
        return Err(ApiError::Unauthenticated(
            "the session was ended (logged out)",
        ));
    }
    let user_id = UserId::from_uuid(claims.sub);
    Arc::<RateLimits>::from_ref(state).check_user(user_id)?;
    Ok(AuthUser {
        user_id,
        role: claims.role,
        session_id: claims.sid,
    })
}

/// The caller of the notification stream: the Bearer header, or, for a browser's
/// `EventSource` (which cannot send headers), `?access_token=<JWT>`. Only the stream takes
/// a token in its URL: a URL ends up in proxies' logs and browsers' history, so every other
/// route requires the header (Carrot's own logs record the path, never the query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamUser(pub AuthUser);

/// The longest `access_token` read (a JWT of Carrot's is about 300 bytes).
const MAX_QUERY_TOKEN: usize = 4096;

impl<S> FromRequestParts<S> for StreamUser
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<RateLimits>: FromRef<S>,
    Arc<Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(AUTHORIZATION) {
            return AuthUser::from_request_parts(parts, state)
                .await
                .map(StreamUser);
        }
        let token = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .filter(|t| !t.is_empty() && t.len() <= MAX_QUERY_TOKEN)
            .ok_or(ApiError::Unauthenticated(
                "an Authorization: Bearer token (or, for this stream only, ?access_token=) is required",
            ))?;
        authenticate(token, state).await.map(StreamUser)
    }
}
