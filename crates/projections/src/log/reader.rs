//! The ordered reader of the event log.
//!
//! Identity values are handed out before commit, so ordering by `global_position` alone can
//! skip an event whose transaction commits late. The reader orders by
//! `(transaction_id, global_position)` and reads only below `pg_snapshot_xmin` of the
//! statement's own snapshot: every transaction under that horizon has finished, so nothing
//! can appear behind the reader later. No gap timeout, no skipping. Both the ids written
//! and the horizon carry the database's offset (`log_transaction_id()`, `log_horizon()`),
//! which keeps the order when the database moves to another cluster
//! (`postgres/log_order.rs`).

use std::fmt;
use std::str::FromStr;

use carrot_domain::schema;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::Payload;
use crate::postgres::Db;

/// A place in the log: the pair `(transaction_id, global_position)`, never the position alone.
///
/// Also the consistency token handed to clients (`"<transaction_id>.<global_position>"`):
/// a view whose checkpoint is at or past it reflects that event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Checkpoint {
    /// The 64-bit id (`xid8`) of the transaction that appended the event, plus the
    /// database's offset (`postgres/log_order.rs`).
    pub transaction_id: u64,
    /// The event's identity value.
    pub global_position: i64,
}

impl Checkpoint {
    /// The start of the log: before every event.
    pub const ORIGIN: Checkpoint = Checkpoint {
        transaction_id: 0,
        global_position: 0,
    };
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.transaction_id, self.global_position)
    }
}

/// A consistency token that is not of the form `<transaction_id>.<global_position>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a consistency token looks like `123.45`")]
pub struct MalformedToken;

impl FromStr for Checkpoint {
    type Err = MalformedToken;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (tx, pos) = s.split_once('.').ok_or(MalformedToken)?;
        Ok(Checkpoint {
            transaction_id: tx.parse().map_err(|_| MalformedToken)?,
            global_position: pos.parse().map_err(|_| MalformedToken)?,
        })
    }
}

/// One event as stored in the log, with its place in the global order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Where the event stands in the log.
    pub checkpoint: Checkpoint,
    /// The aggregate's type (`listing`, `purchase_request`, `payment`).
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The event's sequence within its aggregate, from 1.
    pub sequence: i64,
    /// The event's name.
    pub event_type: String,
    /// The payload's schema version.
    pub event_version: String,
    /// The event as serialized by cqrs-es (`{"EventName": {...}}`).
    pub payload: Payload,
    /// Correlation id, actor, causation id, HTTP request id.
    pub metadata: Value,
    /// When the append happened (database time).
    pub recorded_at: DateTime<Utc>,
}

impl StoredEvent {
    /// A metadata value, if present and a string.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// The event as `carrot events --json` prints it and an export holds it.
    pub fn record(&self) -> EventRecord {
        EventRecord {
            aggregate_id: self.aggregate_id.clone(),
            aggregate_type: self.aggregate_type.clone(),
            checkpoint: self.checkpoint.to_string(),
            event_type: self.event_type.clone(),
            event_version: self.event_version.clone(),
            metadata: self.metadata.clone(),
            payload: (*self.payload).clone(),
            recorded_at: self.recorded_at,
            sequence: self.sequence,
        }
    }

    /// Decodes the payload into an aggregate's event type.
    pub fn decode<E: serde::de::DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        self.payload.decode()
    }
}

/// The columns every reader selects, in the shape `StoredEvent::from_row` expects.
pub(crate) const EVENT_COLUMNS: &str = "e.transaction_id::text AS transaction_id, \
    e.global_position, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, \
    e.event_version, e.payload, e.metadata, e.recorded_at";

impl StoredEvent {
    /// An event as stored in its row: sealed fields still sealed, at its stored version.
    /// [`ready`] makes it readable.
    pub(crate) fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let transaction_id: String = row.try_get("transaction_id")?;
        Ok(StoredEvent {
            checkpoint: Checkpoint {
                transaction_id: transaction_id
                    .parse()
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                global_position: row.try_get("global_position")?,
            },
            aggregate_type: row.try_get("aggregate_type")?,
            aggregate_id: row.try_get("aggregate_id")?,
            sequence: row.try_get("sequence")?,
            event_type: row.try_get("event_type")?,
            event_version: row.try_get("event_version")?,
            payload: row.try_get("payload")?,
            metadata: row.try_get("metadata")?,
            recorded_at: row.try_get("recorded_at")?,
        })
    }

    fn upcast(&mut self) -> Result<(), Box<UnreadableEvent>> {
        // At today's version already (nearly every event): nothing to bring up, and the
        // payload need not be parsed for it.
        if schema::current_version(&self.aggregate_type, &self.event_type)
            == Some(self.event_version.as_str())
        {
            return Ok(());
        }
        let stored = self.payload.take();
        let (aggregate, event_type) = (&self.aggregate_type, &self.event_type);
        match schema::bring_up(aggregate, event_type, &mut self.event_version, stored) {
            Ok(payload) => {
                self.payload = Payload::from(payload);
                Ok(())
            }
            Err(reason) => Err(Box::new(UnreadableEvent {
                at: self.checkpoint,
                aggregate_type: self.aggregate_type.clone(),
                aggregate_id: self.aggregate_id.clone(),
                reason,
            })),
        }
    }
}

/// Stored events made readable: what a person typed opened with their key (one read of the
/// keys the events need; `[erased]` where a key is destroyed), then each brought to its
/// type's current version (`carrot_domain::schema`). An event this code cannot read (a type
/// or version newer than the code) fails the read, naming its place in the log: the reader
/// stops there, it never skips. Payloads left out of the read (other aggregates' events for
/// a subscriber that does not read them) are not looked at.
pub(crate) async fn ready<'c>(
    db: impl sqlx::PgExecutor<'c>,
    mut events: Vec<StoredEvent>,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    crate::personal::open_events(db, &mut events)
        .await
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    for event in &mut events {
        if !event.payload.is_null() {
            event
                .upcast()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        }
    }
    Ok(events)
}

/// Rows of [`EVENT_COLUMNS`] as readable events.
pub(crate) async fn ready_rows<'c>(
    db: impl sqlx::PgExecutor<'c>,
    rows: &[PgRow],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let events = rows
        .iter()
        .map(StoredEvent::from_row)
        .collect::<Result<_, _>>()?;
    ready(db, events).await
}

/// One event as people and other programs read it (fields in alphabetical order, as
/// `carrot events --json` has always printed them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct EventRecord {
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// Its aggregate's type (`listing`, `purchase_request`, `payment`).
    pub aggregate_type: String,
    /// Its place in the log, `<transaction_id>.<global_position>`.
    pub checkpoint: String,
    /// Its type.
    pub event_type: String,
    /// Its type's version, as read (brought to today's).
    pub event_version: String,
    /// Who caused it, its correlation and causation, the HTTP request.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub metadata: Value,
    /// The event (`{"EventType": {...}}`).
    #[schema(value_type = std::collections::HashMap<String, Object>)]
    pub payload: Value,
    /// When it was appended.
    pub recorded_at: DateTime<Utc>,
    /// Its place in its aggregate's stream, from 1.
    pub sequence: i64,
}

/// An event in the log this code cannot read: where it is, and why.
#[derive(Debug, thiserror::Error)]
#[error("the event at {at} ({aggregate_type} {aggregate_id}) cannot be read by this code: {reason}; deploy code that reads it (no event is skipped)")]
pub struct UnreadableEvent {
    /// Its place in the log.
    pub at: Checkpoint,
    /// Its aggregate's type.
    pub aggregate_type: String,
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// Why.
    pub reason: schema::Unreadable,
}

/// The statement fragment that selects the next events after the checkpoint `(tx, pos)`
/// (SQL expressions), at most `limit`, below the horizon of the statement's own snapshot.
///
/// Every reader of the log goes through this one definition of "next".
pub(crate) fn next_events_sql(tx: &str, pos: &str, limit: &str) -> String {
    next_events_of_sql(tx, pos, limit, None)
}

/// As [`next_events_sql`], but with payload and metadata only for the aggregate types in
/// the SQL array expression `types` (the others come with `null`s: their place in the log
/// still moves the reader on, and nobody pays for sending and decoding them).
pub(crate) fn next_events_of_sql(tx: &str, pos: &str, limit: &str, types: Option<&str>) -> String {
    let columns = match types {
        None => EVENT_COLUMNS.to_owned(),
        Some(types) => EVENT_COLUMNS
            .replace(
                "e.payload",
                &format!("CASE WHEN {types} IS NULL OR e.aggregate_type = ANY({types}) THEN e.payload ELSE 'null' END AS payload"),
            )
            .replace(
                "e.metadata",
                &format!("CASE WHEN {types} IS NULL OR e.aggregate_type = ANY({types}) THEN e.metadata ELSE 'null' END AS metadata"),
            ),
    };
    format!(
        "SELECT {columns} FROM public.events e
          WHERE (e.transaction_id, e.global_position) > ({tx}, {pos})
            AND e.transaction_id < public.log_horizon()
          ORDER BY e.transaction_id, e.global_position
          LIMIT {limit}"
    )
}

/// Up to `limit` events after `after`, in log order, all below the horizon of one snapshot.
pub async fn read_after(
    conn: &mut PgConnection,
    after: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&next_events_sql("$1::text::xid8", "$2", "$3"))
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    ready_rows(conn, &rows).await
}

/// Up to `limit` events after `after` and at most `upto`, in log order: the events a view
/// at checkpoint `upto` has applied since `after` (all of them below the horizon).
pub async fn read_between(
    conn: &mut PgConnection,
    after: Checkpoint,
    upto: Checkpoint,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM public.events e
          WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
            AND (e.transaction_id, e.global_position) <= ($3::text::xid8, $4)
          ORDER BY e.transaction_id, e.global_position
          LIMIT $5"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(upto.transaction_id.to_string())
    .bind(upto.global_position)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    ready_rows(conn, &rows).await
}

/// Every event of one trade, in log order: those whose correlation id is the request id
/// (the request's, its payment's, its listing's reservation and sale, the saga's).
pub async fn events_of_trade(
    pool: &Db,
    request_id: uuid::Uuid,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM public.events e
          WHERE e.metadata ->> 'correlation_id' = $1
             OR (e.aggregate_type = 'purchase_request' AND e.aggregate_id = $1)
          ORDER BY e.transaction_id, e.global_position"
    ))
    .bind(request_id.to_string())
    .fetch_all(pool)
    .await?;
    ready_rows(pool, &rows).await
}

/// Every event of the aggregates `(type, id)`, in log order.
pub async fn events_of_aggregates(
    pool: &Db,
    aggregates: &[(String, String)],
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let (types, ids): (Vec<&str>, Vec<&str>) = aggregates
        .iter()
        .map(|(t, i)| (t.as_str(), i.as_str()))
        .unzip();
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM public.events e
          WHERE (e.aggregate_type, e.aggregate_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
          ORDER BY e.transaction_id, e.global_position"
    ))
    .bind(types)
    .bind(ids)
    .fetch_all(pool)
    .await?;
    ready_rows(pool, &rows).await
}

/// Every event of one aggregate, in order.
pub async fn events_of_aggregate(
    pool: &Db,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM public.events e
          WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 ORDER BY e.sequence"
    ))
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await?;
    ready_rows(pool, &rows).await
}

/// The place of the last event of one aggregate: the consistency token of a command.
pub async fn last_event_of(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(conn)
    .await?;
    row.map(checkpoint_of).transpose()
}

/// The place of the last event of the log that this moment sees committed (not only
/// those below the horizon): a subscriber at it has applied everything committed before.
pub async fn log_head(pool: &Db) -> Result<Option<Checkpoint>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT transaction_id::text, global_position FROM events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(checkpoint_of).transpose()
}

/// A checkpoint from its two columns as selected (`transaction_id::text`, position).
fn checkpoint_of((tx, pos): (String, i64)) -> Result<Checkpoint, sqlx::Error> {
    Ok(Checkpoint {
        transaction_id: tx.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        global_position: pos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_through_its_text_form() {
        let cp = Checkpoint {
            transaction_id: 812,
            global_position: 44,
        };
        assert_eq!(cp.to_string(), "812.44");
        assert_eq!("812.44".parse::<Checkpoint>(), Ok(cp));
        for bad in ["", "812", "a.b", "1.2.3", "-1.2", " 1.2"] {
            assert!(
                bad.parse::<Checkpoint>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn checkpoints_order_by_transaction_then_position() {
        let early_tx_late_pos = Checkpoint {
            transaction_id: 5,
            global_position: 90,
        };
        let late_tx_early_pos = Checkpoint {
            transaction_id: 6,
            global_position: 10,
        };
        assert!(early_tx_late_pos < late_tx_early_pos);
    }
}
