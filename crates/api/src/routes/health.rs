//! Liveness and readiness probes.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use carrot_projections::settlement::outbox;

use crate::state::AppState;

/// The health routes (no authentication).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

/// 200 while the process runs.
async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

/// 200 only when the database answers and every migration is applied; the detail says
/// how far behind each subscriber is.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let check = async {
        sqlx::query("SELECT 1").execute(&state.pool).await?;
        let migrated = carrot_projections::postgres::migrations_applied(&state.pool).await?;
        let lag: Vec<Value> = carrot_projections::runner::status(&state.pool)
            .await?
            .into_iter()
            .map(|s| json!({ "name": s.name, "lag_events": s.lag_events, "lag_ms": s.lag_ms, "last_error": s.last_error }))
            .collect();
        let lag = Value::Array(lag);
        let (pending, dead) = outbox::depth(&state.pool).await?;
        let saga = json!({ "outbox_pending": pending, "dead_letters": dead });
        Ok::<_, sqlx::Error>((migrated, lag, saga))
    };
    let (database, migrations, subscriptions, saga) =
        match tokio::time::timeout(Duration::from_secs(2), check).await {
            Ok(Ok((migrated, lag, saga))) => {
                let migrations = if migrated { "applied" } else { "pending" };
                ("up", migrations, lag, saga)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness check failed");
                ("down", "unknown", Value::Null, Value::Null)
            }
            Err(_) => ("timeout", "unknown", Value::Null, Value::Null),
        };
    let accepting = state.is_accepting();
    let ready = database == "up" && migrations == "applied" && accepting;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ready { "ready" } else { "not_ready" },
            "database": database,
            "migrations": migrations,
            "accepting_traffic": accepting,
            "subscriptions": subscriptions,
            "saga": saga,
            // Informational: an open circuit fails purchase requests fast, but the instance
            // still serves everything else, so it stays ready.
            "payment_gateway": { "circuit": state.breaker.state().name() },
        })),
    )
}
