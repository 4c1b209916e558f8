//! Black-box tests of the HTTP API through a spawned server on a real PostgreSQL.

mod accounts;
mod admin;
mod authorization;
mod bounds;
mod breaker;
#[path = "../common/mod.rs"]
mod common;
mod corpus;
mod crash;
mod deadlines;
mod erasure;
mod export;
mod health;
mod helpers;
mod idempotency;
mod idempotency_retries;
mod invariants;
mod listings;
mod metrics;
mod openapi;
mod poison;
mod races;
mod reads;
mod reconciliation;
mod replay;
mod requests;
mod restore;
mod roles;
mod saga_recovery;
mod schema;
mod security;
mod sessions;
mod settlement;
mod stranded;
mod tls;
mod write_ahead;
