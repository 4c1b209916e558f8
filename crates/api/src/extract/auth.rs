//! The authenticated caller, from `Authorization: Bearer <JWT>`.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use carrot_domain::UserId;
use std::sync::Arc;

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
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<RateLimits>: FromRef<S>,
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
        let keys = Arc::<JwtKeys>::from_ref(state);
        let claims = keys
            .verify(token)
            .map_err(|_| ApiError::Unauthenticated("the token is invalid or expired"))?;
        let user_id = UserId::from_uuid(claims.sub);
        Arc::<RateLimits>::from_ref(state).check_user(user_id)?;
        Ok(AuthUser {
            user_id,
            role: claims.role,
        })
    }
}
