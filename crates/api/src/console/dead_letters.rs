//! Dead letters, grouped by cause (the saga command's kind and its last error): inspect one,
//! and act on it after a confirmation. A declined refund or payout is sent again under a
//! new attempt, or recorded as settled outside Carrot (`transfers.rs`: events of the
//! payment with the operator's id, in the trade's timeline); any other command is put back
//! in line, recorded in `operator_audit` with the operator's id.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use carrot_projections::settlement::outbox::{self, DeadLetter};
use serde::Deserialize;

use super::html::{self, escape};
use super::session::{record, see_other, ConsoleAdmin};
use crate::error::ApiError;
use crate::state::AppState;

/// How many dead letters the page reads.
const SHOWN: i64 = 500;

/// A retry's form: the CSRF token and the confirmation.
#[derive(Deserialize)]
pub struct Retry {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
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
    match super::transfers::payment_of(&letter.command_id) {
        // A declined transfer: a decline is final for its key, so putting it back in line
        // would only be declined again. It is sent under a new attempt, or recorded as
        // settled outside Carrot: both are events of the payment, in the trade's timeline.
        Some(payment) => body.push_str(&super::transfers::forms(payment, &admin.csrf)),
        None => {
            let _ = write!(
                body,
                "<form method=\"post\" action=\"/console/dead-letters/{}/retry\">{}\
                 <p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> \
                 Put this command back in line (its attempts start again)</label></p>\
                 <p><button type=\"submit\">Retry</button></p></form>",
                escape(&letter.command_id),
                html::csrf_field(&admin.csrf)
            );
        }
    }
    Ok(admin.page("Dead letter", &body))
}

/// `POST /console/dead-letters/{id}/retry`: confirmed, it goes back in line.
pub async fn retry(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(id): Path<String>,
    Form(form): Form<Retry>,
) -> Result<Response, ApiError> {
    if let Some(refused) = admin.refusal(&form.csrf, Some(&form.confirm)) {
        return Ok(refused);
    }
    // The retry and its record in a task of their own: a client hanging up between the two
    // would leave a command back in line that nobody is recorded as retrying.
    let (pool, operator) = (state.pool.clone(), admin.user.user_id.as_uuid());
    let revived = tokio::spawn(async move {
        if !outbox::revive(&pool, &id).await? {
            return Ok(false);
        }
        record(&pool, operator, "retry", format!("command:{id}")).await?;
        tracing::info!(command_id = %id, by = %operator, "dead letter retried from the console");
        Ok::<_, sqlx::Error>(true)
    })
    .await
    .map_err(ApiError::internal)??;
    if !revived {
        return Err(ApiError::NotFound);
    }
    Ok(see_other("/console/dead-letters"))
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
