//! `GET /`: what this is, whether it is healthy, and where to go (the API's documentation
//! and the operator console).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::html;
use crate::state::AppState;

/// The landing page.
pub async fn show(State(state): State<AppState>) -> Response {
    let database = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&state.pool)
        .await
        .is_ok();
    let health = if database {
        "<span class=\"ok\">healthy</span>: the database answers"
    } else {
        "<span class=\"bad\">unhealthy</span>: the database does not answer"
    };
    let body = format!(
        "<div class=\"box\"><p>Carrot is the event-sourced backend of a second-hand marketplace: \
         sellers list items, buyers request and pay in one call, the money is held in escrow \
         until the trade completes, and a saga pays the seller out or refunds the buyer.</p>\
         <p>Status: {health} (<a href=\"/health/ready\">readiness</a>, \
         <a href=\"/metrics\">metrics</a>).</p>\
         <ul><li><a href=\"/docs\">API documentation</a> (OpenAPI)</li>\
         <li><a href=\"/console\">Operator console</a> (admins)</li></ul></div>"
    );
    html::page(StatusCode::OK, "Carrot", None, &body)
}
