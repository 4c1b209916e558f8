//! Keyset pagination of the newest-first lists (the catalog, MyPage): a page ends at its
//! last item's `(created_at, id)`, and the next one starts strictly after it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

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

    /// Parses a cursor from its text form.
    pub fn decode(raw: &str) -> Option<Self> {
        let (micros, id) = raw.split_once('_')?;
        Some(PageCursor {
            created_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id: Uuid::try_parse(id).ok()?,
        })
    }
}

/// Keeps `limit` of `items` (fetched with one extra) and the cursor of the next page.
pub(crate) fn page<T>(
    mut items: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> PageCursor,
) -> (Vec<T>, Option<PageCursor>) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() > limit {
        items.truncate(limit);
        let next = items.last().map(key);
        (items, next)
    } else {
        (items, None)
    }
}
