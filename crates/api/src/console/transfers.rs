//! A declined refund or payout, acted on from the console: sent again under a new attempt
//! with the operator's reason, or recorded as settled outside Carrot with its reference (a
//! discard that keeps the books: the money moved another way). Both are the API's operator
//! commands (`routes/transfers.rs`), so both are events of the payment carrying the
//! operator's id, and show in the trade's timeline.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use carrot_domain::payment::PaymentCommand;
use carrot_domain::Actor;
use serde::Deserialize;
use uuid::Uuid;

use super::html;
use super::session::{see_other, ConsoleAdmin};
use crate::error::ApiError;
use crate::routes::transfers::{answer, operator_text};
use crate::state::AppState;

/// The two forms for a declined transfer of `payment`.
pub fn forms(payment: Uuid, csrf: &str) -> String {
    let confirm = html::CONFIRM_CHECKED;
    let mut html = String::new();
    let _ = write!(
        html,
        "<h2>Send it again under a new attempt</h2><div class=\"box\">\
         <form method=\"post\" action=\"/console/payments/{payment}/retry-transfer\">{csrf}\
         <p><label>Reason (recorded)<br><input name=\"reason\" required maxlength=\"1000\" size=\"50\"></label></p>\
         {confirm}<p><button type=\"submit\">Send again</button></p></form></div>\
         <h2>Or record it as settled outside Carrot</h2><div class=\"box\">\
         <form method=\"post\" action=\"/console/payments/{payment}/settle-outside\">{csrf}\
         <p><label>Reference (a bank transfer id...)<br><input name=\"reference\" required maxlength=\"200\"></label></p>\
         <p><label>Reason (recorded)<br><input name=\"reason\" required maxlength=\"1000\" size=\"50\"></label></p>\
         {confirm}<p><button type=\"submit\">Record as settled</button></p></form></div>",
        csrf = html::csrf_field(csrf),
    );
    html
}

/// The forms' fields.
#[derive(Deserialize)]
pub struct Transfer {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    reference: String,
}

async fn run(
    state: &AppState,
    admin: &ConsoleAdmin,
    form: &Transfer,
    payment: Uuid,
    command: PaymentCommand,
) -> Result<Response, ApiError> {
    if let Some(refused) = admin.refusal(&form.csrf, Some(&form.confirm)) {
        return Ok(refused);
    }
    let ctx = admin.command_context();
    let answered = answer(state, &ctx, &payment.to_string(), command).await?;
    tracing::warn!(payment_id = %payment, by = %admin.user.user_id, status = answered.status, "declined transfer acted on from the console");
    Ok(see_other("/console/dead-letters"))
}

/// `POST /console/payments/{id}/retry-transfer`.
pub async fn retry(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(payment): Path<Uuid>,
    Form(form): Form<Transfer>,
) -> Result<Response, ApiError> {
    let command = PaymentCommand::RetryTransfer {
        reason: operator_text("reason", &form.reason, 1000)?,
        by: Actor::User(admin.user.user_id),
    };
    run(&state, &admin, &form, payment, command).await
}

/// `POST /console/payments/{id}/settle-outside`.
pub async fn settle_outside(
    State(state): State<AppState>,
    admin: ConsoleAdmin,
    Path(payment): Path<Uuid>,
    Form(form): Form<Transfer>,
) -> Result<Response, ApiError> {
    let command = PaymentCommand::SettleOutside {
        reference: operator_text("reference", &form.reference, 200)?,
        reason: operator_text("reason", &form.reason, 1000)?,
        by: Actor::User(admin.user.user_id),
    };
    run(&state, &admin, &form, payment, command).await
}
