//! `carrot payment-sim`: the simulated gateway as its own HTTP service, speaking the
//! protocol of [`super::http`], with fault injection at run time so outages can be staged
//! against a live Carrot:
//!
//! - `GET /faults`, `PUT /faults` `{latency_ms: "400-620", failure_rate, decline_rate,
//!   transfer_decline_rate, down, proxy_error_rate, drop_rate}`: the last two move the
//!   money and then lose the answer,
//!   as a 502 from a proxy (an HTML page) or as a connection dropped mid-answer
//! - `GET /movements?since=RFC3339&limit=N`: the money it moved (its transaction list)
//! - `GET /ledger`: every idempotency key it has seen, with its outcome and how many calls
//!   carried it (for counting money movements in tests and drills)
//! - `GET /health`
//!
//! A failure it answers itself (nothing moved) is 503 with `{"processed": false}`: the
//! only 5xx the adapter may take for "nothing moved".

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carrot_domain::payment::{CaptureStatus, GatewayError, PaymentGateway, Receipt, TransferOrder};
use carrot_domain::{Money, UserId};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::http::Transfer;
use super::{LostAnswer, SimulatedGateway, SimulationProfile};
use crate::config::parse_latency;

/// The simulator's routes.
pub fn router(gateway: Arc<SimulatedGateway>) -> Router {
    Router::new()
        .route("/captures", post(capture))
        .route("/captures/resolve", post(resolve))
        .route("/refunds", post(refund))
        .route("/payouts", post(payout))
        .route("/movements", get(movements))
        .route("/faults", get(faults).put(set_faults))
        .route("/ledger", get(ledger))
        .route("/health", get(|| async { Json(json!({"status": "up"})) }))
        .with_state(gateway)
}

type Sim = State<Arc<SimulatedGateway>>;

fn answer((outcome, lost): (Result<Receipt, GatewayError>, Option<LostAnswer>)) -> Response {
    match lost {
        Some(LostAnswer::ProxyError) => {
            return (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response()
        }
        Some(LostAnswer::Dropped) => {
            // The status line goes out, then the body fails: the client sees the
            // connection end before the answer is complete.
            let broken = futures_util::stream::once(async {
                Err::<axum::body::Bytes, _>(std::io::Error::other("connection dropped"))
            });
            return (StatusCode::CREATED, Body::from_stream(broken)).into_response();
        }
        None => {}
    }
    match outcome {
        Ok(receipt) => (
            StatusCode::CREATED,
            Json(json!({"reference": receipt.reference})),
        )
            .into_response(),
        Err(GatewayError::Declined(reason)) => (
            StatusCode::PAYMENT_REQUIRED,
            Json(json!({"reason": reason})),
        )
            .into_response(),
        Err(other) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": other.to_string(), "processed": false})),
        )
            .into_response(),
    }
}

fn order(transfer: Transfer) -> TransferOrder {
    TransferOrder {
        idempotency_key: transfer.idempotency_key,
        recipient: UserId::from_uuid(transfer.party),
        amount: Money::krw(transfer.amount),
    }
}

async fn capture(State(gateway): Sim, Json(t): Json<Transfer>) -> Response {
    let party = UserId::from_uuid(t.party);
    answer(
        gateway
            .settle_answering(
                "capture",
                t.idempotency_key,
                party,
                Money::krw(t.amount),
                true,
            )
            .await,
    )
}

async fn refund(State(gateway): Sim, Json(t): Json<Transfer>) -> Response {
    transfer(&gateway, "refund", order(t)).await
}

async fn payout(State(gateway): Sim, Json(t): Json<Transfer>) -> Response {
    transfer(&gateway, "payout", order(t)).await
}

async fn transfer(
    gateway: &SimulatedGateway,
    operation: &'static str,
    o: TransferOrder,
) -> Response {
    answer(
        gateway
            .settle_answering(operation, o.idempotency_key, o.recipient, o.amount, false)
            .await,
    )
}

/// `GET /movements` parameters.
#[derive(Debug, Deserialize)]
struct Since {
    since: chrono::DateTime<chrono::Utc>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    1000
}

async fn movements(State(gateway): Sim, Query(q): Query<Since>) -> Json<Value> {
    let moved = gateway.movements_since(q.since, q.limit.clamp(1, 10_000));
    Json(json!({ "movements": moved }))
}

#[derive(Debug, Deserialize)]
struct Key {
    idempotency_key: String,
}

async fn resolve(State(gateway): Sim, Json(key): Json<Key>) -> Response {
    match gateway.resolve_capture(&key.idempotency_key).await {
        Ok(CaptureStatus::Captured(receipt)) => {
            Json(json!({"status": "captured", "reference": receipt.reference})).into_response()
        }
        Ok(CaptureStatus::Declined(reason)) => {
            Json(json!({"status": "declined", "reason": reason})).into_response()
        }
        Ok(CaptureStatus::Voided) => Json(json!({"status": "voided"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

/// The faults as set over HTTP.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Faults {
    latency_ms: String,
    failure_rate: f64,
    decline_rate: f64,
    #[serde(default)]
    transfer_decline_rate: f64,
    down: bool,
    #[serde(default)]
    proxy_error_rate: f64,
    #[serde(default)]
    drop_rate: f64,
}

async fn faults(State(gateway): Sim) -> Json<Faults> {
    let p = gateway.profile();
    Json(Faults {
        latency_ms: format!("{}-{}", p.latency_ms.start(), p.latency_ms.end()),
        failure_rate: p.failure_rate,
        decline_rate: p.decline_rate,
        transfer_decline_rate: p.transfer_decline_rate,
        down: p.down,
        proxy_error_rate: p.proxy_error_rate,
        drop_rate: p.drop_rate,
    })
}

async fn set_faults(State(gateway): Sim, Json(f): Json<Faults>) -> Response {
    let rates_ok = [
        f.failure_rate,
        f.decline_rate,
        f.transfer_decline_rate,
        f.proxy_error_rate,
        f.drop_rate,
    ]
    .iter()
    .all(|rate| (0.0..=1.0).contains(rate));
    match parse_latency(&f.latency_ms) {
        Ok(latency_ms) if rates_ok => {
            gateway.set_profile(SimulationProfile {
                latency_ms,
                failure_rate: f.failure_rate,
                decline_rate: f.decline_rate,
                transfer_decline_rate: f.transfer_decline_rate,
                down: f.down,
                proxy_error_rate: f.proxy_error_rate,
                drop_rate: f.drop_rate,
            });
            tracing::warn!(?f, "payment simulator faults changed");
            faults(State(gateway)).await.into_response()
        }
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": "latency_ms is N or MIN-MAX; rates are from 0 to 1"})),
        )
            .into_response(),
    }
}

async fn ledger(State(gateway): Sim) -> Json<Value> {
    let mut entries: Vec<Value> = gateway
        .ledger()
        .into_iter()
        .map(|(key, s)| {
            json!({
                "idempotency_key": key,
                "operation": s.operation,
                "party": s.party,
                "amount": s.amount.as_krw(),
                "outcome": match &s.outcome { Ok(_) => "ok".to_owned(), Err(reason) => reason.clone() },
                "calls": s.calls,
            })
        })
        .collect();
    entries.sort_by(|a, b| {
        a["idempotency_key"]
            .as_str()
            .cmp(&b["idempotency_key"].as_str())
    });
    Json(json!({ "entries": entries }))
}
