//! The keys of the metadata every event carries (cqrs-es stores it beside the payload).

/// The request id of the trade the event belongs to: the saga and timelines key on it.
pub const CORRELATION_ID: &str = "correlation_id";
/// The id of the command (or event) that caused this event.
pub const CAUSATION_ID: &str = "causation_id";
/// The user who acted, or `system` for the saga and timers.
pub const ACTOR: &str = "actor";
/// The HTTP request id the command arrived with, to join logs and events.
pub const HTTP_REQUEST_ID: &str = "http_request_id";
/// A deterministic command id: a repeated command id is treated as already done.
pub const COMMAND_ID: &str = "command_id";
/// The `Idempotency-Key` the HTTP request carried: a retried request is the same command.
pub const IDEMPOTENCY_KEY: &str = "idempotency_key";
