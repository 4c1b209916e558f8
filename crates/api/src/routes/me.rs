//! The caller's own account: `GET /me/export`, everything Carrot holds about them as one
//! JSON document (their right to take their data), and `DELETE /me`, closing it (their
//! right to leave and be forgotten: `auth/closing.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use carrot_projections::views::catalog::CATALOG;
use carrot_projections::views::export::{self, Holdings};
use carrot_projections::views::mypage::MYPAGE;
use carrot_projections::views::notifications::NOTIFICATIONS;
use carrot_projections::views::payments::PAYMENTS;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::closing;
use crate::error::{ApiError, Problem};
use crate::extract::Json as JsonBody;
use crate::extract::{await_views, AuthUser, ConsistencyToken, Freshness};
use crate::openapi::vocabulary::Unauthenticated;
use crate::routes::auth::confirm_password;
use crate::state::AppState;

/// The caller's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me", delete(close_account))
        .route("/me/export", get(export_all))
}

/// The account as stored (the password only as the fact that one is set).
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Account {
    /// The account.
    user_id: Uuid,
    /// Its username.
    username: String,
    /// Its display name, if any.
    display_name: Option<String>,
    /// `user` or `admin`.
    role: String,
    /// When it was created.
    created_at: DateTime<Utc>,
}

/// A session of the account.
#[derive(Serialize, sqlx::FromRow, utoipa::ToSchema)]
struct Session {
    /// The session.
    session_id: Uuid,
    /// When it began (a sign-up or a log-in).
    created_at: DateTime<Utc>,
    /// When its tokens expire.
    expires_at: DateTime<Utc>,
    /// When it was ended, if it was.
    revoked_at: Option<DateTime<Utc>>,
}

/// Everything Carrot holds about the caller.
#[derive(Serialize, utoipa::ToSchema)]
struct Export {
    /// When this document was made.
    exported_at: DateTime<Utc>,
    /// The account.
    account: Account,
    /// Its sessions, oldest first.
    sessions: Vec<Session>,
    /// What the views and the log hold: listings, requests, payments, notifications, and the
    /// events of those listings, requests and payments.
    #[serde(flatten)]
    holdings: Holdings,
}

/// Everything Carrot holds about the caller, as one JSON document.
///
/// The account and its sessions (no password: an argon2 hash is stored, and nothing of it
/// is shown), the listings they sell, the requests they made and those made to them (with
/// their payments), the payments of both, their notifications, and every event of those
/// listings, requests and payments, in log order.
#[utoipa::path(
    get,
    path = "/me/export",
    tag = "accounts",
    operation_id = "export_my_data",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Everything held about the caller.", body = Export),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed`: a malformed `X-Consistency-Token`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn export_all(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
) -> Result<(Freshness, Json<Export>), ApiError> {
    let views = [CATALOG, MYPAGE, PAYMENTS, NOTIFICATIONS];
    let (freshness, views) = await_views(&state, &views, token).await?;
    let account: Account = sqlx::query_as(
        "SELECT user_id, username, display_name, role, created_at FROM users WHERE user_id = $1",
    )
    .bind(user.user_id.as_uuid())
    .fetch_optional(&state.pool)
    .await?
    .ok_or(ApiError::Unauthenticated("the account no longer exists"))?;
    let sessions: Vec<Session> = sqlx::query_as(
        "SELECT session_id, created_at, expires_at, revoked_at FROM sessions
          WHERE user_id = $1 ORDER BY created_at, session_id",
    )
    .bind(user.user_id.as_uuid())
    .fetch_all(&state.pool)
    .await?;
    let holdings = export::holdings(views, user.user_id).await?;
    let export = Export {
        exported_at: Utc::now(),
        account,
        sessions,
        holdings,
    };
    Ok((freshness, Json(export)))
}

/// What confirms closing the account.
#[derive(Deserialize, utoipa::ToSchema)]
struct CloseBody {
    /// The account's password.
    #[schema(example = "the account's own password")]
    password: String,
}

/// Closes the caller's account, for good.
///
/// Refused while they are in a trade (a request open, or money held in escrow for or from
/// them), with those trades listed. Otherwise every session ends, their listings still on
/// sale are withdrawn, and everything they typed (titles, descriptions, categories,
/// reasons) reads `[erased]` from now on, everywhere: their key is destroyed. The other
/// party of each of their past trades keeps it (amounts, statuses, dates). The username can
/// never log in or be taken again.
#[utoipa::path(
    delete,
    path = "/me",
    tag = "accounts",
    operation_id = "close_my_account",
    request_body = CloseBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Closed; every session ended, personal data erased."),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 409, description = "`open_trades`: still in a trade; `open_trades` lists \
         them.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::openapi::vocabulary::PayloadTooLarge),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: password, which is \
         not the account's).", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`views_catching_up`: try again after `Retry-After`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn close_account(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CloseBody>,
) -> Result<StatusCode, ApiError> {
    confirm_password(&state, &user, body.password, "password").await?;
    let id = user.user_id.as_uuid();
    // In a task of its own: a client hanging up must not stop a closing halfway.
    let (pool, write) = (state.pool.clone(), state.write.clone());
    let revoked = tokio::spawn(async move { closing::close(&pool, &write, id, id).await })
        .await
        .map_err(ApiError::internal)??;
    state.sessions.forget(revoked);
    tracing::info!("account closed");
    Ok(StatusCode::NO_CONTENT)
}
