//! `carrot events`: the events of one trade (by request id) or of one aggregate, in order,
//! one per line for a person, or as JSON lines with `--json`; with `--check`, how the whole
//! log reads through the upcasters.

use std::io::Write;

use carrot_projections::log::{self, StoredEvent};
use carrot_projections::postgres::Db;
use serde_json::Value;
use uuid::Uuid;

use super::OpsError;

/// What to print.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every event of a trade.
    Trade(Uuid),
    /// Every event of one aggregate: `(type, id)`.
    Aggregate(String, String),
}

/// Prints the selected events to `out`.
pub async fn print(
    pool: &Db,
    selection: &Selection,
    json: bool,
    out: &mut dyn Write,
) -> Result<(), OpsError> {
    let events = match selection {
        Selection::Trade(id) => log::events_of_trade(pool, *id).await?,
        Selection::Aggregate(kind, id) => log::events_of_aggregate(pool, kind, id).await?,
    };
    if events.is_empty() {
        return Err(OpsError::NotFound("no events".into()));
    }
    for event in &events {
        let written = if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&event.record()).unwrap_or_default()
            )
        } else {
            writeln!(out, "{}", as_line(event))
        };
        match written {
            Ok(()) => {}
            // Piped into `head`: the reader has what it wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Reads the whole log through the upcasters and prints, per aggregate type, event type
/// and stored version, how many events read as today's; fails if any does not.
pub async fn check(pool: &Db, out: &mut dyn Write) -> Result<(), OpsError> {
    let counts = carrot_projections::log::check::check(pool).await?;
    writeln!(
        out,
        "{:<18} {:<30} {:>7} {:>9} {:>10}",
        "aggregate", "event", "stored", "read", "unreadable"
    )?;
    let mut unreadable = 0;
    for ((aggregate, event_type, version), count) in &counts {
        writeln!(
            out,
            "{aggregate:<18} {event_type:<30} {version:>7} {:>9} {:>10}",
            count.read, count.unreadable
        )?;
        if let Some(why) = &count.first_failure {
            writeln!(out, "    first unreadable {why}")?;
        }
        unreadable += count.unreadable;
    }
    match unreadable {
        0 => Ok(()),
        n => Err(OpsError::Failed(format!(
            "{n} event(s) this code cannot read: deploy code that reads them before it serves"
        ))),
    }
}

/// `time  checkpoint  aggregate #seq  Event  by actor  field=value ...`, the trade left out.
fn as_line(event: &StoredEvent) -> String {
    let fields: Vec<String> = event
        .payload
        .get(&event.event_type)
        .and_then(Value::as_object)
        .map(|body| {
            body.iter()
                .filter(|(k, _)| k.as_str() != "trade")
                .map(|(k, v)| match v {
                    Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{}  {:>12}  {}/{} #{}  {}  by {}  {}",
        event.recorded_at.format("%Y-%m-%d %H:%M:%S%.3f"),
        event.checkpoint.to_string(),
        event.aggregate_type,
        event.aggregate_id,
        event.sequence,
        event.event_type,
        event.meta(carrot_domain::metadata::ACTOR).unwrap_or("-"),
        fields.join(" "),
    )
}
