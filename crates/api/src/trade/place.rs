//! A buyer requests a listing and pays in the same call.
//!
//! Order: refuse at once while the gateway's circuit is open; check the listing, claim the
//! (listing, buyer) slot, capture the payment (the `Payment` aggregate calls the gateway),
//! and only then record the request. So no request is ever `requested` without a captured
//! payment; a declined payment records the request as `payment_failed`; a gateway error
//! records nothing; a timeout leaves the payment `unknown` until a retry with the same
//! idempotency key or the saga's reconciliation settles it.

use carrot_domain::listing::{Listing, ListingStatus};
use carrot_domain::payment::{GatewayError, Payment, PaymentCommand, PaymentError, PaymentStatus};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestCommand};
use carrot_domain::{ErrorKind, ListingId, PaymentId, Price, RequestId, Trade};
use serde::Serialize;

use super::slots;
use crate::error::{ApiError, FieldError};
use crate::extract::CommandContext;
use crate::state::AppState;

/// A recorded, paid purchase request.
#[derive(Debug, Serialize)]
pub struct Placed {
    /// The new request.
    pub request_id: RequestId,
    /// Its payment, held in escrow.
    pub payment_id: PaymentId,
    /// Always `requested`.
    pub status: &'static str,
    /// The checkpoint of the request's event.
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
    let asking = match (listing.status(), listing.price()) {
        (ListingStatus::Unregistered, _) | (_, None) => return Err(ApiError::NotFound),
        (_, Some(_)) if listing.seller_id() == buyer_id => {
            return Err(domain(
                ErrorKind::Invalid,
                "own_listing",
                "you cannot request your own listing",
            ))
        }
        (ListingStatus::Available, Some(price)) => price,
        (other, _) => {
            return Err(domain(
                ErrorKind::Conflict,
                "listing_not_available",
                &format!("the listing is not available (it is {})", other.name()),
            ))
        }
    };
    let price = match offer {
        Some(offer) if offer > asking => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "price",
                format!(
                    "an offer may not exceed the asking price of {} KRW",
                    asking.as_krw()
                ),
            )]))
        }
        Some(offer) => offer,
        None => asking,
    };
    let trade = Trade {
        request_id: RequestId::from_uuid(ctx.new_id("purchase_request")),
        listing_id,
        buyer_id,
        seller_id: listing.seller_id(),
    };
    let payment_id = PaymentId::from_uuid(ctx.new_id("payment"));
    let metadata = ctx.metadata(Some(trade.request_id.to_string()));

    slots::claim(state, listing_id, buyer_id, trade.request_id).await?;
    let capture = PaymentCommand::CapturePayment {
        payment_id,
        trade,
        amount: price.money(),
    };
    let payment_key = payment_id.to_string();
    let captured = if ctx.ids_are_fresh() {
        state
            .write
            .create::<Payment>(&payment_key, capture, metadata.clone())
            .await
    } else {
        state
            .write
            .execute_for::<Payment>(&payment_key, capture, metadata.clone())
            .await
    };
    let payment = match captured {
        Ok((_, payment)) => payment,
        Err(e) => {
            // The gateway said nothing moved: free the slot so the buyer can try again.
            slots::release(state, trade.request_id).await?;
            return Err(e.into());
        }
    };
    // The request records what was charged: on a retry under the same idempotency key the
    // listing's price may have changed since the payment was made.
    let trade = payment.trade();
    let price =
        Price::parse(payment.amount().as_krw()).map_err(|e| ApiError::Internal(Box::new(e)))?;
    match payment.status() {
        PaymentStatus::Captured => {
            let place = PurchaseRequestCommand::PlaceRequest {
                trade,
                price,
                payment_id,
            };
            let token = record(state, ctx, trade, place, metadata).await?;
            Ok(Placed {
                request_id: trade.request_id,
                payment_id,
                status: "requested",
                consistency_token: token.to_string(),
            })
        }
        PaymentStatus::Failed => {
            let reason = payment.decline_reason().unwrap_or("declined").to_owned();
            let failure = PurchaseRequestCommand::RecordPaymentFailure {
                trade,
                price,
                payment_id,
                reason: reason.clone(),
            };
            record(state, ctx, trade, failure, metadata).await?;
            Err(ApiError::PaymentDeclined {
                reason,
                request_id: trade.request_id.as_uuid(),
                payment_id: payment_id.as_uuid(),
            })
        }
        // Timed out: the payment stays `unknown` until asked about again with the same key.
        _ => Err(ApiError::Unavailable {
            code: "payment_unavailable",
            detail: "the payment gateway did not answer in time; a retry with the same \
                     Idempotency-Key asks about the same payment and never charges twice"
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

fn domain(kind: ErrorKind, code: &'static str, detail: &str) -> ApiError {
    ApiError::Domain {
        kind,
        code,
        detail: detail.to_owned(),
    }
}
