//! Who is signed in to the console: an HttpOnly, SameSite=Strict cookie holding an access
//! token of a session (the same sessions as the API's: signing out, logging out
//! everywhere and closing the account end it), of an admin. Every action carries the CSRF
//! token of that session (`JwtKeys::csrf_token`) in its form.

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::html::{self, Operator};
use crate::auth::Role;
use crate::error::ApiError;
use crate::extract::auth::authenticate;
use crate::extract::AuthUser;
use crate::state::AppState;
use carrot_projections::postgres::Db;

/// The cookie's name.
const COOKIE_NAME: &str = "carrot_console";

/// A signed-in admin, and their session's CSRF token.
pub struct ConsoleAdmin {
    /// Who.
    pub user: AuthUser,
    /// What their forms carry.
    pub csrf: String,
}

impl ConsoleAdmin {
    /// What an action's command runs as: the operator, with no API request id or
    /// idempotency key (a form posted twice is refused by the aggregate or finds nothing).
    pub fn command_context(&self) -> crate::extract::CommandContext {
        crate::extract::CommandContext {
            user: self.user,
            http_request_id: None,
            idempotency: None,
        }
    }

    /// The frame's view of them.
    pub fn operator(&self) -> Operator<'_> {
        Operator {
            user_id: self.user.user_id.to_string(),
            csrf: &self.csrf,
        }
    }

    /// A page of the console for this operator (200).
    pub fn page(&self, title: &str, body: &str) -> Response {
        html::page(StatusCode::OK, title, Some(&self.operator()), body)
    }

    /// Why a form is refused, if it is: its CSRF token is not this session's (403), or,
    /// for an action that asks for a confirmation (`confirm`), it is not confirmed (422).
    pub fn refusal(&self, csrf: &str, confirm: Option<&str>) -> Option<Response> {
        if !self.csrf_ok(csrf) {
            return Some(csrf_refused());
        }
        if confirm.is_some_and(|c| c != "yes") {
            let unconfirmed = ApiError::invalid("confirm", "tick the box to confirm");
            return Some(unconfirmed.into_response());
        }
        None
    }

    /// Records what the operator did to `subject` (`operator_audit`).
    pub async fn audit(&self, pool: &Db, action: &str, subject: String) -> Result<(), sqlx::Error> {
        record(pool, self.user.user_id.as_uuid(), action, subject).await
    }

    /// Whether a form's token is this session's (compared in constant time).
    pub fn csrf_ok(&self, given: &str) -> bool {
        let (a, b) = (self.csrf.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
    }
}

/// Records that `operator` did `action` to `subject` (`operator_audit`); for work that runs
/// in a task of its own, without the request.
pub async fn record(
    pool: &Db,
    operator: uuid::Uuid,
    action: &str,
    subject: String,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO operator_audit (operator_id, action, subject) VALUES ($1, $2, $3)")
        .bind(operator)
        .bind(action)
        .bind(subject)
        .execute(pool)
        .await?;
    Ok(())
}

/// The answer to a form whose CSRF token is missing or not its session's.
pub fn csrf_refused() -> Response {
    refused(
        StatusCode::FORBIDDEN,
        "Refused",
        "The form's CSRF token is missing or not this session's: reload the page and try again.",
    )
}

/// A page that refuses: no console navigation, a link to sign in.
pub fn refused(status: StatusCode, title: &str, why: &str) -> Response {
    let body = format!(
        "<div class=\"box\"><p>{}</p><p><a href=\"/console/login\">Sign in</a></p></div>",
        html::escape(why)
    );
    html::page(status, title, None, &body)
}

/// The value of the console's cookie in `parts`, if any.
fn cookie(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty() && v.len() <= 4096)
}

impl FromRequestParts<AppState> for ConsoleAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let signed_out = || {
            refused(
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "The console is for operators: sign in with an admin account.",
            )
        };
        let token = cookie(parts).ok_or_else(signed_out)?;
        let user = authenticate(token, state).await.map_err(|_| signed_out())?;
        if user.role != Role::Admin {
            return Err(refused(
                StatusCode::FORBIDDEN,
                "Admins only",
                "This account is not an admin: the console shows nothing to it.",
            ));
        }
        let csrf = state
            .jwt
            .csrf_token(user.session_id)
            .map_err(|_| signed_out())?;
        Ok(ConsoleAdmin { user, csrf })
    }
}

/// `response` with the console's cookie set to `token` for `max_age` seconds (0: removed).
pub fn with_cookie(mut response: Response, token: &str, max_age: i64) -> Response {
    let cookie = format!(
        "{COOKIE_NAME}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}"
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// A redirect after a form (303: the browser follows with a GET).
pub fn see_other(to: &str) -> Response {
    match HeaderValue::from_str(to) {
        Ok(to) => (StatusCode::SEE_OTHER, [(axum::http::header::LOCATION, to)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
