//! `carrot quarantine SUBSCRIBER [--retry]`: the events a subscriber holds aside because
//! it could not read them, and the operator's word to try them again.

use carrot_projections::log::quarantine;
use carrot_projections::postgres::Db;

use super::OpsError;

/// Lists what `subscriber` holds (up to 1,000, in log order), or asks for a retry.
pub async fn run(pool: &Db, subscriber: &str, retry: bool) -> Result<(), OpsError> {
    let names = carrot_projections::subscriber_names();
    let Some(name) = names.iter().find(|n| **n == subscriber) else {
        return Err(OpsError::NotFound(format!(
            "no subscriber {subscriber:?}; the subscribers are {}",
            names.join(", ")
        )));
    };
    if retry {
        let held = quarantine::request_retry(pool, name).await?;
        println!("{name}: {held} held event(s); its runners try them again at their next batch");
        return Ok(());
    }
    let held = quarantine::list(pool, name, 1000, None).await?;
    if held.is_empty() {
        println!("{name}: nothing in quarantine");
    }
    for event in held {
        println!(
            "{}  {}/{} #{}  {}  {} attempt(s)  since {}\n    {}",
            event.position,
            event.aggregate_type,
            event.aggregate_id,
            event.sequence,
            event.event_type,
            event.attempts,
            event.quarantined_at.to_rfc3339(),
            event
                .error
                .as_deref()
                .unwrap_or("held behind an earlier event of its aggregate"),
        );
    }
    Ok(())
}
