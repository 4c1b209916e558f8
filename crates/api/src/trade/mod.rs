//! The trade flows that span aggregates: placing a paid purchase request, and the seller's
//! and buyer's answers to it. Each flow orders its commands so that every invariant holds
//! after every step, even if the process dies between two of them (docs/DESIGN.md).

pub mod place;
pub mod respond;
pub mod slots;

use carrot_domain::RequestId;
use carrot_projections::Checkpoint;
use serde::Serialize;

/// The answer to a trade command: the request's new status and the consistency token.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The request.
    pub request_id: RequestId,
    /// Its status now.
    pub status: &'static str,
    /// The checkpoint of the last event the command appended.
    pub consistency_token: String,
}

impl Outcome {
    fn new(request_id: RequestId, status: &'static str, tokens: &[Checkpoint]) -> Self {
        Outcome {
            request_id,
            status,
            consistency_token: tokens.iter().max().copied().unwrap_or_default().to_string(),
        }
    }
}
