//! Pages of every list the API answers (`Page<T>`: items and the next page's cursor), and
//! the keyset cursor of the newest-first lists (the catalog, MyPage): a page ends at its
//! last item's `(created_at, id)`, and the next one starts strictly after it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// In the list's order (newest first, or log order for the log's lists).
    pub items: Vec<T>,
    /// Pass it as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A whole list, in one answer (short by nature: every subscriber, the open mismatches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Items<T> {
    /// In the list's order.
    pub items: Vec<T>,
}

impl<T> Page<T> {
    /// Keeps `limit` of `items` (fetched with one extra) and the cursor of the next page:
    /// the `cursor` of the last item kept, when more follow.
    pub fn cut(mut items: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor)
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

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
