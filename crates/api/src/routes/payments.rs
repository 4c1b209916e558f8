//! Payments: one payment as its buyer or seller sees it (the payments view), shown to
//! whoever may see its request (the MyPage view decides, as for `GET /requests/{id}`).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use carrot_domain::{PaymentId, RequestId};
use carrot_projections::views::mypage::{self, MYPAGE};
use carrot_projections::views::payments::{self, PaymentView, PAYMENTS};

use crate::error::{ApiError, Problem};
use crate::extract::{await_views, AuthUser, ConsistencyToken, Freshness, PathId};
use crate::openapi::vocabulary::{NotFound, Unauthenticated};
use crate::state::AppState;

/// The payment routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/payments/{id}", get(read))
}

/// One payment.
///
/// Visible exactly when its request is (`GET /requests/{id}`): to its buyer, and to its
/// seller once the request reached them. A request whose payment was declined, or that was
/// abandoned after a capture whose answer was lost, is the buyer's alone, and so is its
/// payment. 404 for everyone else: ids are not leaked.
#[utoipa::path(
    get,
    path = "/payments/{id}",
    tag = "payments",
    operation_id = "read_payment",
    params(("id" = uuid::Uuid, Path, description = "The payment.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The payment.", body = PaymentView),
        (status = 401, response = Unauthenticated),
        (status = 404, response = NotFound),
        (status = 422, description = "`validation_failed`: a malformed `X-Consistency-Token`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(payment = %id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<PaymentId>,
) -> Result<(Freshness, axum::Json<PaymentView>), ApiError> {
    let (freshness, views) = await_views(&state, &[PAYMENTS, MYPAGE], token).await?;
    let payment = payments::payment_for(views, id, user.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // The seller's side of the rule is the request read's own: its query decides.
    if payment.buyer_id != user.user_id.as_uuid() {
        let request = RequestId::from_uuid(payment.request_id);
        mypage::request_for(views, request, user.user_id)
            .await?
            .ok_or(ApiError::NotFound)?;
    }
    Ok((freshness, axum::Json(payment)))
}
