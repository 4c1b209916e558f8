//! "Where is my money?": find a trade by its request, listing, payment or user id, or a
//! username, and see all of it: the request, listing and payment with their statuses, every
//! event of the three aggregates in log order with its metadata, the saga's commands (its
//! outbox rows, with attempts and errors), and the notifications sent. What people typed is
//! masked until the operator reveals it, and each reveal is recorded (`operator_audit`).

use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use carrot_domain::schema::personal;
use carrot_projections::log::events_of_trade;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::html::{self, escape};
use super::log::{event_rows, HEADERS};
use super::session::{csrf_refused, ConsoleAdmin};
use crate::error::ApiError;
use crate::state::AppState;

/// What was asked for.
#[derive(Deserialize, Default)]
pub struct Find {
    #[serde(default)]
    q: String,
}

/// A reveal: the CSRF token and the trade.
#[derive(Deserialize)]
pub struct Reveal {
    #[serde(default)]
    csrf: String,
    request_id: Uuid,
}

/// How a masked value reads.
const MASK: &str = "•••• (masked)";

/// A saga command of the trade: id, status, attempts, outcome, last error, last change.
type OutboxRow = (
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

type RequestRow = (
    Uuid,
    Uuid,
    Uuid,
    Uuid,
    i64,
    String,
    Option<String>,
    Uuid,
    String,
    DateTime<Utc>,
);

/// The requests `q` names (a request, listing, payment or user id, or a username), newest
/// first, at most 20.
async fn requests_named(state: &AppState, q: &str) -> Result<Vec<RequestRow>, ApiError> {
    let id = match Uuid::try_parse(q.trim()) {
        Ok(id) => Some(id),
        Err(_) => {
            sqlx::query_scalar("SELECT user_id FROM users WHERE username = $1")
                .bind(q.trim())
                .fetch_optional(&state.pool)
                .await?
        }
    };
    let Some(id) = id else {
        return Ok(Vec::new());
    };
    Ok(sqlx::query_as(
        "SELECT request_id, listing_id, buyer_id, seller_id, price, status, reason, payment_id,
                payment_status, created_at
           FROM mypage.requests
          WHERE request_id = $1 OR listing_id = $1 OR payment_id = $1 OR buyer_id = $1
             OR seller_id = $1
          ORDER BY created_at DESC LIMIT 20",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?)
}

fn search_form(q: &str) -> String {
    format!(
        "<div class=\"box\"><form method=\"get\" action=\"/console/find\">\
         <label>Request, listing, payment or user id, or a username<br>\
         <input name=\"q\" value=\"{}\" size=\"40\" maxlength=\"64\" required></label> \
         <button type=\"submit\">Find</button></form></div>",
        escape(q)
    )
}

/// `GET /console/find?q=`.
pub async fn find(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Query(find): Query<Find>,
) -> Result<Response, ApiError> {
    let q: String = find.q.chars().take(64).collect();
    let mut body = search_form(&q);
    if q.trim().is_empty() {
        return Ok(admin.page("Find a trade", &body));
    }
    let found = requests_named(&state, &q).await?;
    match found.as_slice() {
        [] => body.push_str("<p>No trade found for that.</p>"),
        [one] if one.0.to_string() == q.trim() || found.len() == 1 => {
            return trade_page(&state, &admin, one.0, false).await;
        }
        many => {
            let rows = many.iter().map(|r| {
                vec![
                    format!("<a href=\"/console/find?q={0}\"><code>{0}</code></a>", r.0),
                    escape(&r.5),
                    escape(&r.8),
                    r.4.to_string(),
                    r.9.to_rfc3339(),
                ]
            });
            body.push_str(&html::table(
                &["request", "status", "payment", "price (KRW)", "created"],
                rows,
            ));
        }
    }
    Ok(admin.page("Find a trade", &body))
}

/// `POST /console/reveal`: the trade with what people typed shown, the reveal recorded.
pub async fn reveal(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Form(form): Form<Reveal>,
) -> Result<Response, ApiError> {
    if !admin.csrf_ok(&form.csrf) {
        return Ok(csrf_refused());
    }
    admin
        .audit(
            &state.pool,
            "reveal",
            format!("request:{}", form.request_id),
        )
        .await?;
    tracing::info!(operator = %admin.user.user_id, request = %form.request_id, "personal data revealed in the console");
    trade_page(&state, &admin, form.request_id, true).await
}

/// An event's payload with its personal fields masked (unless `revealed`).
pub fn masked(event_type: &str, mut payload: Value, revealed: bool) -> Value {
    if !revealed {
        if let Some(body) = payload.get_mut(event_type) {
            for pointer in personal::event_fields(event_type) {
                if let Some(field) = body.pointer_mut(pointer).filter(|v| v.is_string()) {
                    *field = Value::String(MASK.into());
                }
            }
        }
    }
    payload
}

async fn trade_page(
    state: &AppState,
    admin: &ConsoleAdmin,
    request_id: Uuid,
    revealed: bool,
) -> Result<Response, ApiError> {
    let rows = requests_named(state, &request_id.to_string()).await?;
    let Some(r) = rows.into_iter().find(|r| r.0 == request_id) else {
        return Ok(html::page(
            StatusCode::NOT_FOUND,
            "No such trade",
            Some(&admin.operator()),
            &search_form(""),
        ));
    };
    let (listing_title, listing_status): (Option<String>, Option<String>) =
        sqlx::query_as("SELECT title, status FROM catalog.listings WHERE listing_id = $1")
            .bind(r.1)
            .fetch_optional(&state.pool)
            .await?
            .map_or((None, None), |(t, s): (String, String)| (Some(t), Some(s)));
    let text = |v: Option<String>| match (v, revealed) {
        (None, _) => "<span class=\"muted\">-</span>".to_owned(),
        (Some(v), true) => escape(&v),
        (Some(_), false) => MASK.to_owned(),
    };
    let mut body = search_form(&request_id.to_string());
    let _ = write!(
        body,
        "<div class=\"box\"><table><tbody>\
         <tr><th>Request</th><td><code>{}</code> <b>{}</b></td></tr>\
         <tr><th>Payment</th><td><a href=\"/console/streams/payment/{p}\"><code>{p}</code></a> <b>{}</b>, {} KRW</td></tr>\
         <tr><th>Listing</th><td><a href=\"/console/streams/listing/{l}\"><code>{l}</code></a> <b>{}</b> {}</td></tr>\
         <tr><th>Buyer / seller</th><td><code>{}</code> / <code>{}</code></td></tr>\
         <tr><th>Reason</th><td>{}</td></tr></tbody></table></div>",
        r.0,
        escape(&r.5),
        escape(&r.8),
        r.4,
        escape(listing_status.as_deref().unwrap_or("-")),
        text(listing_title),
        r.2,
        r.3,
        text(r.6.clone()),
        p = r.7,
        l = r.1,
    );
    if !revealed {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/console/reveal\" \
             onsubmit=\"return confirm('Reveal what people typed? This is recorded.')\">{}\
             <input type=\"hidden\" name=\"request_id\" value=\"{}\">\
             <button class=\"plain\" type=\"submit\">Reveal personal data (audited)</button></form>",
            html::csrf_field(&admin.csrf),
            r.0
        );
    }
    body.push_str("<h2>Events (request, payment, listing), in log order</h2>");
    let events = events_of_trade(&state.pool, request_id).await?;
    body.push_str(&html::table(&HEADERS, event_rows(&events, revealed)));
    body.push_str("<h2>Saga commands</h2>");
    let outbox: Vec<OutboxRow> = sqlx::query_as(
        "SELECT command_id, status, attempts, outcome, last_error, updated_at
           FROM settlement.outbox WHERE request_id = $1 ORDER BY created_at, command_id",
    )
    .bind(request_id)
    .fetch_all(&state.pool)
    .await?;
    let rows = outbox
        .into_iter()
        .map(|(id, status, attempts, outcome, error, at)| {
            vec![
                format!("<code>{}</code>", escape(&id)),
                if status == "dead" {
                    format!("<span class=\"bad\">{status}</span>")
                } else {
                    escape(&status)
                },
                attempts.to_string(),
                escape(&outcome.or(error).unwrap_or_default()),
                at.to_rfc3339(),
            ]
        });
    body.push_str(&html::table(
        &[
            "command",
            "status",
            "attempts",
            "outcome or last error",
            "updated",
        ],
        rows,
    ));
    body.push_str("<h2>Notifications sent</h2>");
    let sent: Vec<(Uuid, String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT user_id, kind, message, at FROM notifications.notifications
          WHERE request_id = $1 ORDER BY transaction_id, global_position",
    )
    .bind(request_id)
    .fetch_all(&state.pool)
    .await?;
    let rows = sent.into_iter().map(|(to, kind, message, at)| {
        vec![
            format!("<code>{to}</code>"),
            escape(&kind),
            escape(&message),
            at.to_rfc3339(),
        ]
    });
    body.push_str(&html::table(&["to", "kind", "message", "at"], rows));
    Ok(admin.page("Trade", &body))
}
