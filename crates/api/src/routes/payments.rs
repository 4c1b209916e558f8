//! Payments: one payment as its buyer or seller sees it (the payments view).

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use carrot_domain::PaymentId;
use carrot_projections::payments::{self, PaymentView, PAYMENTS};

use crate::error::ApiError;
use crate::extract::{AuthUser, ConsistencyToken, PathId};
use crate::routes::{await_views, Freshness};
use crate::state::AppState;

/// The payment routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/payments/{id}", get(read))
}

/// 404 for anyone but the trade's buyer and seller: ids are not leaked.
#[tracing::instrument(skip_all, fields(payment = %id))]
async fn read(
    State(state): State<AppState>,
    user: AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<PaymentId>,
) -> Result<(Freshness, axum::Json<PaymentView>), ApiError> {
    let freshness = await_views(&state, &[PAYMENTS], token).await?;
    let payment = payments::payment_for(&state.pool, id, user.user_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((freshness, axum::Json(payment)))
}
