//! The seller's and the buyer's answers to a request: accept, reject, complete, cancel.
//!
//! Accept reserves the listing first: the `Listing` aggregate is the consistency boundary,
//! so of any number of concurrent accepts on one listing exactly one reservation commits
//! and the rest are refused. If the process dies between the reservation and the request's
//! acceptance, a retry of the same accept finishes it (both steps are idempotent).

use carrot_domain::listing::{Listing, ListingCommand, ListingError};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestCommand, RequestStatus};
use carrot_domain::{Actor, RequestId};
use carrot_projections::write_side::CommandError;

use super::Outcome;
use crate::error::ApiError;
use crate::extract::CommandContext;
use crate::state::AppState;

async fn run_request(
    state: &AppState,
    ctx: &CommandContext,
    request_id: RequestId,
    command: PurchaseRequestCommand,
) -> Result<carrot_projections::Checkpoint, ApiError> {
    Ok(state
        .write
        .execute::<PurchaseRequest>(
            &request_id.to_string(),
            command,
            ctx.metadata(Some(request_id.to_string())),
        )
        .await?)
}

/// Runs `command` on the request's listing; the listing's own refusal, typed, for the
/// caller to answer as its flow needs.
async fn run_listing(
    state: &AppState,
    ctx: &CommandContext,
    request: &PurchaseRequest,
    command: ListingCommand,
) -> Result<carrot_projections::Checkpoint, CommandError<ListingError>> {
    let trade = request.trade();
    state
        .write
        .execute::<Listing>(
            &trade.listing_id.to_string(),
            command,
            ctx.metadata(Some(trade.request_id.to_string())),
        )
        .await
}

/// Loads a request and checks `command` against it before anything is written.
async fn checked(
    state: &AppState,
    request_id: RequestId,
    command: &PurchaseRequestCommand,
) -> Result<PurchaseRequest, ApiError> {
    let request = state
        .load::<PurchaseRequest>(&request_id.to_string())
        .await?;
    request
        .check(command, state.write.request_services())
        .map_err(|e| ApiError::refused(&e))?;
    Ok(request)
}

/// The seller accepts: reserve the listing for this request, then accept the request.
pub async fn accept(
    state: &AppState,
    ctx: &CommandContext,
    request_id: RequestId,
) -> Result<Outcome, ApiError> {
    let command = PurchaseRequestCommand::AcceptRequest {
        actor: Actor::User(ctx.user.user_id),
    };
    let request = checked(state, request_id, &command).await?;
    let reserved = run_listing(
        state,
        ctx,
        &request,
        ListingCommand::ReserveListing { request_id },
    )
    .await
    .map_err(|e| match e {
        // Said from the accepting seller's side: another request holds it, or it is gone.
        CommandError::Refused(ListingError::NotAvailable(_)) => ApiError::Conflict {
            code: "listing_not_available",
            detail: "the listing is reserved or sold for another request, or withdrawn".into(),
        },
        other => ApiError::from(other),
    })?;
    match run_request(state, ctx, request_id, command).await {
        Ok(accepted) => Ok(Outcome::new(
            request_id,
            RequestStatus::Accepted,
            &[reserved, accepted],
        )),
        // Any other failure may have committed the acceptance after all (its answer was
        // lost): the listing stays held, and the saga's repair finishes or undoes the flow
        // from what the log says.
        Err(e) if !refused(&e) => Err(e),
        Err(e) => {
            // The request refused (the buyer cancelled meanwhile): give the listing back.
            if let Err(undo) = run_listing(
                state,
                ctx,
                &request,
                ListingCommand::ReleaseListing { request_id },
            )
            .await
            {
                tracing::error!(error = %undo, %request_id, "could not release a listing after a failed accept");
            }
            Err(e)
        }
    }
}

/// Whether `error` proves that a command did not happen: the aggregate refused it, or lost
/// the race for its append every time.
fn refused(error: &ApiError) -> bool {
    matches!(error, ApiError::Domain { .. } | ApiError::Conflict { .. })
}

/// The seller rejects a pending request.
pub async fn reject(
    state: &AppState,
    ctx: &CommandContext,
    request_id: RequestId,
    reason: Option<String>,
) -> Result<Outcome, ApiError> {
    let command = PurchaseRequestCommand::RejectRequest {
        actor: Actor::User(ctx.user.user_id),
        reason,
    };
    let token = run_request(state, ctx, request_id, command).await?;
    Ok(Outcome::new(request_id, RequestStatus::Rejected, &[token]))
}

/// The buyer completes an accepted request: the request is completed, the listing sold.
pub async fn complete(
    state: &AppState,
    ctx: &CommandContext,
    request_id: RequestId,
) -> Result<Outcome, ApiError> {
    let command = PurchaseRequestCommand::CompleteRequest {
        actor: Actor::User(ctx.user.user_id),
    };
    let request = checked(state, request_id, &command).await?;
    let completed = run_request(state, ctx, request_id, command).await?;
    let sold = run_listing(
        state,
        ctx,
        &request,
        ListingCommand::MarkListingSold { request_id },
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Outcome::new(
        request_id,
        RequestStatus::Completed,
        &[completed, sold],
    ))
}

/// The buyer (requested or accepted) or the seller (accepted) cancels; an accepted
/// request's listing becomes available again.
///
/// The release is asked for whatever the status was when loaded: an accept may commit
/// between that load and the cancel, and releasing a listing this request does not hold
/// is a no-op.
pub async fn cancel(
    state: &AppState,
    ctx: &CommandContext,
    request_id: RequestId,
) -> Result<Outcome, ApiError> {
    let command = PurchaseRequestCommand::CancelRequest {
        actor: ctx.user.user_id,
    };
    let request = checked(state, request_id, &command).await?;
    let cancelled = run_request(state, ctx, request_id, command).await?;
    let released = run_listing(
        state,
        ctx,
        &request,
        ListingCommand::ReleaseListing { request_id },
    )
    .await
    .map_err(ApiError::from)?;
    Ok(Outcome::new(
        request_id,
        RequestStatus::Cancelled,
        &[cancelled, released],
    ))
}
