//! The log read backwards, for people (the operator console): the newest events, or those
//! before a place, of one aggregate type and one event type if asked. Not for subscribers:
//! it reads what is committed, not below the horizon, so it is a view of the moment.

use crate::log::reader::{ready_rows, EVENT_COLUMNS};
use crate::log::{Checkpoint, StoredEvent};
use crate::postgres::Db;

/// Up to `limit` events, newest first, before `before` if given, filtered by type.
pub async fn tail(
    pool: &Db,
    aggregate_type: Option<&str>,
    event_type: Option<&str>,
    before: Option<Checkpoint>,
    limit: i64,
) -> Result<Vec<StoredEvent>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS} FROM public.events e
          WHERE ($1::text IS NULL OR e.aggregate_type = $1)
            AND ($2::text IS NULL OR e.event_type = $2)
            AND ($3::text IS NULL OR (e.transaction_id, e.global_position) < ($3::text::xid8, $4))
          ORDER BY e.transaction_id DESC, e.global_position DESC
          LIMIT $5"
    ))
    .bind(aggregate_type)
    .bind(event_type)
    .bind(before.map(|b| b.transaction_id.to_string()))
    .bind(before.map_or(0, |b| b.global_position))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    ready_rows(pool, &rows).await
}
