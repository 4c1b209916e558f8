//! `GET /metrics`: Prometheus text. Counters and histograms kept in the process (HTTP
//! requests by route and status, command outcomes, gateway calls, saga commands, commit to
//! applied lag per subscriber), and gauges read from the database when scraped, so every
//! replica reports the same truth: each subscriber's backlog, the age of the oldest open
//! transaction (it holds every reader back), the saga's outbox and dead letters; plus this
//! process's circuit breaker.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use carrot_projections::log::status::SubscriberStatus;
use carrot_projections::metrics::{format_labels, global};
use std::fmt::Write;

use crate::payment::BreakerState;
use crate::state::AppState;

/// The metrics route (no authentication, like the probes).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(render))
}

/// Counts and times every request under its route's pattern and its method's name. No
/// label takes raw caller input, or one caller could add series without end: the route is
/// the matched pattern (never the raw path, whose ids would make unbounded series), and a
/// method outside the standard ones is `other`.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let metrics = global();
    metrics.inc(
        "carrot_http_requests_total",
        &[("method", method), ("route", &route), ("status", &status)],
    );
    metrics.observe(
        "carrot_http_request_duration_seconds",
        &[("method", method), ("route", &route)],
        started.elapsed(),
    );
    response
}

/// The `method` label: one of the methods of RFC 9110 (and PATCH), else `other`. Any token
/// is a valid method on the wire, so the caller's own must never become a label.
pub fn method_label(method: &Method) -> &'static str {
    static KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

fn help(name: &str) -> &'static str {
    match name {
        "carrot_http_requests_total" => {
            "HTTP requests answered, by method, route pattern and status."
        }
        "carrot_http_request_duration_seconds" => {
            "HTTP request latency, by method and route pattern."
        }
        "carrot_commands_total" => {
            "Commands executed on aggregates, by outcome (ok, refused, contended, failed)."
        }
        "carrot_saga_commands_total" => "Saga outbox commands run by dispatchers, by outcome.",
        "carrot_payment_gateway_calls_total" => {
            "Payment gateway calls through the circuit breaker, by operation and outcome."
        }
        "carrot_subscription_apply_lag_seconds" => {
            "From an event's append to a subscriber applying it (commit to visible)."
        }
        "carrot_subscription_reads_total" => {
            "Batches of the process's runners by where their events came from: a window of \
             the log another runner read (window), or a read of their own (log)."
        }
        "carrot_subscription_status_reads_total" => {
            "Reads of every subscriber's lag from the database (readiness and /metrics share \
             one per refresh interval)."
        }
        "carrot_consistency_checks_total" => {
            "Checks of a consistency token against the views' checkpoints."
        }
        _ => "Carrot metric.",
    }
}

/// Prometheus metrics (text exposition format 0.0.4).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "HTTP requests by route and status, latency histograms, \
         command outcomes, gateway calls, projection lag per subscriber, the saga's outbox depth \
         and dead letters, the circuit breaker's state and transitions.",
         body = String, content_type = "text/plain; version=0.0.4; charset=utf-8",
         example = "# HELP carrot_database_up Whether the database answered this scrape.\n# TYPE carrot_database_up gauge\ncarrot_database_up 1\n"),
    ),
)]
async fn render(State(state): State<AppState>) -> Response {
    let mut out = global().render(&help);
    if let Err(e) = database_gauges(&state, &mut out).await {
        tracing::warn!(error = %e, "metrics: the database gauges are missing from this scrape");
        let _ = writeln!(out, "# HELP carrot_database_up Whether the database answered this scrape.\n# TYPE carrot_database_up gauge\ncarrot_database_up 0");
    }
    if let Some(replica) = state.reads.status() {
        let serving = u8::from(replica.reads_from == "replica");
        let lag = replica.lag_ms.unwrap_or(-1);
        let _ = writeln!(out, "# HELP carrot_read_replica_serving Whether the read endpoints read the replica (0: it is behind or down, and bypassed).\n# TYPE carrot_read_replica_serving gauge\ncarrot_read_replica_serving {serving}");
        let _ = writeln!(out, "# HELP carrot_read_replica_lag_ms The read replica's lag behind the primary at its last measurement (-1: it did not answer).\n# TYPE carrot_read_replica_lag_ms gauge\ncarrot_read_replica_lag_ms {lag}");
    }
    let current = state.breaker.state();
    let _ = writeln!(out, "# HELP carrot_payment_circuit_state The payment gateway circuit breaker's state (1: current).\n# TYPE carrot_payment_circuit_state gauge");
    for s in [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
    ] {
        let labels = format_labels(&[("state", s.name().to_owned())], None);
        let _ = writeln!(
            out,
            "carrot_payment_circuit_state{labels} {}",
            u8::from(s == current)
        );
    }
    let _ = writeln!(
        out,
        "# HELP carrot_payment_circuit_transitions_total State changes of the circuit breaker.\n# TYPE carrot_payment_circuit_transitions_total counter\ncarrot_payment_circuit_transitions_total {}",
        state.breaker.transitions()
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

/// A gauge per item: its name, its help line, and its value for an item.
type Gauge<T> = (&'static str, &'static str, fn(&T) -> f64);

async fn database_gauges(state: &AppState, out: &mut String) -> Result<(), sqlx::Error> {
    // Counted rows: shared with readiness, read at most once per refresh interval.
    let progress = state.progress.get(&state.pool).await?;
    let subscribers = &progress.subscribers;
    let (pending, dead, stuck) = (
        progress.outbox_pending,
        progress.dead_letters,
        progress.stuck,
    );
    // Open mismatches: a count over a partial index of the (few) open rows.
    let mismatches = carrot_projections::settlement::mismatches::open_count(&state.pool).await?;
    // Per scrape (one row per connection), so `carrot_database_up` tells the truth.
    let horizon = horizon_age_seconds(&state.pool).await?;
    let _ = writeln!(out, "# HELP carrot_database_up Whether the database answered this scrape.\n# TYPE carrot_database_up gauge\ncarrot_database_up 1");
    let per_subscriber: [Gauge<SubscriberStatus>; 4] = [
        (
            "carrot_subscription_lag_events",
            "Events in the log a subscriber has not applied yet.",
            |s| s.lag_events as f64,
        ),
        (
            "carrot_subscription_lag_seconds",
            "Age of the oldest event a subscriber has not applied.",
            |s| s.lag_ms as f64 / 1000.0,
        ),
        (
            "carrot_subscription_quarantined_events",
            "Events a subscriber holds in quarantine: poisons it cannot read and the later events of their aggregates.",
            |s| s.quarantined as f64,
        ),
        (
            "carrot_subscription_failing",
            "1 while a subscriber's last batch failed (an event this code cannot read, the database): it retries, and stays where it is; why is in GET /admin/subscriptions.",
            |s| f64::from(u8::from(s.last_error.is_some())),
        ),
    ];
    for (name, help, value) in per_subscriber {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in subscribers {
            let labels = format_labels(&[("subscriber", s.name.clone())], None);
            let _ = writeln!(out, "{name}{labels} {}", value(s));
        }
    }
    let _ = writeln!(out, "# HELP carrot_log_horizon_age_seconds Age of the oldest open write transaction in the cluster: readers of the log wait for it.\n# TYPE carrot_log_horizon_age_seconds gauge\ncarrot_log_horizon_age_seconds {horizon}");
    let _ = writeln!(out, "# HELP carrot_saga_outbox_pending Saga commands waiting to run.\n# TYPE carrot_saga_outbox_pending gauge\ncarrot_saga_outbox_pending {pending}");
    let _ = writeln!(out, "# HELP carrot_saga_dead_letters Saga commands that gave up and wait for an operator.\n# TYPE carrot_saga_dead_letters gauge\ncarrot_saga_dead_letters {dead}");
    let _ = writeln!(out, "# HELP carrot_saga_commands_stuck Saga commands (refunds, payouts...) failing for longer than the alert threshold; still retried.\n# TYPE carrot_saga_commands_stuck gauge\ncarrot_saga_commands_stuck {stuck}");
    let _ = writeln!(out, "# HELP carrot_reconciliation_mismatches Differences between the payment gateway and the log that wait for an operator.\n# TYPE carrot_reconciliation_mismatches gauge\ncarrot_reconciliation_mismatches {mismatches}");
    Ok(())
}

/// The age of the oldest open write transaction in the cluster, in seconds: readers of the
/// log wait for it (the log horizon's age).
pub async fn horizon_age_seconds(
    pool: &carrot_projections::postgres::Db,
) -> Result<f64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(extract(epoch FROM now() - min(xact_start)), 0)::float8
           FROM pg_stat_activity WHERE backend_xid IS NOT NULL",
    )
    .fetch_one(pool)
    .await
}
