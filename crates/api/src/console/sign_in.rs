//! Signing in to the console and out of it. Only admins get a session here: anyone else's
//! right password is answered 403 and opens nothing.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use super::html;
use super::session::{csrf_refused, refused, see_other, with_cookie, ConsoleAdmin};
use crate::auth::Role;
use crate::error::ApiError;
use crate::routes::auth::{credentials, sign_in};
use crate::state::AppState;

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct SignIn {
    username: String,
    password: String,
}

/// A form that only carries its CSRF token.
#[derive(Deserialize)]
pub struct Action {
    #[serde(default)]
    csrf: String,
}

fn form(error: Option<&str>) -> String {
    let error = error
        .map(|e| format!("<p class=\"bad\">{}</p>", html::escape(e)))
        .unwrap_or_default();
    format!(
        "<div class=\"box\">{error}<form method=\"post\" action=\"/console/login\">\
         <p><label>Username<br><input name=\"username\" autocomplete=\"username\" required \
         maxlength=\"32\"></label></p>\
         <p><label>Password<br><input name=\"password\" type=\"password\" \
         autocomplete=\"current-password\" required maxlength=\"128\"></label></p>\
         <p><button type=\"submit\">Sign in</button></p></form></div>"
    )
}

/// `GET /console/login`.
pub async fn show() -> Response {
    html::page(StatusCode::OK, "Sign in to the console", None, &form(None))
}

/// `POST /console/login`: an admin's right password opens a session and sets the cookie.
pub async fn submit(State(state): State<AppState>, Form(body): Form<SignIn>) -> Response {
    let wrong = || {
        let body = form(Some("Unknown username or wrong password."));
        html::page(
            StatusCode::UNAUTHORIZED,
            "Sign in to the console",
            None,
            &body,
        )
    };
    let password = body.password.chars().take(128).collect();
    let (user_id, role) = match credentials(&state, &body.username, password).await {
        Ok(found) => found,
        Err(ApiError::InvalidCredentials) => return wrong(),
        Err(other) => return axum::response::IntoResponse::into_response(other),
    };
    if role != Role::Admin {
        return refused(
            StatusCode::FORBIDDEN,
            "Admins only",
            "This account is not an admin: the console shows nothing to it.",
        );
    }
    match sign_in(&state, user_id, role).await {
        Ok((token, _)) => {
            tracing::info!(operator = %user_id, "signed in to the console");
            let max_age = state.jwt.ttl().num_seconds();
            with_cookie(see_other("/console"), &token, max_age)
        }
        Err(e) => axum::response::IntoResponse::into_response(e),
    }
}

/// `POST /console/logout`: ends the session and removes the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(body): Form<Action>,
) -> Response {
    if !admin.csrf_ok(&body.csrf) {
        return csrf_refused();
    }
    if let Err(e) = state.sessions.revoke(admin.user.session_id).await {
        return axum::response::IntoResponse::into_response(ApiError::from(e));
    }
    with_cookie(see_other("/console/login"), "", 0)
}
