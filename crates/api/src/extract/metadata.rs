//! The metadata every command's events carry, built once per request.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use carrot_domain::metadata::{ACTOR, CAUSATION_ID, CORRELATION_ID, HTTP_REQUEST_ID};
use std::sync::Arc;

use crate::auth::JwtKeys;
use crate::error::ApiError;
use crate::extract::AuthUser;

/// An authenticated command: who acts, and the HTTP request it arrived with.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The caller.
    pub user: AuthUser,
    /// The `x-request-id` of the HTTP request.
    pub http_request_id: Option<String>,
}

impl CommandContext {
    /// Event metadata for a command that belongs to the trade `correlation_id`, if any.
    pub fn metadata(&self, correlation_id: Option<String>) -> HashMap<String, String> {
        let mut meta = HashMap::new();
        meta.insert(ACTOR.to_owned(), self.user.user_id.to_string());
        if let Some(id) = &self.http_request_id {
            meta.insert(HTTP_REQUEST_ID.to_owned(), id.clone());
            meta.insert(CAUSATION_ID.to_owned(), format!("http:{id}"));
        }
        if let Some(id) = correlation_id {
            meta.insert(CORRELATION_ID.to_owned(), id);
        }
        meta
    }
}

impl<S> FromRequestParts<S> for CommandContext
where
    Arc<JwtKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        let http_request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(CommandContext {
            user,
            http_request_id,
        })
    }
}
