//! The whole log read through the upcasters, for an operator before and after an upgrade
//! (`carrot events --check`): per aggregate type, event type and stored version, how many
//! events read as today's events, and the first that does not, with why.

use std::collections::BTreeMap;

use carrot_domain::schema;
use serde_json::Value;

use crate::log::Checkpoint;
use crate::postgres::Db;

/// Events read per page.
const PAGE: i64 = 1_000;

/// How the events of one type and stored version read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeCount {
    /// Events that read as today's events.
    pub read: u64,
    /// Events that do not.
    pub unreadable: u64,
    /// The first that does not: where it is and why.
    pub first_failure: Option<String>,
}

/// `(aggregate type, event type, stored version)` to how its events read.
pub type Counts = BTreeMap<(String, String, String), TypeCount>;

type Row = (String, i64, String, String, String, Value);

/// Reads every committed event below the log's horizon, in log order (as every reader of
/// the log does: one committing behind the scan is never passed), through the upcasters
/// and the decoders (what people typed opened first, as every reader does).
pub async fn check(pool: &Db) -> Result<Counts, sqlx::Error> {
    let mut counts = Counts::new();
    let mut after = Checkpoint::ORIGIN;
    loop {
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT transaction_id::text, global_position, aggregate_type, event_type,
                    event_version, payload
               FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
                AND transaction_id < public.log_horizon()
              ORDER BY transaction_id, global_position LIMIT $3",
        )
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(PAGE)
        .fetch_all(pool)
        .await?;
        let Some(last) = rows.last() else {
            return Ok(counts);
        };
        after = Checkpoint {
            transaction_id: last
                .0
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            global_position: last.1,
        };
        let mut rows = rows;
        let sealed = rows
            .iter_mut()
            .filter_map(|(_, _, _, event_type, _, payload)| {
                let event_type: &String = event_type;
                Some((
                    event_type.as_str(),
                    crate::personal::sealable_body(event_type, payload)?,
                ))
            });
        crate::personal::open_all(pool, sealed)
            .await
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        for (tx, position, aggregate, event_type, version, payload) in rows {
            let outcome = schema::read(&aggregate, &event_type, &version, payload);
            let count = counts.entry((aggregate, event_type, version)).or_default();
            match outcome {
                Ok(_) => count.read += 1,
                Err(e) => {
                    count.unreadable += 1;
                    count
                        .first_failure
                        .get_or_insert_with(|| format!("at {tx}.{position}: {e}"));
                }
            }
        }
    }
}
