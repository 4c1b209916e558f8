//! Keyset pagination of the newest-first lists (the catalog, MyPage): a page ends at its
//! last item's `(created_at, id)`, and the next one starts strictly after it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The earliest `timestamptz` PostgreSQL holds (4714-11-24 BC, 00:00 UTC), in microseconds
/// since the Unix epoch. chrono goes back further (to 262144 BC), and such a time sent to the
/// database fails the query. Every later time chrono accepts, PostgreSQL holds too (to
/// 294276 AD).
pub const EARLIEST_MICROS: i64 = -210_866_803_200_000_000;

/// Where a page of a newest-first list ends: the last item's `(created_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) id: Uuid,
}

impl PageCursor {
    /// The cursor after `(created_at, id)`.
    pub fn after(created_at: DateTime<Utc>, id: Uuid) -> Self {
        PageCursor { created_at, id }
    }

    /// The cursor's text form, opaque to clients.
    pub fn encode(&self) -> String {
        format!(
            "{}_{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Parses a cursor from its text form; `None` for anything [`PageCursor::encode`] cannot
    /// have written, a time the database cannot hold included (a forged cursor must be a
    /// client's mistake, never a failed query).
    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        let micros: i64 = micros.parse().ok()?;
        if micros < EARLIEST_MICROS {
            return None;
        }
        Some(PageCursor {
            created_at: DateTime::from_timestamp_micros(micros)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// Keeps `limit` of `items` (fetched with one extra) and the cursor of the next page: the
/// `key` of the last item kept, when more follow.
pub fn page<T, K>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> (Vec<T>, Option<K>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_times_the_database_cannot_hold_are_refused() {
        let id = Uuid::new_v4();
        let earliest = DateTime::from_timestamp_micros(EARLIEST_MICROS).expect("in chrono's range");
        // Times as stored: whole microseconds.
        let now = DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now");
        for at in [now, earliest] {
            let cursor = PageCursor::after(at, id);
            assert_eq!(PageCursor::decode(&cursor.encode()), Some(cursor));
        }
        for raw in [
            format!("{}_{}", EARLIEST_MICROS - 1, id.simple()),
            format!("-8000000000000000000_{}", id.simple()),
            format!("{}_{}", i64::MAX, id.simple()),
            format!("99999999999999999999999_{}", id.simple()),
            "1_not-a-uuid".to_owned(),
            "garbage".to_owned(),
        ] {
            assert_eq!(PageCursor::decode(&raw), None, "{raw}");
        }
    }
}
