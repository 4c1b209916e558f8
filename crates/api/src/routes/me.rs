//! The caller's own account: `GET /me/export`, everything Carrot holds about them as one
//! JSON document (their right to take their data).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use carrot_projections::views::catalog::CATALOG;
use carrot_projections::views::export::{self, Holdings};
use carrot_projections::views::mypage::MYPAGE;
use carrot_projections::views::notifications::NOTIFICATIONS;
use carrot_projections::views::payments::PAYMENTS;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::{await_views, AuthUser, ConsistencyToken, Freshness};
use crate::openapi::vocabulary::Unauthenticated;
use crate::state::AppState;

/// The caller's routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/me/export", get(export_all))
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
    let freshness = await_views(&state, &views, token).await?;
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
    let holdings = export::holdings(&state.pool, user.user_id).await?;
    let export = Export {
        exported_at: Utc::now(),
        account,
        sessions,
        holdings,
    };
    Ok((freshness, Json(export)))
}
