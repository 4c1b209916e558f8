//! A time limit around any gateway: no answer in time is `GatewayError::Timeout`, an
//! unknown outcome the caller must reconcile with the same idempotency key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Movement, PaymentGateway, Receipt, TransferOrder,
};
use chrono::{DateTime, Utc};

/// `inner`, with every call bounded by `limit`.
pub struct WithTimeout {
    inner: Arc<dyn PaymentGateway>,
    limit: Duration,
}

impl WithTimeout {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn PaymentGateway>, limit: Duration) -> Self {
        WithTimeout { inner, limit }
    }

    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        tokio::time::timeout(self.limit, call)
            .await
            .unwrap_or(Err(GatewayError::Timeout))
    }
}

#[async_trait]
impl PaymentGateway for WithTimeout {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        self.bounded(self.inner.capture(order)).await
    }

    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.bounded(self.inner.refund(order)).await
    }

    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.bounded(self.inner.payout(order)).await
    }

    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        self.bounded(self.inner.resolve_capture(key)).await
    }

    async fn movements(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Movement>, GatewayError> {
        // A report, not a movement: a slow one is worth waiting for a while longer.
        tokio::time::timeout(self.limit * 10, self.inner.movements(since, limit))
            .await
            .unwrap_or_else(|_| Err(GatewayError::Unavailable("movements timed out".into())))
    }
}
