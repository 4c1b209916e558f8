//! A second aggregate started in the same append as a command's events.
//!
//! A purchase request is recorded from its payment's outcome. Two appends leave a moment in
//! which the payment is captured and the request not yet recorded: a crash there leaves the
//! reconciler a payment to refund, and each append is a commit of its own. So a command
//! may carry a follow-up: a decision, made from its aggregate as the command left it, to
//! create another aggregate under a fresh id. The store's commit appends both aggregates'
//! events in one statement (`event_store.rs`): both or neither.
//!
//! Only a command's first attempt carries it. When that append conflicts, the store cannot
//! tell which aggregate conflicted; the command is decided again alone, as a later call
//! (`Routed::again`: a capture's gateway has heard its key by then), and the caller then
//! creates the other aggregate the usual way (where an id already taken is a conflict
//! retried on what is there).

use std::any::Any;
use std::sync::Arc;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use futures_util::future::BoxFuture;
use serde_json::Value;

use crate::personal::{self, SealingKeys};
use crate::postgres::Db;
use crate::write_side::BoxError;

/// One event of a follow-up: its type, its version and its payload.
pub type Row = (String, String, Value);

/// The first events of another aggregate, to be appended with a command's own.
pub struct FollowUp {
    /// The other aggregate's type (not the command's own).
    pub aggregate_type: &'static str,
    /// Its id, fresh: its events take sequences from 1.
    pub aggregate_id: String,
    /// Its events, in order.
    pub events: Vec<Row>,
    /// It, as its events leave it (`B`, boxed).
    pub aggregate: Box<dyn Any + Send>,
    /// The command's name, for the command counts.
    pub command: String,
}

/// What a follow-up's append left.
pub struct Followed {
    /// Its aggregate's type.
    pub aggregate_type: &'static str,
    /// The command's name.
    pub command: String,
    /// The place of its last event (its consistency token).
    pub token: crate::log::Checkpoint,
    /// The aggregate as its events left it (`B`, boxed).
    pub aggregate: Box<dyn Any + Send>,
}

/// Decides a follow-up from the command's aggregate as the command left it (`A`, as
/// `Any`); `None`: nothing to start.
pub type Follow =
    Arc<dyn Fn(&dyn Any) -> BoxFuture<'static, Result<Option<FollowUp>, BoxError>> + Send + Sync>;

/// Runs `command` on a new `B` under `aggregate_id`: the follow-up it makes, or `None` when
/// `B` refuses it or it makes no events (the caller then runs it the usual way and meets
/// the refusal there).
pub async fn create<B>(
    aggregate_id: String,
    command: B::Command,
    services: &B::Services,
) -> Result<Option<FollowUp>, BoxError>
where
    B: Aggregate + 'static,
    B::Command: std::fmt::Debug,
{
    let name = crate::metrics::variant_name(&command);
    let mut aggregate = B::default();
    let sink = EventSink::default();
    if aggregate.handle(command, services, &sink).await.is_err() {
        return Ok(None);
    }
    let events = sink.collect().await;
    if events.is_empty() {
        return Ok(None);
    }
    let events = events
        .iter()
        .map(|e| Ok((e.event_type(), e.event_version(), serde_json::to_value(e)?)))
        .collect::<Result<_, serde_json::Error>>()?;
    Ok(Some(FollowUp {
        aggregate_type: B::TYPE,
        aggregate_id,
        events,
        aggregate: Box::new(aggregate),
        command: name,
    }))
}

/// The follow-up `decide` makes from `aggregate` (of type `own`), its events sealed and
/// added to `rows`. One that fails is left out, not the command: the payment's outcome must
/// reach the log whatever becomes of the request, which its caller then records the usual
/// way.
pub(crate) async fn decide(
    decide: Follow,
    own: &'static str,
    aggregate: &(dyn Any + Sync),
    rows: &mut Rows,
    keys: &SealingKeys,
    pool: &Db,
    actor: Option<uuid::Uuid>,
) -> Option<FollowUp> {
    let mut other = match decide(aggregate).await {
        Ok(Some(other)) if other.aggregate_type != own => other,
        Ok(_) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "a follow-up could not be decided; appended alone");
            return None;
        }
    };
    let mut sealed = Vec::with_capacity(other.events.len());
    for (event_type, version, mut payload) in std::mem::take(&mut other.events) {
        if let Err(e) = personal::seal_event(keys, pool, &event_type, &mut payload, actor).await {
            tracing::warn!(error = %e, "a follow-up could not be sealed; appended alone");
            return None;
        }
        sealed.push((event_type, version, payload));
    }
    for (event_type, version, payload) in sealed {
        rows.push(
            other.aggregate_type,
            &other.aggregate_id,
            event_type,
            version,
            payload,
        );
    }
    Some(other)
}

/// The columns of one append: each event's aggregate, sequence, type, version and payload.
#[derive(Default)]
pub(crate) struct Rows {
    pub(crate) aggregate_types: Vec<&'static str>,
    pub(crate) aggregate_ids: Vec<String>,
    pub(crate) sequences: Vec<i64>,
    pub(crate) types: Vec<String>,
    pub(crate) versions: Vec<String>,
    pub(crate) payloads: Vec<Value>,
}

impl Rows {
    /// A command's own events.
    pub(crate) fn of(
        aggregate_type: &'static str,
        aggregate_id: &str,
        sequences: &[i64],
        types: Vec<String>,
        versions: Vec<String>,
        payloads: Vec<Value>,
    ) -> Self {
        Rows {
            aggregate_types: vec![aggregate_type; sequences.len()],
            aggregate_ids: vec![aggregate_id.to_owned(); sequences.len()],
            sequences: sequences.to_vec(),
            types,
            versions,
            payloads,
        }
    }

    /// One more event, the next of its aggregate's (a follow-up's start at 1).
    pub(crate) fn push(
        &mut self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        event_type: String,
        version: String,
        payload: Value,
    ) {
        let before = self
            .aggregate_types
            .iter()
            .zip(&self.aggregate_ids)
            .filter(|(t, i)| **t == aggregate_type && *i == aggregate_id)
            .count();
        self.aggregate_types.push(aggregate_type);
        self.aggregate_ids.push(aggregate_id.to_owned());
        self.sequences.push(before as i64 + 1);
        self.types.push(event_type);
        self.versions.push(version);
        self.payloads.push(payload);
    }
}
