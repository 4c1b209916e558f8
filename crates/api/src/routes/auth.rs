//! Accounts: sign up, log in, log out (this session or every one), change the password.
//! Accounts and sessions are plain rows, not events (see the migrations).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{closing, password, Role};
use crate::error::{is_unique_violation, ApiError, FieldError, Problem};
use crate::extract::{AuthUser, Json};
use crate::openapi::vocabulary::{IdempotencyHeader, Unauthenticated};
use crate::state::AppState;

/// The account routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/signup", post(signup))
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-all", post(logout_all))
        .route("/auth/password", post(change_password))
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordBody {
    /// The account's password now.
    #[schema(format = Password)]
    current_password: String,
    /// The new one: 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128, format = Password)]
    new_password: String,
}

/// A new account.
#[derive(Deserialize, utoipa::ToSchema)]
struct SignupBody {
    /// 3 to 32 characters of `a-z`, `0-9` and `_`.
    #[schema(
        min_length = 3,
        max_length = 32,
        pattern = "^[a-z0-9_]+$",
        example = "minji"
    )]
    username: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128, format = Password)]
    password: String,
    /// 1 to 50 characters, no control characters (trimmed).
    #[schema(min_length = 1, max_length = 50)]
    display_name: Option<String>,
}

/// Credentials.
#[derive(Deserialize, utoipa::ToSchema)]
struct LoginBody {
    /// The account's username.
    username: String,
    /// Its password.
    #[schema(format = Password)]
    password: String,
}

/// A signed-in account and its bearer token.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenResponse {
    /// The account.
    user_id: Uuid,
    /// The access token (a JWT) for `Authorization: Bearer`.
    token: String,
    /// When the token expires.
    expires_at: chrono::DateTime<chrono::Utc>,
}

/// Whether `username` is one signup would accept (3 to 32 of a-z, 0-9 and _).
fn is_username(username: &str) -> bool {
    (3..=32).contains(&username.len())
        && username
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_username(username: &str, errors: &mut Vec<FieldError>) {
    if !is_username(username) {
        errors.push(FieldError::new(
            "username",
            "must be 3 to 32 characters of a-z, 0-9 and _",
        ));
    }
}

fn check_password(password: &str, errors: &mut Vec<FieldError>) {
    if !(8..=128).contains(&password.chars().count()) {
        errors.push(FieldError::new("password", "must be 8 to 128 characters"));
    }
}

fn check_display_name(name: Option<&str>, errors: &mut Vec<FieldError>) -> Option<String> {
    let name = name?.trim();
    let chars = name.chars().count();
    if !(1..=50).contains(&chars) || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "display_name",
            "must be 1 to 50 characters with no control characters",
        ));
        return None;
    }
    Some(name.to_owned())
}

/// Creates an account and signs it in.
#[utoipa::path(
    post,
    path = "/auth/signup",
    tag = "accounts",
    operation_id = "signup",
    params(IdempotencyHeader),
    request_body = SignupBody,
    responses(
        (status = 201, description = "The account exists; its token.", body = TokenResponse),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 409, description = "`username_taken` (also the answer to a retried signup: \
         `/auth` answers are not kept under an `Idempotency-Key`).",
         body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::openapi::vocabulary::PayloadTooLarge),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: username, password, \
         display_name).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(username = %body.username))]
async fn signup(
    State(state): State<AppState>,
    Json(body): Json<SignupBody>,
) -> Result<(StatusCode, axum::Json<TokenResponse>), ApiError> {
    let mut errors = Vec::new();
    check_username(&body.username, &mut errors);
    check_password(&body.password, &mut errors);
    let display_name = check_display_name(body.display_name.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let hash = password::hash(body.password)
        .await
        .map_err(ApiError::internal)?;
    let user_id = Uuid::new_v4();
    // A name closed at the same time is either a tombstone already or waits for this.
    let mut tx = state.pool.begin().await?;
    closing::lock_username(&mut tx, &body.username).await?;
    let closed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE username = $1)")
            .bind(closing::tombstone(&body.username))
            .fetch_one(&mut *tx)
            .await?;
    if closed {
        return Err(taken());
    }
    let inserted = sqlx::query(
        "INSERT INTO users (user_id, username, password_hash, display_name) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(&body.username)
    .bind(hash)
    .bind(display_name)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => tx.commit().await?,
        Err(e) if is_unique_violation(&e) => return Err(taken()),
        Err(e) => return Err(e.into()),
    }
    let (token, expires_at) = sign_in(&state, user_id, Role::User).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(TokenResponse {
            user_id,
            token,
            expires_at,
        }),
    ))
}

/// Checks that `given` (sent as `field`) is the signed-in user's password: a 422 naming the
/// field when it is not, a 401 when the account has closed meanwhile.
pub(crate) async fn confirm_password(
    state: &AppState,
    user: &AuthUser,
    given: String,
    field: &'static str,
) -> Result<(), ApiError> {
    let stored: Option<String> = sqlx::query_scalar(
        "SELECT password_hash FROM users WHERE user_id = $1 AND closed_at IS NULL",
    )
    .bind(user.user_id.as_uuid())
    .fetch_optional(&state.pool)
    .await?;
    if stored.is_none() {
        return Err(ApiError::Unauthenticated("this account is closed"));
    }
    let matches = password::verify(given, stored)
        .await
        .map_err(ApiError::internal)?;
    match matches {
        true => Ok(()),
        false => Err(ApiError::invalid(field, "is not the account's password")),
    }
}

/// A username in use, or once used by an account since closed (never given out again).
fn taken() -> ApiError {
    ApiError::Conflict {
        code: "username_taken",
        detail: "that username is taken".into(),
    }
}

/// Signs in: a new token for an existing account.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "accounts",
    operation_id = "login",
    params(IdempotencyHeader),
    request_body = LoginBody,
    responses(
        (status = 200, description = "Signed in; the token.", body = TokenResponse),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 401, description = "`invalid_credentials`: unknown username or wrong password \
         (the same answer for both).", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = crate::openapi::vocabulary::PayloadTooLarge),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 422, description = "`validation_failed`: a field is missing or of the wrong \
         type.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(username = %body.username))]
async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginBody>,
) -> Result<axum::Json<TokenResponse>, ApiError> {
    let (user_id, role) = credentials(&state, &body.username, body.password).await?;
    let (token, expires_at) = sign_in(&state, user_id, role).await?;
    Ok(axum::Json(TokenResponse {
        user_id,
        token,
        expires_at,
    }))
}

/// The account `username` and `password` name, and its role; `invalid_credentials` for an
/// unknown name or a wrong password alike (the API's login and the console's).
pub(crate) async fn credentials(
    state: &AppState,
    username: &str,
    password: String,
) -> Result<(Uuid, Role), ApiError> {
    // A name signup would refuse (a NUL byte PostgreSQL cannot even compare, say) names
    // no one: the same answer as an unknown user, without asking the database.
    let row: Option<(Uuid, String, String)> = if is_username(username) {
        sqlx::query_as("SELECT user_id, password_hash, role FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&state.pool)
            .await?
    } else {
        None
    };
    let stored = row.as_ref().map(|(_, hash, _)| hash.clone());
    // Verify even for an unknown username, so both failures look and take the same.
    let matches = password::verify(password, stored)
        .await
        .map_err(ApiError::internal)?;
    let (user_id, role) = match row {
        Some((user_id, _, role)) if matches => (user_id, role),
        _ => return Err(ApiError::InvalidCredentials),
    };
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::Internal(format!("unknown role {role:?} stored").into()))?;
    Ok((user_id, role))
}

/// A new session for `user_id` and its token. Tokens live in wall-clock time whatever the
/// injected clock says: their expiry is checked against the real time, by us and by anyone
/// holding them.
pub(crate) async fn sign_in(
    state: &AppState,
    user_id: Uuid,
    role: Role,
) -> Result<(String, chrono::DateTime<chrono::Utc>), ApiError> {
    let now = chrono::Utc::now();
    let session = state
        .sessions
        .open(user_id, state.jwt.expiry(now))
        .await?
        .ok_or(ApiError::InvalidCredentials)?;
    state
        .jwt
        .issue(user_id, role, session, now)
        .map_err(ApiError::internal)
}

/// Ends this session: its token is refused from now on, on every replica within a second.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "accounts",
    operation_id = "logout",
    params(IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out."),
        (status = 401, response = Unauthenticated),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn logout(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    state.sessions.revoke(user.session_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller, this one included (a lost phone, a shared computer).
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    tag = "accounts",
    operation_id = "logout_all",
    params(IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session ended."),
        (status = 401, response = Unauthenticated),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn logout_all(State(state): State<AppState>, user: AuthUser) -> Result<StatusCode, ApiError> {
    let ended = state
        .sessions
        .revoke_all(user.user_id.as_uuid(), None)
        .await?;
    tracing::info!(sessions = ended, "logged out everywhere");
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the caller's password, and ends every other session (this one goes on).
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "accounts",
    operation_id = "change_password",
    params(IdempotencyHeader),
    request_body = PasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Changed; every other session ended."),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 413, response = crate::openapi::vocabulary::PayloadTooLarge),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: current_password, \
         which is not the account's, or new_password).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(user = %user.user_id))]
async fn change_password(
    State(state): State<AppState>,
    user: AuthUser,
    Json(body): Json<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    if !(8..=128).contains(&body.new_password.chars().count()) {
        return Err(ApiError::invalid(
            "new_password",
            "must be 8 to 128 characters",
        ));
    }
    confirm_password(&state, &user, body.current_password, "current_password").await?;
    let hash = password::hash(body.new_password)
        .await
        .map_err(ApiError::internal)?;
    let ended = state
        .sessions
        .replace_password(user.user_id.as_uuid(), hash, user.session_id)
        .await?
        .ok_or(ApiError::Unauthenticated("this account is closed"))?;
    tracing::info!(sessions = ended, "password changed; other sessions ended");
    Ok(StatusCode::NO_CONTENT)
}
