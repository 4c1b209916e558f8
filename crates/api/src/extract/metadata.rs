//! The metadata every command's events carry, built once per request.

use std::collections::HashMap;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use carrot_domain::metadata::{
    ACTOR, CAUSATION_ID, CORRELATION_ID, HTTP_REQUEST_ID, IDEMPOTENCY_KEY,
};
use std::sync::Arc;
use uuid::Uuid;

use crate::auth::JwtKeys;
use crate::error::ApiError;
use crate::extract::AuthUser;
use crate::idempotency::IdempotencyKey;

/// An authenticated command: who acts, and the HTTP request it arrived with.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// The caller.
    pub user: AuthUser,
    /// The `x-request-id` of the HTTP request.
    pub http_request_id: Option<String>,
    /// The request's `Idempotency-Key`, if it sent one.
    pub idempotency: Option<IdempotencyKey>,
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
        if let Some(key) = &self.idempotency {
            meta.insert(IDEMPOTENCY_KEY.to_owned(), key.as_str().to_owned());
        }
        meta
    }

    /// Whether the ids of what this command creates are new for certain (random, no
    /// idempotency key): the write side may skip loading them.
    pub fn ids_are_fresh(&self) -> bool {
        self.idempotency.is_none()
    }

    /// The id of something this command creates (`purpose` names which): derived from the
    /// idempotency key when there is one, so a retry addresses the same thing; else random.
    pub fn new_id(&self, purpose: &str) -> Uuid {
        match &self.idempotency {
            Some(key) => key.derive_id(self.user.user_id.as_uuid(), purpose),
            None => Uuid::new_v4(),
        }
    }
}

impl<S> FromRequestParts<S> for CommandContext
where
    Arc<JwtKeys>: FromRef<S>,
    Arc<crate::limits::RateLimits>: FromRef<S>,
    Arc<crate::auth::sessions::Sessions>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        // `request_id::bound` has already replaced an id out of bounds; checked again so
        // that nothing unbounded reaches the log's metadata even if that layer moves.
        let http_request_id = parts
            .headers
            .get(&crate::request_id::HEADER)
            .filter(|v| crate::request_id::is_acceptable(v.as_bytes()))
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let idempotency = parts.extensions.get::<IdempotencyKey>().cloned();
        Ok(CommandContext {
            user,
            http_request_id,
            idempotency,
        })
    }
}
