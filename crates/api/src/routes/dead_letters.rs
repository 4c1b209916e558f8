//! The saga's dead letters (admin role): commands that gave up, listed; each one put back
//! in line or discarded with a reason. A decision is first an event of the `DeadLetter`
//! aggregate (who, why, which trade: audited in the log and shown in the trade's timeline),
//! then the outbox row's change; both in a task of their own, so a caller hanging up between
//! them cannot leave one without the other. The console's buttons run the same [`decide`].
//!
//! A declined refund or payout is not settled by running its command again (the gateway
//! answers its key with the decline): `transfers.rs` sends it again or settles it outside.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_domain::dead_letter::{DeadLetter, DeadLetterCommand, DeadLetterError, REASON_MAX};
use carrot_domain::metadata::CORRELATION_ID;
use carrot_domain::{Actor, RequestId, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::settlement::outbox::{self, DeadLetter as Letter};
use carrot_projections::views::page::Page;
use carrot_projections::write_side::{CommandError, WriteSide};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Problem};
use crate::extract::page::{Cursor, Paging};
use crate::extract::{AdminUser, CommandContext, Json as JsonBody};
use crate::openapi::vocabulary::{AdminOnly, IdempotencyHeader, NotFound, Unauthenticated};
use crate::routes::transfers::{operator_text, payment_of};
use crate::state::AppState;

/// The dead-letter routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/dead-letters", get(list))
        .route("/admin/dead-letters/{id}/retry", post(retry))
        .route("/admin/dead-letters/{id}/discard", post(discard))
}

/// Whether `id` could be one of Carrot's ids of a saga command or a movement
/// (`refund:<payment id>`...): visible ASCII, at most 200 bytes. Anything else names
/// nothing, and never reaches the database.
pub(crate) fn is_plain_id(id: &str) -> bool {
    (1..=200).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// A dead letter's `command_id` sent back as a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CommandId(String);

impl Cursor for CommandId {
    fn parse(raw: &str) -> Option<Self> {
        is_plain_id(raw).then(|| CommandId(raw.to_owned()))
    }
}

/// What an operator decided.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Back in line, with why if they said.
    Retry(Option<String>),
    /// Never to run, with why.
    Discard(String),
}

/// A decision carried out.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Decided {
    /// The saga command.
    command_id: String,
    /// The trade it belongs to.
    pub(crate) request_id: uuid::Uuid,
    /// `pending` (a dispatcher runs it again) or `discarded` (it never runs).
    #[schema(example = "pending")]
    pub(crate) status: &'static str,
    /// The consistency token of the decision's event; null when an earlier call recorded
    /// it and this one finished the outbox's part.
    consistency_token: Option<String>,
}

/// Why an operator discards a dead letter.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct DiscardBody {
    /// Why it never needs to run, 1 to 1,000 characters.
    #[schema(example = "the buyer and seller settled in person; ticket 7731")]
    reason: String,
}

/// Carries out `decision` on dead letter `id` as `operator`, the event's metadata `metadata`
/// and the trade's correlation: the event first, then the outbox row. A discard recorded
/// before its process died is finished by discarding again (the event is not written twice).
pub(crate) async fn decide(
    pool: &Db,
    write: &Arc<WriteSide>,
    operator: UserId,
    mut metadata: HashMap<String, String>,
    id: &str,
    decision: Decision,
) -> Result<Decided, ApiError> {
    let by = Actor::User(operator);
    let reason = |r: &str| operator_text("reason", r, REASON_MAX);
    let decision = match decision {
        Decision::Retry(r) => Decision::Retry(r.as_deref().map(reason).transpose()?),
        Decision::Discard(r) => Decision::Discard(reason(&r)?),
    };
    let discarding = matches!(decision, Decision::Discard(_));
    if !is_plain_id(id) {
        return Err(ApiError::NotFound);
    }
    // A declined transfer is money still held: it is settled by a new attempt or outside
    // Carrot (both events of the payment), never by forgetting its command.
    if discarding && payment_of(id).is_some() {
        return Err(ApiError::Conflict {
            code: "declined_transfer",
            detail: "a declined refund or payout is not discarded: send it again \
                     (retry-transfer) or record it as settled outside Carrot (settle-outside)"
                .into(),
        });
    }
    let letter: Letter = outbox::dead_letter(pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let command_id = letter.command_id.clone();
    let request_id = RequestId::from_uuid(letter.request_id);
    let command = match decision {
        Decision::Discard(reason) => DeadLetterCommand::Discard {
            command_id,
            request_id,
            reason,
            by,
        },
        Decision::Retry(reason) => DeadLetterCommand::Retry {
            command_id,
            request_id,
            reason,
            by,
        },
    };
    metadata.insert(CORRELATION_ID.to_owned(), request_id.to_string());
    let (write, pool, id) = (write.clone(), pool.clone(), id.to_owned());
    let done = tokio::spawn(async move {
        let token = match write.execute::<DeadLetter>(&id, command, metadata).await {
            Ok(token) => Some(token),
            Err(CommandError::Refused(DeadLetterError::AlreadyDiscarded)) => None,
            Err(e) => return Err(ApiError::from(e)),
        };
        let changed = match discarding {
            true => outbox::discard(&pool, &id).await?,
            false => outbox::revive(&pool, &id).await?,
        };
        tracing::warn!(command_id = %id, by = %by, discarding, changed, "dead letter decided by an operator");
        Ok((token, changed))
    });
    let (token, changed) = done.await.map_err(ApiError::internal)??;
    if !changed {
        return Err(ApiError::Conflict {
            code: "dead_letter_moved",
            detail: "the command is no longer dead (it was put back in line or settled meanwhile)"
                .into(),
        });
    }
    Ok(Decided {
        command_id: letter.command_id,
        request_id: letter.request_id,
        status: if discarding { "discarded" } else { "pending" },
        consistency_token: token.map(|t| t.to_string()),
    })
}

/// Saga commands that gave up, most recent first.
#[utoipa::path(
    get,
    path = "/admin/dead-letters",
    tag = "admin",
    operation_id = "list_dead_letters",
    params(crate::extract::page::PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of dead letters, most recent first.",
         body = Page<Letter>),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 422, description = "`validation_failed` (with `errors`: limit, query).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
    page: Paging<CommandId>,
) -> Result<Json<Page<Letter>>, ApiError> {
    let after = page.cursor.as_ref().map(|c| c.0.as_str());
    let items = outbox::dead_letters(&state.pool, page.limit + 1, after).await?;
    Ok(Json(Page::cut(items, page.limit, |d| d.command_id.clone())))
}

/// Puts a dead letter back in line, attempts reset; recorded as `DeadLetterRetried` with the
/// operator's id, in the trade's timeline.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/retry",
    tag = "admin",
    operation_id = "retry_dead_letter",
    params(("id" = String, Path, description = "The dead letter's `command_id`."), IdempotencyHeader),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Back in line.", body = Decided),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`dead_letter_moved` (no longer dead), \
         `concurrent_update`, or `idempotency_key_in_flight`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(command_id = %id))]
async fn retry(
    State(state): State<AppState>,
    _admin: AdminUser,
    ctx: CommandContext,
    Path(id): Path<String>,
) -> Result<Json<Decided>, ApiError> {
    let metadata = ctx.metadata(None);
    decide(
        &state.pool,
        &state.write,
        ctx.user.user_id,
        metadata,
        &id,
        Decision::Retry(None),
    )
    .await
    .map(Json)
}

/// Discards a dead letter with a reason: it never runs. Recorded as `DeadLetterDiscarded`
/// with the operator's id and reason, in the trade's timeline.
#[utoipa::path(
    post,
    path = "/admin/dead-letters/{id}/discard",
    tag = "admin",
    operation_id = "discard_dead_letter",
    params(("id" = String, Path, description = "The dead letter's `command_id`."), IdempotencyHeader),
    request_body = DiscardBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Discarded.", body = Decided),
        (status = 400, response = crate::openapi::vocabulary::MalformedJson),
        (status = 415, response = crate::openapi::vocabulary::NotJson),
        (status = 401, response = Unauthenticated),
        (status = 403, response = AdminOnly),
        (status = 404, response = NotFound),
        (status = 409, description = "`declined_transfer` (a refund or payout: send it again \
         or settle it outside instead), `dead_letter_moved` (no longer dead), \
         `concurrent_update`, or `idempotency_key_in_flight`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (with `errors`: reason), or \
         `idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(command_id = %id))]
async fn discard(
    State(state): State<AppState>,
    _admin: AdminUser,
    ctx: CommandContext,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<DiscardBody>,
) -> Result<Json<Decided>, ApiError> {
    let (metadata, decision) = (ctx.metadata(None), Decision::Discard(body.reason));
    decide(
        &state.pool,
        &state.write,
        ctx.user.user_id,
        metadata,
        &id,
        decision,
    )
    .await
    .map(Json)
}
