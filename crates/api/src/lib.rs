//! Carrot's edges: the axum server (commands, queries, auth, health), the `carrot` CLI,
//! configuration, and the database wiring at start-up.
#![forbid(unsafe_code)]

pub mod access_log;
pub mod auth;
pub mod config;
pub mod console;
pub mod database;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod limits;
pub mod listing_cache;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod payment;
pub mod progress;
pub mod reads;
pub mod request_id;
pub mod routes;
pub mod secret;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod trade;
pub mod workers;
