//! An operator: an authenticated caller with the admin role.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use crate::auth::{JwtKeys, Role};
use crate::error::ApiError;
use crate::extract::AuthUser;

/// A caller with the admin role; anyone else signed in gets 403.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser(pub AuthUser);

impl<S> FromRequestParts<S> for AdminUser
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<crate::limits::RateLimits>: FromRef<S>,
    Arc<crate::auth::sessions::Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role != Role::Admin {
            return Err(ApiError::Forbidden(
                "this endpoint is for operators (admin role)",
            ));
        }
        Ok(AdminUser(user))
    }
}
