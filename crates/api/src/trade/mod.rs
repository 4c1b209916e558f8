//! The trade flows that span aggregates: placing a paid purchase request, and the seller's
//! and buyer's answers to it. Each flow orders its commands so that every invariant holds
//! after every step, even if the process dies between two of them (docs/DESIGN.md).

pub mod place;
pub mod respond;

use carrot_domain::purchase_request::RequestStatus;
use carrot_domain::RequestId;
use carrot_projections::Checkpoint;
use serde::Serialize;

/// A request after the seller's or the buyer's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = RequestOutcome)]
pub struct Outcome {
    /// The request.
    #[schema(value_type = uuid::Uuid)]
    pub request_id: RequestId,
    /// Its status now.
    #[schema(value_type = crate::openapi::vocabulary::RequestStatus)]
    pub status: &'static str,
    /// Send it back as `X-Consistency-Token` to read this write.
    #[schema(example = "749.1")]
    pub consistency_token: String,
}

impl Outcome {
    fn new(request_id: RequestId, status: RequestStatus, tokens: &[Checkpoint]) -> Self {
        Outcome {
            request_id,
            status: status.name(),
            consistency_token: tokens.iter().max().copied().unwrap_or_default().to_string(),
        }
    }
}
