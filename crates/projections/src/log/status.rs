//! How far each subscriber has come: its checkpoint, lag, last error and quarantine, for
//! readiness, `/metrics` and operators.

use crate::postgres::Db;

/// How far one subscriber has come, for readiness and operators.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SubscriberStatus {
    /// The subscriber.
    pub name: String,
    /// Its checkpoint, as a consistency token.
    pub checkpoint: String,
    /// Events it has applied (since its last rebuild).
    pub events_applied: i64,
    /// Events in the log it has not applied yet (counted up to 100,000).
    pub lag_events: i64,
    /// The age of the oldest event it has not applied, in milliseconds (0 when caught up).
    pub lag_ms: i64,
    /// When its checkpoint last moved.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Why its last batch failed, if it did since.
    pub last_error: Option<String>,
    /// Events it holds in quarantine: poisons it cannot apply, and the later events of
    /// their streams (`GET /admin/subscriptions/{name}/quarantine`).
    pub quarantined: i64,
}

/// Every subscriber's progress. It counts rows (up to 100,000 per subscriber): callers
/// that anyone can reach read it through a cache (the api crate's `progress.rs`).
pub async fn status(pool: &Db) -> Result<Vec<SubscriberStatus>, sqlx::Error> {
    crate::metrics::global().inc("carrot_subscription_status_reads_total", &[]);
    sqlx::query_as(
        "SELECT c.subscriber AS name,
                c.transaction_id::text || '.' || c.global_position AS checkpoint,
                c.events_applied, c.updated_at, c.last_error,
                (SELECT count(*) FROM (
                    SELECT 1 FROM public.events e
                     WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                     LIMIT 100000) backlog) AS lag_events,
                coalesce((SELECT (extract(epoch FROM now() - e.recorded_at) * 1000)::bigint
                            FROM public.events e
                           WHERE (e.transaction_id, e.global_position) > (c.transaction_id, c.global_position)
                           ORDER BY e.transaction_id, e.global_position LIMIT 1), 0) AS lag_ms,
                (SELECT count(*) FROM public.subscription_quarantine q
                  WHERE q.subscriber = c.subscriber) AS quarantined
           FROM public.subscription_checkpoints c ORDER BY c.subscriber",
    )
    .fetch_all(pool)
    .await
}
