//! The timeline of each trade: every event of the request, of its payment, of its
//! listing that names it (reserved, released, sold for it), and operators' decisions on
//! its saga's dead letters, in log order, for the request's detail page. Kept by the `timeline` subscriber in the `timeline` schema.

use async_trait::async_trait;
use carrot_domain::dead_letter::DeadLetter;
use carrot_domain::listing::Listing;
use carrot_domain::payment::Payment;
use carrot_domain::purchase_request::PurchaseRequest;
use carrot_domain::RequestId;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

use crate::log::subscriber::{ApplyError, Filling, Subscriber};
use crate::log::StoredEvent;
use crate::postgres::Db;
use crate::replay::{Aside, Shadow};
use crate::views::aside::{RowsAside, WritesAside};
use crate::views::erasure::{self, Part};
use crate::views::fold;

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

    // A rebuild's fill only adds entries, each event's once, and never by conflict target:
    // the key is built after it (at ten million events, 20 s of inserts and a 5 s build,
    // against 57 s of inserts into the keyed table).
    fn unique_after_fill(&self) -> &'static [&'static str] {
        &["entries_pkey"]
    }

    // A rebuild writes the entries aside (`WritesAside`, below).
    fn filling(&self, shadow: &Shadow) -> Option<Box<dyn Filling>> {
        RowsAside::filling(shadow, *self)
    }

    async fn apply(&self, tx: &mut PgConnection, events: &[StoredEvent]) -> Result<(), ApplyError> {
        for part in erasure::cut_at_closings(events)? {
            match part {
                Part::Events(events) => {
                    fold::upsert(tx, "entries", None, &entries(events)?).await?
                }
                Part::Closed(user) => erasure::timeline(tx, user).await?,
            }
        }
        Ok(())
    }
}

/// A rebuild's entries, written aside: a batch only adds rows, so one batch's are written
/// while the next is read and made into entries.
#[async_trait]
impl WritesAside for TimelineProjection {
    async fn events(
        &mut self,
        aside: &mut Aside,
        _tx: &mut PgConnection,
        events: &[StoredEvent],
    ) -> Result<(), ApplyError> {
        let entries = entries(events)?;
        aside
            .start(|mut tx| async move {
                fold::upsert(&mut tx, "entries", None, &entries).await?;
                Ok(tx)
            })
            .await
    }

    async fn erase(tx: &mut PgConnection, user: Uuid) -> Result<(), ApplyError> {
        erasure::timeline(tx, user).await
    }
}

/// The entries of a batch's events.
fn entries(events: &[StoredEvent]) -> Result<Vec<Entry>, ApplyError> {
    events
        .iter()
        .filter_map(|event| entry(event).transpose())
        .collect()
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
    detail: Fields,
}

/// An event's fields, each kept as its JSON text: an entry copies them into its row as they
/// are, so they are never made into `serde_json::Value`s (`log/payload.rs`).
type Fields = BTreeMap<String, Box<RawValue>>;

/// Where a request's or payment's event names its trade's request.
#[derive(Deserialize)]
struct TradeOf {
    request_id: String,
}

/// The trade an event belongs to, and its entry: the payload's fields but the trade (the
/// page shows it once) and the timestamp (the entry's `at`).
fn entry(event: &StoredEvent) -> Result<Option<Entry>, ApplyError> {
    // `{"EventType": {fields}}`; a payload of any other shape names no trade.
    let body = event
        .decode::<HashMap<String, Box<RawValue>>>()
        .ok()
        .and_then(|mut outer| outer.remove(&event.event_type))
        .and_then(|body| serde_json::from_str::<Fields>(body.get()).ok());
    let Some(mut body) = body else {
        return Ok(None);
    };
    let request_id = match event.aggregate_type.as_str() {
        PurchaseRequest::TYPE | Payment::TYPE => body
            .get("trade")
            .and_then(|t| serde_json::from_str::<TradeOf>(t.get()).ok())
            .map(|t| t.request_id),
        Listing::TYPE | DeadLetter::TYPE => body.get("request_id").and_then(|f| text(f)),
        _ => None,
    };
    let Some(request_id) = request_id else {
        return Ok(None);
    };
    let request_id = Uuid::try_parse(&request_id)
        .map_err(|e| ApplyError::payload(event, serde::de::Error::custom(e)))?;
    let at_field = body.keys().find(|k| k.ends_with("_at")).cloned();
    let at = at_field
        .as_ref()
        .and_then(|k| body.get(k))
        .and_then(|f| text(f))
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(event.recorded_at);
    body.remove("trade");
    if let Some(at_field) = &at_field {
        body.remove(at_field);
    }
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
        detail: body,
    }))
}

/// A field's text, when it is a JSON string.
fn text(field: &RawValue) -> Option<String> {
    serde_json::from_str(field.get()).ok()
}

/// One step of a trade, in log order: the event's name and time, who caused it, and the
/// event's own fields (for example `by` and `after_acceptance` of a cancellation, `reason` of
/// a rejection, `amount` of a payment).
#[derive(Debug, Clone, PartialEq, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// The event (`PaymentCaptured`, `PurchaseRequested`, `ListingReserved`,
    /// `PurchaseRequestAccepted`...).
    #[schema(example = "PurchaseRequested")]
    pub event: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The user who caused it, if a user did.
    pub actor: Option<String>,
    /// The event's own fields, beside the three above.
    #[serde(flatten)]
    pub detail: BTreeMap<String, Value>,
}

/// One flat object, keys in order (the event's fields beside `event`, `at` and `actor`), as
/// entries have always been written.
impl Serialize for TimelineEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let at = self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let mut entry: BTreeMap<&str, Value> = self
            .detail
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        entry.insert("event", Value::String(self.event.clone()));
        entry.insert("at", Value::String(at));
        entry.insert(
            "actor",
            self.actor.clone().map_or(Value::Null, Value::String),
        );
        entry.serialize(serializer)
    }
}

/// A trade's timeline, in log order.
#[tracing::instrument(skip(pool))]
pub async fn timeline(pool: &Db, request_id: RequestId) -> Result<Vec<TimelineEntry>, sqlx::Error> {
    let rows: Vec<(String, DateTime<Utc>, Option<String>, Value)> = sqlx::query_as(
        "SELECT event, at, actor, detail FROM timeline.entries WHERE request_id = $1
          ORDER BY transaction_id, global_position",
    )
    .bind(request_id.as_uuid())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(event, at, actor, detail)| TimelineEntry {
            event,
            at,
            actor,
            detail: match detail {
                Value::Object(fields) => fields.into_iter().collect(),
                _ => BTreeMap::new(),
            },
        })
        .collect())
}
