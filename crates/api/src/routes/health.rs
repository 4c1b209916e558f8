//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::payment::BreakerState;
use crate::reads::ReplicaStatus;
use crate::state::AppState;

/// The health routes (no authentication).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

// The answers' fields are in alphabetical order: they were first written as JSON maps, whose
// keys serde_json sorts.

/// Liveness.
#[derive(Serialize, utoipa::ToSchema)]
struct Liveness {
    /// Always `live`.
    #[schema(example = "live")]
    status: &'static str,
}

/// One subscriber's lag.
#[derive(Serialize, utoipa::ToSchema)]
struct SubscriptionLag {
    /// Whether its last batch failed. Why is not shown here, to anyone: an error's text can
    /// name tables and data. It is in the logs and in `GET /admin/subscriptions`.
    failing: bool,
    /// Events in the log it has not applied yet.
    lag_events: i64,
    /// The age of the oldest of them, in milliseconds.
    lag_ms: i64,
    /// The subscriber (`catalog`, `payments`, `mypage`, `timeline`, `notifications`...).
    name: String,
    /// Events it holds in quarantine (poisons it cannot read, and the later events of
    /// their aggregates); every other aggregate goes on. Informational: the instance stays
    /// ready. Which, and why: `GET /admin/subscriptions/{name}/quarantine`.
    quarantined: i64,
}

/// The settlement saga's backlog.
#[derive(Serialize, utoipa::ToSchema)]
struct SagaDepth {
    /// Commands that gave up (see `GET /admin/dead-letters`).
    dead_letters: i64,
    /// Commands waiting to run.
    outbox_pending: i64,
    /// Commands (refunds, payouts...) failing for longer than `CARROT_SAGA_ALERT_AFTER_SECONDS`:
    /// money waiting out an outage. They are still retried; someone should look.
    stuck: i64,
}

/// The payment gateway, as this process sees it.
#[derive(Serialize, utoipa::ToSchema)]
struct GatewayHealth {
    /// The circuit breaker's state.
    circuit: BreakerState,
}

/// Readiness, and why not.
#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `false` once shutting down (draining).
    accepting_traffic: bool,
    /// `up`, `down` or `timeout`.
    #[schema(example = "up")]
    database: &'static str,
    /// `applied`, `pending`, or `unknown` when the database did not answer.
    #[schema(example = "applied")]
    migrations: &'static str,
    /// Informational: an open circuit fails purchase requests fast, but the instance still
    /// serves everything else, so it stays ready.
    payment_gateway: GatewayHealth,
    /// Informational: where the read endpoints read (`CARROT_READ_DATABASE_URL`); a replica
    /// behind or down is bypassed for the primary, and the instance stays ready. Absent when
    /// no replica is configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    read_replica: Option<ReplicaStatus>,
    /// The saga's backlog (as old as `subscriptions`); `null` when the database did not
    /// answer.
    saga: Option<SagaDepth>,
    /// `ready`, or `not_ready`.
    #[schema(example = "ready")]
    status: &'static str,
    /// Each subscriber's lag (read at most once per `CARROT_PROGRESS_REFRESH_MS`, so up to
    /// that old); `null` when the database did not answer.
    subscriptions: Option<Vec<SubscriptionLag>>,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    operation_id = "health_live",
    responses((status = 200, description = "The process runs.", body = Liveness)),
)]
async fn live() -> Json<Liveness> {
    Json(Liveness { status: "live" })
}

/// Readiness.
///
/// 200 only when the database answers and every migration is applied; the detail says
/// how far behind each subscriber is. Anyone may probe, so a probe costs two trivial
/// statements: the lag and the saga's backlog (which count rows) come from a copy read at
/// most once per `CARROT_PROGRESS_REFRESH_MS`, and no error text is shown.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    operation_id = "health_ready",
    responses(
        (status = 200, description = "Ready to serve.", body = Readiness),
        (status = 503, description = "Not ready: the database is down or slow, migrations are \
         pending, or the process is shutting down. The same JSON detail.", body = Readiness),
    ),
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let check = async {
        // Per probe: the database answers, and the migrations (a small table).
        sqlx::query("SELECT 1").execute(&state.pool).await?;
        let migrated = carrot_projections::postgres::migrations_applied(&state.pool).await?;
        // Shared by every probe and scrape within the refresh interval.
        let progress = state.progress.get(&state.pool).await?;
        let lag = progress
            .subscribers
            .iter()
            .map(|s| SubscriptionLag {
                failing: s.last_error.is_some(),
                lag_events: s.lag_events,
                lag_ms: s.lag_ms,
                name: s.name.clone(),
                quarantined: s.quarantined,
            })
            .collect();
        let saga = SagaDepth {
            dead_letters: progress.dead_letters,
            outbox_pending: progress.outbox_pending,
            stuck: progress.stuck,
        };
        Ok::<_, sqlx::Error>((migrated, lag, saga))
    };
    let (database, migrations, subscriptions, saga) =
        match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Ok((migrated, lag, saga))) => {
                let migrations = if migrated { "applied" } else { "pending" };
                ("up", migrations, Some(lag), Some(saga))
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check failed");
                ("down", "unknown", None, None)
            }
            Err(_) => ("timeout", "unknown", None, None),
        };
    let accepting = state.is_accepting();
    let ready = database == "up" && migrations == "applied" && accepting;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let readiness = Readiness {
        accepting_traffic: accepting,
        database,
        migrations,
        payment_gateway: GatewayHealth {
            circuit: state.breaker.state(),
        },
        read_replica: state.reads.status(),
        saga,
        status: if ready { "ready" } else { "not_ready" },
        subscriptions,
    };
    (status, Json(readiness))
}
