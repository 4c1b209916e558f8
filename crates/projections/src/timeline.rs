//! The timeline of each trade: every event of the request, of its payment, and of its
//! listing that names it (reserved, released, sold for it), in log order, for the
//! request's detail page. Kept by the `timeline` subscriber in the `timeline` schema.

use crate::postgres::Db;
use async_trait::async_trait;
use carrot_domain::listing::Listing;
use carrot_domain::payment::Payment;
use carrot_domain::purchase_request::PurchaseRequest;
use carrot_domain::RequestId;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runner::{ApplyError, Subscriber};
use crate::view;

/// The subscriber that keeps the timelines.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimelineProjection;

/// The subscriber's name, its checkpoint row and its schema.
pub const TIMELINE: &str = "timeline";

#[async_trait]
impl Subscriber for TimelineProjection {
    fn name(&self) -> &'static str {
        TIMELINE
    }

    // Entries are keyed by their event's place in the log and never replaced.
    fn replays_idempotently(&self) -> bool {
        true
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        let entries = events
            .iter()
            .filter_map(|event| entry(event).transpose())
            .collect::<Result<Vec<Entry>, ApplyError>>()?;
        view::upsert(tx, "entries", None, &entries).await
    }
}

/// A row of `timeline.entries`.
#[derive(Debug, Clone, Serialize)]
struct Entry {
    request_id: Uuid,
    transaction_id: i64,
    global_position: i64,
    event: String,
    at: DateTime<Utc>,
    actor: Option<String>,
    detail: Value,
}

/// The trade an event belongs to, and its entry: the payload's fields but the trade (the
/// page shows it once) and the timestamp (the entry's `at`).
fn entry(event: &StoredEvent) -> Result<Option<Entry>, ApplyError> {
    let Some(body) = event
        .payload
        .get(&event.event_type)
        .and_then(Value::as_object)
    else {
        return Ok(None);
    };
    let request_id = match event.aggregate_type.as_str() {
        PurchaseRequest::TYPE | Payment::TYPE => {
            body.get("trade").and_then(|t| t.get("request_id"))
        }
        Listing::TYPE => body.get("request_id"),
        _ => None,
    };
    let Some(request_id) = request_id.and_then(Value::as_str) else {
        return Ok(None);
    };
    let request_id = Uuid::try_parse(request_id)
        .map_err(|e| ApplyError::payload(event, serde::de::Error::custom(e)))?;
    let at_field = body.keys().find(|k| k.ends_with("_at")).cloned();
    let at = at_field
        .as_ref()
        .and_then(|k| body.get(k))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(event.recorded_at);
    let detail: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| k.as_str() != "trade" && Some(*k) != at_field.as_ref())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let transaction_id = i64::try_from(event.checkpoint.transaction_id)
        .map_err(|e| ApplyError::payload(event, serde::de::Error::custom(e)))?;
    Ok(Some(Entry {
        request_id,
        transaction_id,
        global_position: event.checkpoint.global_position,
        event: event.event_type.clone(),
        at,
        actor: event
            .meta(carrot_domain::metadata::ACTOR)
            .map(str::to_owned),
        detail: Value::Object(detail),
    }))
}

/// A trade's timeline, in log order: `[{event, at, actor, ...detail}]`.
#[tracing::instrument(skip(pool))]
pub async fn timeline(pool: &Db, request_id: RequestId) -> Result<Vec<Value>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>, Option<String>, Value)> = sqlx::query_as(
        "SELECT event, at, actor, detail FROM timeline.entries WHERE request_id = $1
          ORDER BY transaction_id, global_position",
    )
    .bind(request_id.as_uuid())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event, at, actor, detail)| {
            let mut entry = detail.as_object().cloned().unwrap_or_default();
            entry.insert("event".into(), Value::String(event));
            entry.insert(
                "at".into(),
                Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            );
            entry.insert(
                "actor".into(),
                actor.map(Value::String).unwrap_or(Value::Null),
            );
            Value::Object(entry)
        })
        .collect())
}
