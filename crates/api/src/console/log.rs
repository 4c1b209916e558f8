//! The stream browser: the global log's tail, filtered by aggregate type and event type and
//! paged by checkpoint (oldest first from a place, or the newest page), and one aggregate's
//! events in order; each event with its payload and metadata (what people typed masked, as
//! on a trade's page: revealing is done there, audited).

use std::fmt::Write;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use carrot_domain::schema::EVENTS;
use carrot_projections::log::{events_of_aggregate, Checkpoint, StoredEvent};
use serde::Deserialize;

use super::html::{self, escape};
use super::session::ConsoleAdmin;
use super::trade::masked;
use crate::error::ApiError;
use crate::state::AppState;

/// Events on a page.
const PAGE: i64 = 50;

/// The tail's filters and place.
#[derive(Deserialize, Default)]
pub struct Tail {
    #[serde(default)]
    aggregate: String,
    #[serde(default)]
    event: String,
    /// Show the page before this checkpoint (`<transaction_id>.<global_position>`).
    #[serde(default)]
    before: String,
}

/// The events as table rows (headers: [`HEADERS`]), what people typed masked unless
/// `revealed`.
pub fn event_rows(
    events: &[StoredEvent],
    revealed: bool,
) -> impl Iterator<Item = Vec<String>> + '_ {
    events.iter().map(move |e| {
        let meta = |k: &str| escape(e.meta(k).unwrap_or("-"));
        vec![
            format!("<code>{}</code>", e.checkpoint),
            format!(
                "<a href=\"/console/streams/{t}/{i}\">{t}</a> #{}<br><code>{i}</code>",
                e.sequence,
                t = escape(&e.aggregate_type),
                i = escape(&e.aggregate_id)
            ),
            format!(
                "<b>{}</b> {}<br><span class=\"muted\">{}</span>",
                escape(&e.event_type),
                escape(&e.event_version),
                e.recorded_at.to_rfc3339()
            ),
            format!(
                "actor {}<br>correlation {}<br>causation {}",
                meta("actor"),
                meta("correlation_id"),
                meta("causation_id")
            ),
            html::json_block(&masked(&e.event_type, (*e.payload).clone(), revealed)),
        ]
    })
}

fn aggregate_types() -> impl Iterator<Item = &'static str> {
    EVENTS.iter().map(|(a, _)| *a)
}

fn event_types() -> impl Iterator<Item = &'static str> {
    EVENTS.iter().flat_map(|(_, v)| v.iter().map(|(t, _)| *t))
}

/// The columns of an event table.
pub const HEADERS: [&str; 5] = ["checkpoint", "aggregate", "event", "metadata", "payload"];

fn select(name: &str, chosen: &str, options: impl IntoIterator<Item = &'static str>) -> String {
    let mut html = format!("<select name=\"{name}\"><option value=\"\">any</option>");
    for option in options {
        let selected = if option == chosen { " selected" } else { "" };
        let _ = write!(html, "<option{selected}>{option}</option>");
    }
    html.push_str("</select>");
    html
}

/// `GET /console/log`: the newest events, or those before `before`, matching the filters.
pub async fn tail(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(tail): Query<Tail>,
) -> Result<Response, ApiError> {
    let aggregate = aggregate_types().find(|a| *a == tail.aggregate);
    let event = event_types().find(|e| *e == tail.event);
    let before = tail.before.parse::<Checkpoint>().ok();
    let newest_first: Vec<StoredEvent> =
        carrot_projections::log::tail(&state.pool, aggregate, event, before, PAGE).await?;
    let mut body = format!(
        "<div class=\"box\"><form method=\"get\" action=\"/console/log\">Aggregate {} Event {} \
         <button type=\"submit\">Filter</button></form></div>",
        select("aggregate", aggregate.unwrap_or(""), aggregate_types()),
        select("event", event.unwrap_or(""), event_types()),
    );
    body.push_str(&html::table(&HEADERS, event_rows(&newest_first, false)));
    if let Some(last) = newest_first
        .last()
        .filter(|_| newest_first.len() as i64 == PAGE)
    {
        let _ = write!(
            body,
            "<p><a href=\"/console/log?aggregate={}&event={}&before={}\">Older</a></p>",
            escape(aggregate.unwrap_or("")),
            escape(event.unwrap_or("")),
            last.checkpoint
        );
    }
    Ok(admin.page("The log, newest first", &body))
}

/// `GET /console/streams/{type}/{id}`: one aggregate's events in order.
pub async fn stream(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path((aggregate_type, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if !aggregate_types().any(|a| a == aggregate_type) || id.len() > 64 {
        return Err(ApiError::NotFound);
    }
    let events = events_of_aggregate(&state.pool, &aggregate_type, &id).await?;
    let body = html::table(&HEADERS, event_rows(&events, false));
    let title = format!("{aggregate_type} {id}");
    Ok(admin.page(&title, &body))
}
