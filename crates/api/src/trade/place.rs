//! A buyer requests a listing and pays in the same call.
//!
//! Order: refuse at once while the gateway's circuit is open; check the listing (reads
//! only, so a caller that hangs up here leaves nothing behind). From the slot claim on, the
//! flow runs in a task of its own that the handler awaits: a dropped connection cannot cut
//! it between the gateway's answer and the log. In that task: claim the (listing, buyer)
//! slot, record the capture's start (the write-ahead intent), send it, record the outcome
//! and the request (in one statement when the request's id is fresh from this call, else
//! the request after). So no request is ever `requested` without a captured payment, and
//! no capture is ever sent that the log does not know of. A declined payment
//! records the request as `payment_failed`; a refusal before charging (proved only on the
//! first call of a capture) frees the slot; an answer that proves nothing leaves the
//! payment started or `unknown` for the reconciler, which settles it whether or not this
//! process survives (docs/DESIGN.md, "Write-ahead capture").

use carrot_domain::listing::{Listing, ListingError, QuoteRefusal};
use carrot_domain::payment::{GatewayError, Payment, PaymentCommand, PaymentError, PaymentStatus};
use carrot_domain::purchase_request::{
    PurchaseRequest, PurchaseRequestCommand, PurchaseRequestError, RequestStatus,
};
use carrot_domain::{ListingId, PaymentId, Price, RequestId, Trade};
use serde::Serialize;

use crate::error::{ApiError, FieldError};
use crate::extract::CommandContext;
use crate::state::AppState;

/// A placed, paid purchase request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = RequestPlaced)]
pub struct Placed {
    /// The new request.
    #[schema(value_type = uuid::Uuid)]
    pub request_id: RequestId,
    /// Its payment, captured and held in escrow.
    #[schema(value_type = uuid::Uuid)]
    pub payment_id: PaymentId,
    /// Always `requested`.
    #[schema(value_type = crate::openapi::vocabulary::RequestStatus)]
    pub status: &'static str,
    /// Send it back as `X-Consistency-Token` to read this write.
    #[schema(example = "748.2")]
    pub consistency_token: String,
}

/// Places a request for `listing_id` at `offer` (or the listing's price).
pub async fn place(
    state: &AppState,
    ctx: &CommandContext,
    listing_id: ListingId,
    offer: Option<Price>,
) -> Result<Placed, ApiError> {
    // While the gateway's breaker is open, refuse before doing anything else.
    if let Err(GatewayError::CircuitOpen { retry_after }) = state.breaker.check() {
        return Err(ApiError::refused(&PaymentError::circuit_open(retry_after)));
    }
    let buyer_id = ctx.user.user_id;
    let listing = state.load::<Listing>(&listing_id.to_string()).await?;
    let price = listing
        .quote(buyer_id, offer)
        .map_err(|refusal| match refusal {
            QuoteRefusal::NotFound => ApiError::NotFound,
            QuoteRefusal::OwnListing => ApiError::refused(&PurchaseRequestError::OwnListing),
            QuoteRefusal::NotAvailable(status) => {
                ApiError::refused(&ListingError::NotAvailable(status))
            }
            QuoteRefusal::AboveAsking(_) => {
                ApiError::Validation(vec![FieldError::new("price", refusal.to_string())])
            }
        })?;
    let trade = Trade {
        request_id: RequestId::from_uuid(ctx.new_id("purchase_request")),
        listing_id,
        buyer_id,
        seller_id: listing.seller_id(),
    };
    let payment_id = PaymentId::from_uuid(ctx.new_id("payment"));
    let (state, ctx) = (state.clone(), ctx.clone());
    tokio::spawn(async move { settle(&state, &ctx, trade, price, payment_id).await })
        .await
        .map_err(|e| ApiError::Internal(Box::new(e)))?
}

/// Claims the slot, captures write-ahead and records the request: run to its end.
async fn settle(
    state: &AppState,
    ctx: &CommandContext,
    trade: Trade,
    price: Price,
    payment_id: PaymentId,
) -> Result<Placed, ApiError> {
    let metadata = ctx.metadata(Some(trade.request_id.to_string()));
    state
        .write
        .claim_slot(trade.listing_id, trade.buyer_id, trade.request_id)
        .await?;
    let start = PaymentCommand::StartCapture {
        payment_id,
        trade,
        amount: price.money(),
    };
    let payment_key = payment_id.to_string();
    let started = state
        .write
        .execute_reporting::<Payment>(&payment_key, start, metadata.clone(), ctx.ids_are_fresh())
        .await;
    let first_attempt = match started {
        Ok(done) => done.appended,
        Err(e) => {
            // Nothing was sent: free the slot so the buyer can try again. (A start whose
            // commit did reach the log is voided by the reconciler.)
            state.write.release_slot(trade.request_id).await?;
            return Err(e.into());
        }
    };
    let capture = PaymentCommand::CapturePayment {
        payment_id,
        first_attempt,
    };
    // Any error here may follow a charge (the outcome's commit failed, or a retry's call
    // proved nothing): the slot stays claimed and the reconciler settles the payment.
    // Under ids fresh from this call, the request goes into the log in the same statement
    // as the payment's outcome (`write_side/follow_up.rs`): a crash cannot come between
    // them, and it is one commit fewer.
    let (payment, recorded) = if ctx.ids_are_fresh() {
        let request_id = trade.request_id.to_string();
        let (paid, request) = state
            .write
            .capture_then_request(
                &payment_key,
                capture,
                metadata.clone(),
                &request_id,
                PurchaseRequestCommand::after_payment,
            )
            .await?;
        (paid.aggregate, request.map(|request| request.token))
    } else {
        let (_, payment) = state
            .write
            .execute_for::<Payment>(&payment_key, capture, metadata.clone())
            .await?;
        (payment, None)
    };
    let trade = payment.trade();
    match payment.status() {
        PaymentStatus::Captured | PaymentStatus::Failed => {
            let token = match recorded {
                Some(token) => token,
                None => {
                    let command =
                        PurchaseRequestCommand::after_payment(&payment).ok_or_else(|| {
                            ApiError::Internal("a payment whose amount is no price".into())
                        })?;
                    record(state, ctx, trade, command, metadata).await?
                }
            };
            if payment.status() == PaymentStatus::Captured {
                return Ok(Placed {
                    request_id: trade.request_id,
                    payment_id,
                    status: RequestStatus::Requested.name(),
                    consistency_token: token.to_string(),
                });
            }
            Err(ApiError::PaymentDeclined {
                reason: payment.decline_reason().unwrap_or("declined").to_owned(),
                request_id: trade.request_id.as_uuid(),
                payment_id: payment_id.as_uuid(),
            })
        }
        // The gateway refused before charging: nothing moved, the buyer may try again.
        PaymentStatus::Aborted => {
            state.write.release_slot(trade.request_id).await?;
            Err(match state.breaker.check() {
                Err(GatewayError::CircuitOpen { retry_after }) => {
                    ApiError::refused(&PaymentError::circuit_open(retry_after))
                }
                _ => ApiError::refused(&PaymentError::GatewayUnavailable(
                    "it refused the capture before charging; nothing moved".into(),
                )),
            })
        }
        // Unknown: the payment stays open until asked about again with the same key.
        _ => Err(ApiError::Unavailable {
            code: "payment_unavailable",
            detail: "the payment gateway gave no answer that proves the outcome; a retry \
                     with the same Idempotency-Key asks about the same payment and never \
                     charges twice, and without one the payment is settled (or refunded) \
                     within seconds"
                .into(),
            retry_after: crate::error::RETRY_AFTER_SECONDS,
        }),
    }
}

/// Records the request, which this call creates.
async fn record(
    state: &AppState,
    ctx: &CommandContext,
    trade: Trade,
    command: PurchaseRequestCommand,
    metadata: std::collections::HashMap<String, String>,
) -> Result<carrot_projections::Checkpoint, ApiError> {
    let id = trade.request_id.to_string();
    Ok(if ctx.ids_are_fresh() {
        state
            .write
            .create::<PurchaseRequest>(&id, command, metadata)
            .await?
            .0
    } else {
        state
            .write
            .execute::<PurchaseRequest>(&id, command, metadata)
            .await?
    })
}
