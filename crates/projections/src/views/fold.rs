//! How a view applies a batch: load the rows the batch touches in one query, fold the
//! events into them in memory (pure Rust, in log order), write the changed ones back in one
//! upsert. Two statements per table per batch, whatever the batch's size: this is what
//! lets a rebuild run at tens of thousands of events per second.
//!
//! A row type is its table: its serde field names are the table's columns (rows travel as
//! JSON through `jsonb_populate_recordset`, which maps by name), and it reads back with
//! `sqlx::FromRow`. Tables are named unqualified, so the same code fills a shadow schema.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::log::subscriber::ApplyError;
use crate::log::StoredEvent;

/// A row of a view table with a one-column uuid key.
pub trait KeyedRow: Serialize + for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin + Clone {
    /// The table, unqualified.
    const TABLE: &'static str;
    /// The key column.
    const KEY: &'static str;
    /// This row's key.
    fn key(&self) -> Uuid;
    /// The columns holding the aggregate sequence of the last event applied to the row.
    /// When set, a write replaces a stored row only if it is newer in one of them: a batch
    /// re-applying old events (a replay from the origin over the live view, after its
    /// checkpoint row was lost) then leaves the row as it was instead of taking it back to
    /// an old state until the replay catches up. Empty: every write replaces.
    const VERSIONS: &'static [&'static str] = &[];
    /// This row's values of [`KeyedRow::VERSIONS`], in the same order.
    fn versions(&self) -> Vec<i64> {
        Vec::new()
    }
}

/// The rows of one table that a batch touches, as it folds them.
pub struct Fold<R: KeyedRow> {
    rows: HashMap<Uuid, R>,
    /// Keys of the rows to write back, in key order (so concurrent writers lock alike).
    changed: BTreeSet<Uuid>,
    /// The rows as stored when loaded, for a fold that must know what its writes replace
    /// ([`Fold::load_tracked`]).
    stored: Option<HashMap<Uuid, R>>,
}

impl<R: KeyedRow> Fold<R> {
    /// Loads the existing rows among `keys`.
    pub async fn load(
        tx: &mut PgConnection,
        keys: impl IntoIterator<Item = Uuid>,
    ) -> Result<Self, sqlx::Error> {
        let mut keys: Vec<Uuid> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        let rows: Vec<R> = if keys.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(&format!(
                "SELECT * FROM {} WHERE {} = ANY($1) {}",
                R::TABLE,
                R::KEY,
                tag::<R>()
            ))
            .bind(&keys)
            .fetch_all(&mut *tx)
            .await?
        };
        Ok(Fold {
            rows: rows.into_iter().map(|r| (r.key(), r)).collect(),
            changed: BTreeSet::new(),
            stored: None,
        })
    }

    /// [`Fold::load`], remembering the rows as stored, for [`Fold::changes`]. `keys` must
    /// hold every key the batch touches, those it creates too: in a replay over a live view
    /// a "new" row may be stored already (a rebuild's shadow holds none: MyPage's
    /// `Loading`).
    pub async fn load_tracked(
        tx: &mut PgConnection,
        keys: impl IntoIterator<Item = Uuid>,
    ) -> Result<Self, sqlx::Error> {
        let mut fold = Self::load(tx, keys).await?;
        fold.stored = Some(fold.rows.clone());
        Ok(fold)
    }

    /// Each row [`Fold::store`] will write, with the row it replaces (`None`: a new one),
    /// as the write's version guard decides. Empty unless loaded with [`Fold::load_tracked`].
    pub fn changes(&self) -> Vec<(Option<&R>, &R)> {
        let Some(stored) = &self.stored else {
            return Vec::new();
        };
        self.changed
            .iter()
            .filter_map(|k| Some((stored.get(k), self.rows.get(k)?)))
            .filter(|(before, after)| {
                before.is_none_or(|before| {
                    R::VERSIONS.is_empty()
                        || after
                            .versions()
                            .iter()
                            .zip(before.versions())
                            .any(|(new, old)| *new > old)
                })
            })
            .collect()
    }

    /// Also loads the rows matching `filter` (SQL over the table, `$1` bound to `keys`),
    /// keeping any already loaded: rows a batch reaches by something other than their key.
    pub async fn also_load(
        &mut self,
        tx: &mut PgConnection,
        filter: &str,
        keys: &[Uuid],
    ) -> Result<(), sqlx::Error> {
        if keys.is_empty() {
            return Ok(());
        }
        let rows: Vec<R> = sqlx::query_as(&format!(
            "SELECT * FROM {} WHERE {filter} {}",
            R::TABLE,
            tag::<R>()
        ))
        .bind(keys)
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            self.rows.entry(row.key()).or_insert(row);
        }
        Ok(())
    }

    /// The row with this key, if it exists.
    pub fn get(&self, key: Uuid) -> Option<&R> {
        self.rows.get(&key)
    }

    /// Every row loaded or created so far.
    pub fn rows(&self) -> impl Iterator<Item = &R> {
        self.rows.values()
    }

    /// Sets a row, replacing any with its key.
    pub fn put(&mut self, row: R) {
        let key = row.key();
        self.rows.insert(key, row);
        self.changed.insert(key);
    }

    /// Adds a row unless one with its key exists (a registration applied twice).
    pub fn create(&mut self, row: R) {
        let key = row.key();
        if let std::collections::hash_map::Entry::Vacant(slot) = self.rows.entry(key) {
            slot.insert(row);
            self.changed.insert(key);
        }
    }

    /// The row to change, if it exists; it will be written back.
    pub fn change(&mut self, key: Uuid) -> Option<&mut R> {
        let row = self.rows.get_mut(&key)?;
        self.changed.insert(key);
        Some(row)
    }

    /// Writes the changed rows back in one statement.
    pub async fn store(self, tx: &mut PgConnection) -> Result<(), ApplyError> {
        let rows: Vec<&R> = self
            .changed
            .iter()
            .filter_map(|k| self.rows.get(k))
            .collect();
        write(tx, R::TABLE, Some((R::KEY, R::VERSIONS)), &rows).await
    }
}

/// The keys a batch must load: those its events change, but not those it creates (a
/// creating event comes first in its aggregate's stream, so such a row cannot exist yet,
/// and every later event of it in the batch finds it in memory). `touched` yields each
/// event's key and whether the event creates the row. (In a replay over a live view such a
/// row does exist: the version guard of [`KeyedRow::VERSIONS`] keeps it.)
pub fn to_load(touched: impl IntoIterator<Item = (Uuid, bool)>) -> Vec<Uuid> {
    let (created, changed): (Vec<_>, Vec<_>) =
        touched.into_iter().partition(|(_, creates)| *creates);
    let created: std::collections::HashSet<Uuid> = created.into_iter().map(|(k, _)| k).collect();
    changed
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !created.contains(k))
        .collect()
}

/// Inserts `rows` into `table`; with `key`, a row whose key exists replaces it, without,
/// it is skipped (append-only tables, where a row applied twice is the same row).
pub async fn upsert<R: Serialize>(
    tx: &mut PgConnection,
    table: &str,
    key: Option<&str>,
    rows: &[R],
) -> Result<(), ApplyError> {
    write(tx, table, key.map(|k| (k, &[][..])), rows).await
}

/// [`upsert`], where a keyed row replaces a stored one only if newer in one of `versions`.
///
/// The rows are encoded straight into the statement's parameter: building them as a
/// `serde_json::Value` first cost a rebuild a tenth of its CPU. Only the first row is
/// built as one, for the column names.
async fn write<R: Serialize>(
    tx: &mut PgConnection,
    table: &str,
    key: Option<(&str, &[&str])>,
    rows: &[R],
) -> Result<(), ApplyError> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let conflict = match key {
        Some((key, versions)) => {
            let first =
                serde_json::to_value(first).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            let columns: Vec<&str> = first
                .as_object()
                .map(|o| o.keys().map(String::as_str).filter(|c| *c != key).collect())
                .unwrap_or_default();
            let set: Vec<String> = columns
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            let newer: Vec<String> = versions
                .iter()
                .map(|v| format!("stored.{v} < EXCLUDED.{v}"))
                .collect();
            let guard = if newer.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", newer.join(" OR "))
            };
            format!(
                "ON CONFLICT ({key}) DO UPDATE SET {}{guard}",
                set.join(", ")
            )
        }
        None => "ON CONFLICT DO NOTHING".to_owned(),
    };
    sqlx::query(&format!(
        "INSERT INTO {table} AS stored SELECT * FROM jsonb_populate_recordset(NULL::{table}, $1) {conflict} {}",
        tag::<R>()
    ))
    .bind(sqlx::types::Json(rows))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A comment naming the row type, to make each statement's text unique to its table.
///
/// Connections cache prepared statements by their text, and the same text (`SELECT * FROM
/// listings ...`) names a different table under another view's `search_path`: Postgres
/// then refuses the cached plan ("cached plan must not change result type").
fn tag<R>() -> String {
    format!("/* {} */", std::any::type_name::<R>().replace("*/", ""))
}

/// Decodes every event of `aggregate_type` in the batch into `E`, in log order.
pub fn decode<'a, E: serde::de::DeserializeOwned>(
    events: &'a [StoredEvent],
    aggregate_type: &str,
) -> Result<Vec<(&'a StoredEvent, E)>, ApplyError> {
    events
        .iter()
        .filter(|e| e.aggregate_type == aggregate_type)
        .map(|e| {
            e.decode::<E>()
                .map(|decoded| (e, decoded))
                .map_err(|source| ApplyError::payload(e, source))
        })
        .collect()
}
