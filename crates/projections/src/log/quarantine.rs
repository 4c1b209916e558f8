//! Poison events: an event a subscriber cannot apply is held aside with its error, and the
//! subscriber goes on with everything else.
//!
//! Without this, one payload its code cannot read (an event written by a newer version in
//! a rolling deploy, a row damaged by hand) rolls the batch back forever and stops the
//! subscriber, and for the saga that is every refund and payout. Instead the runner holds
//! the event's *stream* (its aggregate) from that event on: the event and every later one
//! of the same aggregate go to `public.subscription_quarantine`, in order, while other
//! streams are applied. Holding the whole stream keeps each aggregate's events in order,
//! which is all a subscriber relies on; the order between aggregates is given up only for
//! the held one.
//!
//! Held events are applied again, in log order, when an operator asks
//! (`POST /admin/subscriptions/{name}/quarantine/retry`, `carrot quarantine --retry`) and
//! at each runner's first batch (new code deployed may read them; each runner tries once,
//! so an older one that still cannot read them does not use up a newer one's try), inside
//! a batch transaction that holds the checkpoint lock, so once. A row leaves only once its event is applied; an
//! event still unreadable stays, with its new error. The count is in readiness, in
//! `/metrics` (`carrot_subscription_quarantined_events`) and in `GET /admin/subscriptions`.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::log::reader::EVENT_COLUMNS;
use crate::log::subscriber::{ApplyError, Subscriber};
use crate::log::{Checkpoint, StoredEvent};
use crate::postgres::Db;

/// An aggregate's stream, as `type/id`.
fn stream(event: &StoredEvent) -> String {
    format!("{}/{}", event.aggregate_type, event.aggregate_id)
}

/// The streams a batch holds back, each from the event on which it is held.
#[derive(Debug, Default)]
pub(crate) struct Held {
    from: HashMap<String, Checkpoint>,
    /// The poisons found in this batch and why each failed.
    errors: HashMap<Checkpoint, String>,
}

impl Held {
    /// Every event of `streams` (`type/id`) is held.
    pub(crate) fn streams(streams: impl IntoIterator<Item = String>) -> Self {
        Held {
            from: streams
                .into_iter()
                .map(|s| (s, Checkpoint::ORIGIN))
                .collect(),
            errors: HashMap::new(),
        }
    }

    pub(crate) fn holds(&self, event: &StoredEvent) -> bool {
        !self.from.is_empty()
            && self
                .from
                .get(&stream(event))
                .is_some_and(|from| event.checkpoint >= *from)
    }

    fn hold(&mut self, poison: &StoredEvent, error: String) {
        let from = self.from.entry(stream(poison)).or_insert(poison.checkpoint);
        *from = (*from).min(poison.checkpoint);
        self.errors.insert(poison.checkpoint, error);
    }
}

/// Applies `events` to `subscriber` but for those `held` holds. A payload the subscriber
/// cannot read holds its stream from that event on, and the rest is applied again (a
/// savepoint undoes the failed attempt). Returns the events applied.
pub(crate) async fn apply_around<'e>(
    tx: &mut PgConnection,
    subscriber: &dyn Subscriber,
    events: &'e [StoredEvent],
    held: &mut Held,
) -> Result<Cow<'e, [StoredEvent]>, ApplyError> {
    loop {
        let live: Cow<'e, [StoredEvent]> = if events.iter().any(|e| held.holds(e)) {
            Cow::Owned(events.iter().filter(|e| !held.holds(e)).cloned().collect())
        } else {
            Cow::Borrowed(events)
        };
        if live.is_empty() {
            return Ok(live);
        }
        sqlx::query("SAVEPOINT apply_batch")
            .execute(&mut *tx)
            .await?;
        let (at, source) = match subscriber.apply(tx, &live).await {
            Ok(()) => return Ok(live),
            Err(ApplyError::Payload { at, source }) => (at, source),
            Err(e) => return Err(e),
        };
        // Only a poison among the events given can be held; anything else is the
        // subscriber's own fault and fails the batch.
        let Some(poison) = live.iter().find(|e| e.checkpoint == at) else {
            return Err(ApplyError::Payload { at, source });
        };
        sqlx::query("ROLLBACK TO SAVEPOINT apply_batch")
            .execute(&mut *tx)
            .await?;
        tracing::error!(
            subscriber = subscriber.name(),
            event = %at,
            aggregate = %stream(poison),
            event_type = %poison.event_type,
            error = %source,
            "event quarantined: its stream is held from here on, every other stream goes on"
        );
        crate::metrics::global().inc(
            "carrot_subscription_events_quarantined_total",
            &[("subscriber", subscriber.name())],
        );
        held.hold(poison, source.to_string());
    }
}

/// Records the events of `events` that `held` holds, each poison with its error.
pub(crate) async fn park(
    tx: &mut PgConnection,
    subscriber: &str,
    events: &[StoredEvent],
    held: &Held,
) -> Result<usize, sqlx::Error> {
    let parked: Vec<&StoredEvent> = events.iter().filter(|e| held.holds(e)).collect();
    if parked.is_empty() {
        return Ok(0);
    }
    let column = |f: fn(&StoredEvent) -> String| parked.iter().map(|e| f(e)).collect::<Vec<_>>();
    sqlx::query(
        "INSERT INTO public.subscription_quarantine
             (subscriber, transaction_id, global_position, aggregate_type, aggregate_id,
              sequence, event_type, error)
         SELECT $1, t::xid8, p, a, i, s, e, r
           FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
                       $7::text[], $8::text[]) AS u(t, p, a, i, s, e, r)
         ON CONFLICT (subscriber, transaction_id, global_position) DO NOTHING",
    )
    .bind(subscriber)
    .bind(column(|e| e.checkpoint.transaction_id.to_string()))
    .bind(
        parked
            .iter()
            .map(|e| e.checkpoint.global_position)
            .collect::<Vec<_>>(),
    )
    .bind(column(|e| e.aggregate_type.clone()))
    .bind(column(|e| e.aggregate_id.clone()))
    .bind(parked.iter().map(|e| e.sequence).collect::<Vec<_>>())
    .bind(column(|e| e.event_type.clone()))
    .bind(
        parked
            .iter()
            .map(|e| held.errors.get(&e.checkpoint).cloned())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    Ok(parked.len())
}

/// The streams (`type/id`) `subscriber` holds.
pub(crate) async fn held_streams(
    tx: &mut PgConnection,
    subscriber: &str,
) -> Result<Held, sqlx::Error> {
    let streams: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT aggregate_type || '/' || aggregate_id
           FROM public.subscription_quarantine WHERE subscriber = $1",
    )
    .bind(subscriber)
    .fetch_all(&mut *tx)
    .await?;
    Ok(Held::streams(streams))
}

/// Applies again, in log order, up to `limit` held events of the streams a retry was asked
/// for. Those applied leave the quarantine; a stream still failing stays held from its
/// poison on, with the new error, until asked again. Returns how many were applied.
pub(crate) async fn retry(
    tx: &mut PgConnection,
    subscriber: &dyn Subscriber,
    limit: i64,
    all: bool,
) -> Result<usize, ApplyError> {
    let name = subscriber.name();
    // A held row whose event is gone (deleted by hand) can never be applied: stop asking
    // for it, loudly, rather than trying it at every batch.
    let dangling = sqlx::query(
        "UPDATE public.subscription_quarantine q SET retry_requested = false
          WHERE q.subscriber = $1 AND q.retry_requested
            AND NOT EXISTS (SELECT 1 FROM public.events e
                             WHERE e.transaction_id = q.transaction_id
                               AND e.global_position = q.global_position)",
    )
    .bind(name)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if dangling > 0 {
        tracing::warn!(
            subscriber = name,
            dangling,
            "held events no longer in the log; they stay held until removed by hand"
        );
    }
    let rows = sqlx::query(&format!(
        "SELECT {EVENT_COLUMNS}
           FROM public.subscription_quarantine q
           JOIN public.events e
             ON e.transaction_id = q.transaction_id AND e.global_position = q.global_position
          WHERE q.subscriber = $1
            AND ($3 OR (q.aggregate_type, q.aggregate_id) IN (
                SELECT aggregate_type, aggregate_id FROM public.subscription_quarantine
                 WHERE subscriber = $1 AND retry_requested))
          ORDER BY e.transaction_id, e.global_position
          LIMIT $2"
    ))
    .bind(name)
    .bind(limit)
    .bind(all)
    .fetch_all(&mut *tx)
    .await?;
    let events = crate::log::reader::ready_rows(&mut *tx, &rows).await?;
    let mut held = Held::default();
    let applied = apply_around(tx, subscriber, &events, &mut held).await?;
    let positions = |events: &[&StoredEvent]| -> (Vec<String>, Vec<i64>) {
        events
            .iter()
            .map(|e| {
                (
                    e.checkpoint.transaction_id.to_string(),
                    e.checkpoint.global_position,
                )
            })
            .unzip()
    };
    let (txs, poss) = positions(&applied.iter().collect::<Vec<_>>());
    sqlx::query(
        "DELETE FROM public.subscription_quarantine
          WHERE subscriber = $1
            AND (transaction_id, global_position) IN (
                SELECT t::xid8, p FROM unnest($2::text[], $3::bigint[]) AS u(t, p))",
    )
    .bind(name)
    .bind(&txs)
    .bind(&poss)
    .execute(&mut *tx)
    .await?;
    // Streams still failing: the new error on their poison, and no retry of any of their
    // events until asked again.
    let poisons: Vec<&StoredEvent> = events
        .iter()
        .filter(|e| held.errors.contains_key(&e.checkpoint))
        .collect();
    let (txs, poss) = positions(&poisons);
    sqlx::query(
        "UPDATE public.subscription_quarantine q
            SET retry_requested = false, attempts = q.attempts + 1, last_attempt_at = now(),
                error = CASE WHEN (q.transaction_id, q.global_position) = (u.t::xid8, u.p)
                             THEN u.r ELSE q.error END
           FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[])
                AS u(a, i, t, p, r)
          WHERE q.subscriber = $1 AND q.aggregate_type = u.a AND q.aggregate_id = u.i",
    )
    .bind(name)
    .bind(
        poisons
            .iter()
            .map(|e| e.aggregate_type.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        poisons
            .iter()
            .map(|e| e.aggregate_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&txs)
    .bind(&poss)
    .bind(
        poisons
            .iter()
            .map(|e| held.errors.get(&e.checkpoint).map(String::as_str))
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;
    if !applied.is_empty() {
        tracing::info!(
            subscriber = name,
            events = applied.len(),
            "quarantined events applied"
        );
    }
    Ok(applied.len())
}

/// Withdraws every retry asked for `subscriber` (one that failed for a reason other than
/// a poison: the runner logged why).
pub(crate) async fn stop_asking(
    tx: &mut PgConnection,
    subscriber: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE public.subscription_quarantine SET retry_requested = false, last_attempt_at = now()
          WHERE subscriber = $1 AND retry_requested",
    )
    .bind(subscriber)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Asks the runners of `subscriber` to apply its held events again, and wakes them.
/// Returns how many events are held.
pub async fn request_retry(pool: &Db, subscriber: &str) -> Result<u64, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let held = sqlx::query(
        "UPDATE public.subscription_quarantine SET retry_requested = true WHERE subscriber = $1",
    )
    .bind(subscriber)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if held > 0 {
        sqlx::query("SELECT pg_notify('carrot_events', '')")
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(held)
}

/// One held event, for operators.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct QuarantinedEvent {
    /// The subscriber holding it.
    pub subscriber: String,
    /// Its place in the log, as a consistency token.
    pub position: String,
    /// Its aggregate's type.
    pub aggregate_type: String,
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// Its sequence in the aggregate.
    pub sequence: i64,
    /// The event's name.
    pub event_type: String,
    /// Why it could not be applied; `null` for an event held behind an earlier one of its
    /// stream.
    pub error: Option<String>,
    /// How many times it was tried.
    pub attempts: i32,
    /// Whether a retry is asked for and not yet made.
    pub retry_requested: bool,
    /// When it was held.
    pub quarantined_at: DateTime<Utc>,
    /// When it was last tried.
    pub last_attempt_at: DateTime<Utc>,
}

/// Up to `limit` of the events `subscriber` holds, in log order, after `after`.
pub async fn list(
    pool: &Db,
    subscriber: &str,
    limit: i64,
    after: Option<Checkpoint>,
) -> Result<Vec<QuarantinedEvent>, sqlx::Error> {
    let after = after.unwrap_or(Checkpoint::ORIGIN);
    sqlx::query_as(
        "SELECT subscriber, transaction_id::text || '.' || global_position AS position,
                aggregate_type, aggregate_id, sequence, event_type, error, attempts,
                retry_requested, quarantined_at, last_attempt_at
           FROM public.subscription_quarantine
          WHERE subscriber = $1 AND (transaction_id, global_position) > ($2::text::xid8, $3)
          ORDER BY transaction_id, global_position
          LIMIT $4",
    )
    .bind(subscriber)
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .fetch_all(pool)
    .await
}
