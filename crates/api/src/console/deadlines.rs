//! Deadlines: the saga's timers still pending (requests to expire, trades to complete
//! automatically, checks), soonest first.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::html::{self, escape};
use super::session::ConsoleAdmin;
use crate::error::ApiError;
use crate::state::AppState;

/// How many the page shows.
const SHOWN: i64 = 200;

/// What each kind of timer does when it fires.
fn meaning(kind: &str) -> &'static str {
    match kind {
        "expire" => "the request expires unanswered; the buyer is refunded",
        "complete" => "the trade completes automatically; the seller is paid out",
        "check_listing" => "the listing's reservation is checked",
        "check_placement" => "a placement whose answer was lost is checked",
        "reconcile" => "the payment is reconciled with the gateway",
        _ => "",
    }
}

/// `GET /console/deadlines`.
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
) -> Result<Response, ApiError> {
    let due: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT request_id, kind, due_at FROM settlement.deadlines ORDER BY due_at LIMIT $1",
    )
    .bind(SHOWN)
    .fetch_all(&state.pool)
    .await?;
    let now = Utc::now();
    let rows = due.into_iter().map(|(request, kind, at)| {
        let left = at - now;
        vec![
            at.to_rfc3339(),
            if left.num_seconds() < 0 {
                "<span class=\"bad\">overdue</span>".to_owned()
            } else {
                format!("in {} min", left.num_minutes())
            },
            format!(
                "<b>{}</b><br><span class=\"muted\">{}</span>",
                escape(&kind),
                meaning(&kind)
            ),
            format!("<a href=\"/console/find?q={request}\"><code>{request}</code></a>"),
        ]
    });
    let body = html::table(&["due", "", "what happens", "trade"], rows);
    Ok(admin.page("Deadlines, soonest first", &body))
}
