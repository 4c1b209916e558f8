//! The operator console, served by `carrot serve` under `/console` (and the landing page at
//! `/`): server-rendered HTML, its styles and its one small script inline, nothing fetched
//! from elsewhere. Admins only, signed in with a cookie (`session.rs`); every action
//! carries a CSRF token and asks for a confirmation.
//!
//! Pages: the overview, live (`overview.rs`); a trade found by any of its ids
//! (`trade.rs`); the log and one aggregate's stream (`log.rs`); dead letters
//! (`dead_letters.rs`, `transfers.rs`); deadlines (`deadlines.rs`); rebuilds of a view,
//! followed live (`rebuilds.rs`).

mod dead_letters;
mod deadlines;
pub mod html;
mod landing;
mod log;
mod overview;
pub mod rebuilds;
pub mod session;
mod sign_in;
mod trade;
mod transfers;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// The console's routes and the landing page.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(landing::show))
        .route("/console", get(overview::show))
        .route("/console/overview/stream", get(overview::stream))
        .route("/console/login", get(sign_in::show).post(sign_in::submit))
        .route("/console/logout", post(sign_in::sign_out))
        .route("/console/find", get(trade::find))
        .route("/console/reveal", post(trade::reveal))
        .route("/console/log", get(log::tail))
        .route("/console/streams/{aggregate}/{id}", get(log::stream))
        .route("/console/dead-letters", get(dead_letters::list))
        .route("/console/dead-letters/{id}", get(dead_letters::show))
        .route(
            "/console/dead-letters/{id}/retry",
            post(dead_letters::retry),
        )
        .route(
            "/console/dead-letters/{id}/discard",
            post(dead_letters::discard),
        )
        .route(
            "/console/payments/{id}/retry-transfer",
            post(transfers::retry),
        )
        .route(
            "/console/payments/{id}/settle-outside",
            post(transfers::settle_outside),
        )
        .route("/console/deadlines", get(deadlines::list))
        .route(
            "/console/rebuilds",
            get(rebuilds::list).post(rebuilds::start),
        )
        .route("/console/rebuilds/{id}", get(rebuilds::show))
        .route("/console/rebuilds/{id}/stream", get(rebuilds::stream))
}
