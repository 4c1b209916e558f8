//! Dead letters, grouped by cause (the saga command's kind and its last error): inspect one,
//! and act on it after a confirmation. A declined refund or payout is sent again under a
//! new attempt, or recorded as settled outside Carrot (`transfers.rs`: events of the
//! payment); any other command is put back in line or discarded with a reason
//! (`routes/dead_letters.rs`: events of the dead letter). Every one carries the operator's
//! id and shows in the trade's timeline.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use carrot_projections::settlement::outbox::{self, DeadLetter};
use serde::Deserialize;

use super::html::{self, escape};
use super::session::{see_other, ConsoleAdmin};
use crate::error::ApiError;
use crate::routes::dead_letters::{decide, Decision};
use crate::state::AppState;

/// How many dead letters the page reads.
const SHOWN: i64 = 500;

/// A decision's form: the CSRF token, the confirmation and the reason (optional for a
/// retry, required for a discard).
#[derive(Deserialize)]
pub struct Decide {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
}

/// A dead letter's cause: what kind of command, and why it gave up.
fn cause(letter: &DeadLetter) -> String {
    let kind = letter
        .command
        .get("command")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("command");
    let error = letter.last_error.as_deref().unwrap_or("no error recorded");
    format!("{kind}: {}", without_ids(error))
}

/// `text` with every uuid in it replaced by `<id>`: ids differ from letter to letter, the
/// cause is what is left without them.
fn without_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if rest.len() >= 36
            && rest.is_char_boundary(36)
            && uuid::Uuid::try_parse(&rest[..36]).is_ok()
        {
            out.push_str("<id>");
            rest = &rest[36..];
            continue;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
}

/// `GET /console/dead-letters`.
pub async fn list(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
) -> Result<Response, ApiError> {
    let letters = outbox::dead_letters(&state.pool, SHOWN, None).await?;
    let mut groups: BTreeMap<String, Vec<&DeadLetter>> = BTreeMap::new();
    for letter in &letters {
        groups.entry(cause(letter)).or_default().push(letter);
    }
    let mut body = String::new();
    if groups.is_empty() {
        body.push_str("<p class=\"ok\">No dead letters.</p>");
    }
    for (cause, letters) in &groups {
        let _ = write!(body, "<h2>{} ({})</h2>", escape(cause), letters.len());
        let rows = letters.iter().map(|l| {
            vec![
                format!(
                    "<a href=\"/console/dead-letters/{0}\"><code>{0}</code></a>",
                    escape(&l.command_id)
                ),
                format!(
                    "<a href=\"/console/find?q={0}\"><code>{0}</code></a>",
                    l.request_id
                ),
                l.attempts.to_string(),
                l.updated_at.to_rfc3339(),
            ]
        });
        body.push_str(&html::table(
            &["command", "trade", "attempts", "gave up"],
            rows,
        ));
    }
    Ok(admin.page("Dead letters", &body))
}

/// `GET /console/dead-letters/{id}`: one, with the form that retries it.
pub async fn show(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let letter = outbox::dead_letter(&state.pool, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let mut body = String::from("<div class=\"box\">");
    let _ = write!(
        body,
        "<p>Command <code>{}</code> of trade <a href=\"/console/find?q={r}\"><code>{r}</code></a>, \
         given up after {} attempts at {}.</p><p>Last error: <code>{}</code></p>{}</div>",
        escape(&letter.command_id),
        letter.attempts,
        letter.updated_at.to_rfc3339(),
        escape(letter.last_error.as_deref().unwrap_or("-")),
        html::json_block(&letter.command),
        r = letter.request_id,
    );
    match crate::routes::transfers::payment_of(&letter.command_id) {
        // A declined transfer: a decline is final for its key, so putting it back in line
        // would only be declined again. It is sent under a new attempt, or recorded as
        // settled outside Carrot: both are events of the payment, in the trade's timeline.
        Some(payment) => body.push_str(&super::transfers::forms(payment, &admin.csrf)),
        None => body.push_str(&decision_forms(&letter.command_id, &admin.csrf)),
    }
    Ok(admin.page("Dead letter", &body))
}

/// The two forms for any other dead letter: back in line, or discarded with a reason.
fn decision_forms(command_id: &str, csrf: &str) -> String {
    let confirm = html::CONFIRM_CHECKED;
    let mut html = String::new();
    let _ = write!(
        html,
        "<h2>Put it back in line</h2><div class=\"box\">\
         <form method=\"post\" action=\"/console/dead-letters/{id}/retry\">{csrf}\
         <p><label>Reason (recorded; optional)<br><input name=\"reason\" maxlength=\"1000\" size=\"50\"></label></p>\
         {confirm}<p><button type=\"submit\">Retry</button></p></form></div>\
         <h2>Or discard it: it never runs</h2><div class=\"box\">\
         <form method=\"post\" action=\"/console/dead-letters/{id}/discard\">{csrf}\
         <p><label>Reason (recorded)<br><input name=\"reason\" required maxlength=\"1000\" size=\"50\"></label></p>\
         {confirm}<p><button type=\"submit\" class=\"danger\">Discard</button></p></form></div>",
        id = escape(command_id),
        csrf = html::csrf_field(csrf),
    );
    html
}

/// Runs a confirmed decision as the signed-in operator, then shows the trade.
async fn run(
    state: &AppState,
    admin: &ConsoleAdmin,
    form: &Decide,
    id: &str,
    decision: Decision,
) -> Result<Response, ApiError> {
    if let Some(refused) = admin.refusal(&form.csrf, Some(&form.confirm)) {
        return Ok(refused);
    }
    let ctx = admin.command_context();
    let (operator, metadata) = (admin.user.user_id, ctx.metadata(None));
    let decided = decide(&state.pool, &state.write, operator, metadata, id, decision).await?;
    Ok(see_other(&format!(
        "/console/find?q={}",
        decided.request_id
    )))
}

/// `POST /console/dead-letters/{id}/retry`.
pub async fn retry(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<String>,
    Form(form): Form<Decide>,
) -> Result<Response, ApiError> {
    let reason = Some(form.reason.clone()).filter(|r| !r.trim().is_empty());
    run(&state, &admin, &form, &id, Decision::Retry(reason)).await
}

/// `POST /console/dead-letters/{id}/discard`.
pub async fn discard(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<String>,
    Form(form): Form<Decide>,
) -> Result<Response, ApiError> {
    let reason = form.reason.clone();
    run(&state, &admin, &form, &id, Decision::Discard(reason)).await
}

#[cfg(test)]
mod tests {
    use super::without_ids;

    #[test]
    fn a_cause_is_the_error_without_its_ids() {
        let a =
            "declined the refund (POST /admin/payments/be3efd09-f25b-447b-8f4b-00909dbbe7d5/retry)";
        let b =
            "declined the refund (POST /admin/payments/0c9c3f9c-c496-4e09-9466-361a279e45a8/retry)";
        assert_eq!(without_ids(a), without_ids(b));
        assert_eq!(without_ids("가나다 no ids"), "가나다 no ids");
    }
}
