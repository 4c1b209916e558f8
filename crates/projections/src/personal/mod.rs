//! Crypto-shredding: one key per person, in `personal_keys` and never in the log. The event
//! store seals what a person typed with their key as it writes; every reader opens it with
//! one read of the keys a batch needs; closing an account destroys the key, and from then
//! on every read of what they typed (views rebuilt, the timeline, `carrot events`, replays,
//! backups) gives `[erased]`. docs/DESIGN.md, "Erasure".
//!
//! Keys for sealing are cached per process, each for at most [`SEALING_KEY_KEPT`]: a key
//! destroyed while cached still seals for that long, and what it seals can never be opened
//! again, which is what destroying it means; after that the person's writes are refused.
//! Keys for opening are never cached, so no process opens with a key that is gone.

pub mod seal;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use carrot_domain::schema::personal;
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::postgres::Db;
pub use seal::{PersonalKey, Unopenable};

/// How many sealing keys a process keeps; past it the cache starts again.
const CACHED_KEYS: usize = 10_000;
/// How long a process seals with a key it read, before it reads it again.
pub const SEALING_KEY_KEPT: Duration = Duration::from_secs(60);

/// A person's key is destroyed: their account is closed, nothing more of theirs is written.
#[derive(Debug, thiserror::Error)]
#[error("the account of {0} is closed")]
pub struct AccountClosed(pub Uuid);

/// Why a key for sealing could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SealingError {
    /// The person's key is destroyed.
    #[error(transparent)]
    Closed(#[from] AccountClosed),
    /// The database failed us.
    #[error("personal keys: {0}")]
    Database(#[from] sqlx::Error),
}

/// The keys the event store seals with: made on a person's first sealed write.
#[derive(Default)]
pub struct SealingKeys {
    cached: Mutex<HashMap<Uuid, (PersonalKey, Instant)>>,
}

impl SealingKeys {
    /// `owner`'s key, made now if they have none; refused once destroyed.
    pub async fn key_of(&self, pool: &Db, owner: Uuid) -> Result<PersonalKey, SealingError> {
        let cached = self.cached.lock().ok().and_then(|c| c.get(&owner).cloned());
        if let Some((key, read)) = cached {
            if read.elapsed() < SEALING_KEY_KEPT {
                return Ok(key);
            }
        }
        // The no-op update returns the row a concurrent first write made (its key, or NULL
        // once destroyed), where `DO NOTHING` would return nothing.
        let fresh = PersonalKey::generate();
        let stored: Option<Vec<u8>> = sqlx::query_scalar(
            "INSERT INTO personal_keys (user_id, key) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
             RETURNING key",
        )
        .bind(owner)
        .bind(fresh.bytes())
        .fetch_one(pool)
        .await?;
        let key = stored
            .as_deref()
            .and_then(PersonalKey::from_bytes)
            .ok_or(AccountClosed(owner))?;
        if let Ok(mut cached) = self.cached.lock() {
            if cached.len() >= CACHED_KEYS {
                cached.clear();
            }
            cached.insert(owner, (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// Forgets `owner`'s key in this process (its account is closing here).
    pub fn forget(&self, owner: Uuid) {
        if let Ok(mut cached) = self.cached.lock() {
            cached.remove(&owner);
        }
    }
}

/// The keys of `owners` as they are now: `None` for a destroyed one; absent ones are absent.
pub async fn keys_of<'c>(
    db: impl PgExecutor<'c>,
    owners: &BTreeSet<Uuid>,
) -> Result<HashMap<Uuid, Option<PersonalKey>>, sqlx::Error> {
    if owners.is_empty() {
        return Ok(HashMap::new());
    }
    let ids: Vec<Uuid> = owners.iter().copied().collect();
    let rows: Vec<(Uuid, Option<Vec<u8>>)> =
        sqlx::query_as("SELECT user_id, key FROM personal_keys WHERE user_id = ANY($1)")
            .bind(ids)
            .fetch_all(db)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, key)| (id, key.as_deref().and_then(PersonalKey::from_bytes)))
        .collect())
}

/// Destroys `owner`'s key (kept as a row, so that it is never made again): what was sealed
/// with it can no longer be opened anywhere. Part of the caller's transaction.
pub async fn destroy(conn: &mut PgConnection, owner: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO personal_keys (user_id, key, destroyed_at) VALUES ($1, NULL, now())
         ON CONFLICT (user_id) DO UPDATE SET key = NULL,
                destroyed_at = coalesce(personal_keys.destroyed_at, now())",
    )
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(())
}

/// The body of an event payload (`{"EventType": body}`) that may hold sealed fields.
pub fn sealable_body<'a>(event_type: &str, payload: &'a mut Value) -> Option<&'a mut Value> {
    if personal::event_fields(event_type).is_empty() {
        return None;
    }
    payload.get_mut(event_type)
}

/// Seals the personal fields of an event `payload` written by `actor` (a user id; the
/// system's events hold no personal text).
pub async fn seal_event(
    keys: &SealingKeys,
    pool: &Db,
    event_type: &str,
    payload: &mut Value,
    actor: Option<Uuid>,
) -> Result<(), SealingError> {
    let (Some(owner), Some(body)) = (actor, sealable_body(event_type, payload)) else {
        return Ok(());
    };
    let key = keys.key_of(pool, owner).await?;
    seal::seal(
        body,
        event_type,
        personal::event_fields(event_type),
        owner,
        &key,
    );
    Ok(())
}

/// Seals the personal fields of an aggregate's `state` (a snapshot) under its owner's key.
pub async fn seal_state(
    keys: &SealingKeys,
    pool: &Db,
    aggregate_type: &str,
    state: &mut Value,
) -> Result<(), SealingError> {
    let Some((owner, fields)) = personal::state_fields(aggregate_type) else {
        return Ok(());
    };
    let Some(owner) = state
        .pointer(owner)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
    else {
        return Ok(());
    };
    let key = keys.key_of(pool, owner).await?;
    seal::seal(state, aggregate_type, fields, owner, &key);
    Ok(())
}

/// Why stored events could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The keys could not be read.
    #[error("personal keys: {0}")]
    Database(#[from] sqlx::Error),
    /// A sealed value does not open under a key that exists.
    #[error(transparent)]
    Unopenable(#[from] Unopenable),
}

/// Opens every sealed value of `values` (each with its context: event type or aggregate
/// type), reading the keys they need once (not at all when none is sealed).
pub async fn open_all<'a, 'c>(
    db: impl PgExecutor<'c>,
    values: impl IntoIterator<Item = (&'a str, &'a mut Value)>,
) -> Result<(), OpenError> {
    let values: Vec<(&str, &mut Value)> = values.into_iter().collect();
    let mut owners = BTreeSet::new();
    for (_, value) in &values {
        seal::owners(value, &mut owners);
    }
    if owners.is_empty() {
        return Ok(());
    }
    let keys = keys_of(db, &owners).await?;
    for (context, value) in values {
        seal::open(value, context, &keys)?;
    }
    Ok(())
}

/// Opens the sealed fields of stored events (as read, before upcasting).
///
/// Only a payload whose text names a sealed value's owner can hold one: the others are
/// left unparsed (`log/payload.rs`).
pub async fn open_events<'c>(
    db: impl PgExecutor<'c>,
    events: &mut [StoredEvent],
) -> Result<(), OpenError> {
    let mut sealed: Vec<(usize, Value)> = events
        .iter_mut()
        .enumerate()
        .filter(|(_, e)| {
            !personal::event_fields(&e.event_type).is_empty()
                && e.payload.may_hold(seal::SEALED_BY_IN_TEXT)
        })
        .map(|(at, e)| (at, e.payload.take()))
        .collect();
    if sealed.is_empty() {
        return Ok(());
    }
    let read: &[StoredEvent] = events;
    open_all(
        db,
        sealed.iter_mut().filter_map(|(at, payload)| {
            let event_type = read[*at].event_type.as_str();
            Some((event_type, sealable_body(event_type, payload)?))
        }),
    )
    .await?;
    for (at, payload) in sealed {
        events[at].payload = payload.into();
    }
    Ok(())
}
