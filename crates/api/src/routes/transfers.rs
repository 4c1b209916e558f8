//! Operators' answers to a refund or payout the gateway declined (admin role). The gateway
//! answers a key with its first outcome, so the saga's dead letter cannot settle it by
//! being retried; an operator either sends it again under a new attempt (a new key), once
//! what made the gateway decline is fixed, or records that the money was moved outside
//! Carrot. Both are events of the payment, with who and why: they show in the trade's
//! timeline, and the saga revives or closes its dead letter from them.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use carrot_domain::payment::{Payment, PaymentCommand, PaymentStatus};
use carrot_domain::{Actor, PaymentId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::{AdminUser, CommandContext, Json as JsonBody};
use crate::openapi::vocabulary::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
use crate::state::AppState;

/// The operators' transfer routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/payments/{id}/retry-transfer", post(retry_transfer))
        .route("/admin/payments/{id}/settle-outside", post(settle_outside))
}

/// Why an operator sends a declined transfer again.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct RetryBody {
    /// What changed since the decline, 1 to 1,000 characters.
    #[schema(example = "the buyer re-opened their account; ticket 5120")]
    reason: String,
}

/// How a declined transfer was settled outside Carrot.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SettleBody {
    /// The outside reference (a bank transfer's id), 1 to 200 characters.
    #[schema(example = "bank-transfer-2026-11-26-0042")]
    reference: String,
    /// Why, 1 to 1,000 characters.
    #[schema(example = "the card was closed; refunded by bank transfer")]
    reason: String,
}

/// Where the payment stands after an operator's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct TransferAnswered {
    /// The payment.
    payment_id: uuid::Uuid,
    /// `captured` (sent again: the saga moves it shortly), `refunded` or `paid_out`.
    #[schema(example = "captured")]
    pub(crate) status: &'static str,
    /// The refund or payout attempt the payment is at (1 for the first).
    attempt: u32,
    /// The consistency token of the payment's last event.
    consistency_token: String,
}

/// The payment a saga command transfers money of (`refund:<id>`, `payout:<id>`), if it does.
pub(crate) fn payment_of(command_id: &str) -> Option<Uuid> {
    let (kind, id) = command_id.split_once(':')?;
    matches!(kind, "refund" | "payout")
        .then(|| Uuid::try_parse(id).ok())
        .flatten()
}

/// A text field an operator fills: trimmed, `max` characters at most, no NUL.
pub(crate) fn operator_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<String, ApiError> {
    let value = value.trim();
    if !(1..=max).contains(&value.chars().count()) || value.contains('\0') {
        return Err(ApiError::invalid(
            field,
            format!("must be 1 to {max} characters, with no NUL"),
        ));
    }
    Ok(value.to_owned())
}

/// Runs an operator's command on payment `id`; the events carry the trade's correlation.
pub(crate) async fn answer(
    state: &AppState,
    ctx: &CommandContext,
    id: &str,
    command: PaymentCommand,
) -> Result<Json<TransferAnswered>, ApiError> {
    let payment_id: PaymentId = id.parse().map_err(|_| ApiError::NotFound)?;
    let payment: Payment = state.load(&payment_id.to_string()).await?;
    if payment.status() == PaymentStatus::None {
        return Err(ApiError::NotFound);
    }
    let correlation = Some(payment.trade().request_id.to_string());
    let (token, after) = state
        .write
        .execute_for::<Payment>(&payment_id.to_string(), command, ctx.metadata(correlation))
        .await?;
    Ok(Json(TransferAnswered {
        payment_id: payment_id.as_uuid(),
        status: after.status().name(),
        attempt: after.transfer_attempt(),
        consistency_token: token.to_string(),
    }))
}

/// Sends a declined refund or payout again under a new attempt, with the operator's reason.
/// The saga's dead letter runs again with the new idempotency key.
#[utoipa::path(
    post,
    path = "/admin/payments/{id}/retry-transfer",
    tag = "admin",
    operation_id = "retry_declined_transfer",
    params(("id" = String, Path, description = "The payment."), IdempotencyHeader),
    request_body = RetryBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded; the saga sends it again.", body = TransferAnswered),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`no_declined_transfer` (nothing was declined), \
         `payment_already_refunded`, `payment_already_paid_out`, `payment_not_captured`, \
         `concurrent_update`, or `idempotency_key_in_flight`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (with `errors`: reason), or \
         `idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(payment_id = %id))]
async fn retry_transfer(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ctx: CommandContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RetryBody>,
) -> Result<Json<TransferAnswered>, ApiError> {
    let reason = operator_text("reason", &body.reason, 1000)?;
    let command = PaymentCommand::RetryTransfer {
        reason: reason.clone(),
        by: Actor::User(admin.user_id),
    };
    let answered = answer(&state, &ctx, &id, command).await?;
    tracing::warn!(payment_id = %id, by = %admin.user_id, reason, attempt = answered.attempt, "declined transfer sent again by an operator");
    Ok(answered)
}

/// Records that a declined refund or payout was made outside Carrot, with its reference:
/// final, as a transfer through the gateway is. The saga's dead letter is closed.
#[utoipa::path(
    post,
    path = "/admin/payments/{id}/settle-outside",
    tag = "admin",
    operation_id = "settle_transfer_outside",
    params(("id" = String, Path, description = "The payment."), IdempotencyHeader),
    request_body = SettleBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Recorded (again the same reference: already recorded).",
         body = TransferAnswered),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`no_declined_transfer` (nothing was declined), \
         `payment_already_refunded`, `payment_already_paid_out`, `payment_not_captured`, \
         `concurrent_update`, or `idempotency_key_in_flight`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (with `errors`: reference, \
         reason), or `idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(payment_id = %id))]
async fn settle_outside(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    ctx: CommandContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SettleBody>,
) -> Result<Json<TransferAnswered>, ApiError> {
    let reference = operator_text("reference", &body.reference, 200)?;
    let reason = operator_text("reason", &body.reason, 1000)?;
    let command = PaymentCommand::SettleOutside {
        reference: reference.clone(),
        reason: reason.clone(),
        by: Actor::User(admin.user_id),
    };
    let answered = answer(&state, &ctx, &id, command).await?;
    tracing::warn!(payment_id = %id, by = %admin.user_id, reference, reason, "declined transfer settled outside Carrot by an operator");
    Ok(answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refunds_and_payouts_name_a_payment() {
        let id = Uuid::new_v4();
        assert_eq!(payment_of(&format!("refund:{id}")), Some(id));
        assert_eq!(payment_of(&format!("payout:{id}")), Some(id));
        assert_eq!(payment_of(&format!("reserve:{id}")), None);
        assert_eq!(payment_of("refund:not-an-id"), None);
    }
}
