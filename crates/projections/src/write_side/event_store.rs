//! The event store behind the cqrs-es frameworks.
//!
//! It keeps postgres-es's table and its optimistic concurrency (the primary key on
//! `(aggregate_type, aggregate_id, sequence)`: of two commands decided on the same version,
//! the second append fails and is retried), but does in one statement what took four or
//! five round trips:
//! - load: the aggregate's snapshot, if any, and the events after it;
//! - commit: every event of the command, the snapshot when one is due, and the place in the
//!   log of the last event (the command's consistency token), in one autocommit `INSERT`.
//!
//! Snapshots are taken every [`SNAPSHOT_EVERY`] events, of the aggregate as the command left
//! it: cqrs-es's `EventSink` has already applied the new events to the context's aggregate,
//! so it is stored as it is (cqrs-es 0.5's own snapshot writer applies them a second time).
//! A snapshot records the version of the aggregate's state it holds (`StateVersion`); one of
//! another version is ignored, as is one that no longer deserializes, and the aggregate is
//! replayed from its first event. Every event is brought to its type's current version
//! first (`carrot_domain::schema`).
//!
//! What a person typed is sealed with their key before it is written, in events and in
//! snapshots, and opened as the aggregate is loaded (`crate::personal`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use carrot_domain::schema::{self, StateVersion};
use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, DomainEvent, EventEnvelope, EventStore,
};
use serde_json::Value;

use crate::log::notify::Notifier;
use crate::log::Checkpoint;
use crate::personal::{self, SealingError, SealingKeys};
use crate::postgres::Db;
use crate::write_side::follow_up::{self, Followed, Rows};
use crate::write_side::scope::{assumed_fresh, follow, leave};
pub use crate::write_side::scope::{with_follow_up, with_receipt, Receipt};

/// A snapshot is written when a command crosses a multiple of this many events.
pub const SNAPSHOT_EVERY: i64 = 100;

/// The store for aggregate type `A`.
pub struct Store<A> {
    pool: Db,
    notifier: Notifier,
    keys: Arc<SealingKeys>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> Store<A> {
    /// A store over `pool`, waking subscribers through `notifier` after each append and
    /// sealing with `keys`.
    pub fn new(pool: Db, notifier: Notifier, keys: Arc<SealingKeys>) -> Self {
        Store {
            pool,
            notifier,
            keys,
            _aggregate: PhantomData,
        }
    }
}

/// An aggregate as loaded: its state, its last sequence and where its last event is.
pub struct Loaded<A: Aggregate> {
    aggregate_id: String,
    aggregate: A,
    sequence: i64,
    last: Option<Checkpoint>,
}

impl<A: Aggregate> AggregateContext<A> for Loaded<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.aggregate
    }
}

/// A snapshot (part 0) or an event (part 1): sequence, payload, its place in the log, and
/// an event's type and version.
type Row = (i32, i64, Value, String, i64, String, String);

/// An event's payload at its type's current version.
fn upcast<E: std::error::Error>(
    aggregate_type: &str,
    event_type: &str,
    version: &str,
    payload: Value,
) -> Result<Value, AggregateError<E>> {
    schema::upcast(aggregate_type, event_type, version, payload)
        .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))
}

fn failed<E: std::error::Error>(
    e: impl std::error::Error + Send + Sync + 'static,
) -> AggregateError<E> {
    AggregateError::DatabaseConnectionError(Box::new(e))
}

fn checkpoint<E: std::error::Error>(
    transaction_id: &str,
    global_position: i64,
) -> Result<Checkpoint, AggregateError<E>> {
    Ok(Checkpoint {
        transaction_id: transaction_id
            .parse()
            .map_err(|e: std::num::ParseIntError| AggregateError::UnexpectedError(Box::new(e)))?,
        global_position,
    })
}

impl<A: Aggregate + StateVersion + 'static> Store<A> {
    /// The snapshot (if `use_snapshot`) and events of `aggregate_id`, their personal fields
    /// opened.
    async fn rows<E: std::error::Error>(
        &self,
        aggregate_id: &str,
        use_snapshot: bool,
    ) -> Result<Vec<Row>, AggregateError<E>> {
        let mut rows = self
            .stored_rows(aggregate_id, use_snapshot)
            .await
            .map_err(failed)?;
        let values = rows.iter_mut().filter_map(|row| {
            let (part, _, payload, _, _, event_type, _) = row;
            if *part == 0 {
                Some((A::TYPE, payload))
            } else {
                Some((event_type.as_str(), payload.get_mut(event_type.as_str())?))
            }
        });
        personal::open_all(&self.pool, values)
            .await
            .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))?;
        Ok(rows)
    }

    async fn stored_rows(
        &self,
        aggregate_id: &str,
        use_snapshot: bool,
    ) -> Result<Vec<Row>, sqlx::Error> {
        sqlx::query_as(
            "WITH s AS (SELECT sequence, payload, transaction_id, global_position
                          FROM aggregate_snapshots
                         WHERE $3 AND aggregate_type = $1 AND aggregate_id = $2
                           AND state_version = $4)
             SELECT 0, sequence, payload, transaction_id::text, global_position, '', '' FROM s
             UNION ALL
             SELECT 1, e.sequence, e.payload, e.transaction_id::text, e.global_position,
                    e.event_type, e.event_version
               FROM events e
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2
                AND e.sequence > coalesce((SELECT sequence FROM s), 0)
             ORDER BY 1, 2",
        )
        .bind(A::TYPE)
        .bind(aggregate_id)
        .bind(use_snapshot)
        .bind(A::STATE_VERSION)
        .fetch_all(&self.pool)
        .await
    }

    /// Folds rows (a snapshot first, if any, then events) into a context.
    fn fold(
        aggregate_id: &str,
        rows: Vec<Row>,
    ) -> Result<Option<Loaded<A>>, AggregateError<A::Error>> {
        let mut context = Loaded {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: A::default(),
            sequence: 0,
            last: None,
        };
        for (part, sequence, payload, tx, position, event_type, version) in rows {
            if part == 0 {
                match serde_json::from_value::<A>(payload) {
                    Ok(aggregate) => context.aggregate = aggregate,
                    Err(_) => return Ok(None),
                }
            } else {
                let payload = upcast(A::TYPE, &event_type, &version, payload)?;
                let event: A::Event = serde_json::from_value(payload)
                    .map_err(|e| AggregateError::DeserializationError(Box::new(e)))?;
                context.aggregate.apply(event);
            }
            context.sequence = sequence;
            context.last = Some(checkpoint(&tx, position)?);
        }
        Ok(Some(context))
    }
}

impl<A: Aggregate + StateVersion + 'static> EventStore<A> for Store<A> {
    type AC = Loaded<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let rows = self.rows(aggregate_id, false).await?;
        rows.into_iter()
            .map(|(_, sequence, payload, _, _, event_type, version)| {
                let payload = upcast(A::TYPE, &event_type, &version, payload)?;
                Ok(EventEnvelope {
                    aggregate_id: aggregate_id.to_owned(),
                    sequence: usize::try_from(sequence).unwrap_or_default(),
                    payload: serde_json::from_value(payload)
                        .map_err(|e| AggregateError::DeserializationError(Box::new(e)))?,
                    metadata: HashMap::new(),
                })
            })
            .collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Loaded<A>, AggregateError<A::Error>> {
        if assumed_fresh() {
            return Ok(Loaded {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: A::default(),
                sequence: 0,
                last: None,
            });
        }
        let rows = self.rows(aggregate_id, true).await?;
        if let Some(context) = Self::fold(aggregate_id, rows)? {
            return Ok(context);
        }
        // The snapshot no longer fits the aggregate: replay every event instead.
        let rows = self.rows(aggregate_id, false).await?;
        Self::fold(aggregate_id, rows)?
            .ok_or_else(|| AggregateError::UnexpectedError("unreadable snapshot".into()))
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Loaded<A>,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        if events.is_empty() {
            leave(
                Receipt {
                    token: context.last,
                    aggregate: Box::new(context.aggregate),
                    appended: false,
                },
                None,
            );
            return Ok(Vec::new());
        }
        let first = context.sequence + 1;
        let last = context.sequence + events.len() as i64;
        let sequences: Vec<i64> = (first..=last).collect();
        let types: Vec<String> = events.iter().map(DomainEvent::event_type).collect();
        let versions: Vec<String> = events.iter().map(DomainEvent::event_version).collect();
        let unexpected =
            |e: Box<dyn std::error::Error + Send + Sync>| AggregateError::UnexpectedError(e);
        let mut payloads: Vec<Value> = events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(|e| unexpected(Box::new(e)))?;
        let actor = metadata
            .get(carrot_domain::metadata::ACTOR)
            .and_then(|a| uuid::Uuid::try_parse(a).ok());
        for (payload, event_type) in payloads.iter_mut().zip(&types) {
            personal::seal_event(&self.keys, &self.pool, event_type, payload, actor)
                .await
                .map_err(|e| unexpected(Box::new(e)))?;
        }
        let mut rows = Rows::of(
            A::TYPE,
            &context.aggregate_id,
            &sequences,
            types,
            versions,
            payloads,
        );
        let follow_up = match follow() {
            Some(decide) => {
                let (keys, pool) = (&self.keys, &self.pool);
                follow_up::decide(
                    decide,
                    A::TYPE,
                    &context.aggregate,
                    &mut rows,
                    keys,
                    pool,
                    actor,
                )
                .await
            }
            None => None,
        };
        let meta = serde_json::to_value(&metadata).map_err(|e| unexpected(Box::new(e)))?;
        let snapshot = if last / SNAPSHOT_EVERY > context.sequence / SNAPSHOT_EVERY {
            let mut state =
                serde_json::to_value(&context.aggregate).map_err(|e| unexpected(Box::new(e)))?;
            match personal::seal_state(&self.keys, &self.pool, A::TYPE, &mut state).await {
                Ok(()) => Some(state),
                // Its owner's account is closed: no snapshot keeps their text.
                Err(SealingError::Closed(_)) => None,
                Err(e) => return Err(unexpected(Box::new(e))),
            }
        } else {
            None
        };
        // The command's own aggregate's last event is its token; a follow-up's, the other's.
        let appended: Result<Vec<(String, String, i64)>, sqlx::Error> = sqlx::query_as(
            "WITH appended AS (
                 INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                                     payload, metadata)
                 SELECT a, i, s, t, v, p, $7
                   FROM unnest($10::text[], $11::text[], $3::bigint[], $4::text[], $5::text[],
                               $6::jsonb[]) WITH ORDINALITY AS e(a, i, s, t, v, p, n)
                  ORDER BY n
                 RETURNING aggregate_type, transaction_id, global_position, sequence),
             snapshot AS (
                 INSERT INTO aggregate_snapshots (aggregate_type, aggregate_id, sequence, payload,
                                                  transaction_id, global_position, state_version)
                 SELECT $1, $2, a.sequence, $8, a.transaction_id, a.global_position, $9
                   FROM appended a WHERE $8::jsonb IS NOT NULL AND a.aggregate_type = $1
                  ORDER BY a.sequence DESC LIMIT 1
                 ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
                    SET sequence = EXCLUDED.sequence, payload = EXCLUDED.payload,
                        transaction_id = EXCLUDED.transaction_id,
                        global_position = EXCLUDED.global_position,
                        state_version = EXCLUDED.state_version
                  WHERE aggregate_snapshots.sequence < EXCLUDED.sequence
                     OR aggregate_snapshots.state_version <> EXCLUDED.state_version)
             SELECT aggregate_type, transaction_id::text, max(global_position) FROM appended
              GROUP BY aggregate_type, transaction_id",
        )
        .bind(A::TYPE)
        .bind(&context.aggregate_id)
        .bind(&rows.sequences)
        .bind(&rows.types)
        .bind(&rows.versions)
        .bind(&rows.payloads)
        .bind(&meta)
        .bind(&snapshot)
        .bind(A::STATE_VERSION)
        .bind(&rows.aggregate_types)
        .bind(&rows.aggregate_ids)
        .fetch_all(&self.pool)
        .await;
        let appended = match appended {
            Ok(rows) => rows,
            Err(e)
                if e.as_database_error()
                    .is_some_and(|d| d.is_unique_violation()) =>
            {
                return Err(AggregateError::AggregateConflict)
            }
            Err(e) => return Err(failed(e)),
        };
        let token_of = |aggregate_type: &str| {
            let (_, tx, position) = appended
                .iter()
                .find(|(t, _, _)| t == aggregate_type)
                .ok_or_else(|| unexpected("an append that returned no place".into()))?;
            checkpoint::<A::Error>(tx, *position)
        };
        let token = token_of(A::TYPE)?;
        let followed = match follow_up {
            Some(other) => Some(Followed {
                aggregate_type: other.aggregate_type,
                command: other.command,
                token: token_of(other.aggregate_type)?,
                aggregate: other.aggregate,
            }),
            None => None,
        };
        self.notifier.appended();
        let envelopes = events
            .into_iter()
            .zip(sequences)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: context.aggregate_id.clone(),
                sequence: usize::try_from(sequence).unwrap_or_default(),
                payload,
                metadata: metadata.clone(),
            })
            .collect();
        leave(
            Receipt {
                token: Some(token),
                aggregate: Box::new(context.aggregate),
                appended: true,
            },
            followed,
        );
        Ok(envelopes)
    }
}
