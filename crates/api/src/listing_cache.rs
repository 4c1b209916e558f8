//! Listings kept in memory for `GET /listings/{id}`, the most frequent read: exact by the
//! catalog's own announcements, never older than a caller's consistency token.
//!
//! Each entry is a catalog row and the catalog checkpoint it was read at (one snapshot,
//! `catalog::listing_as_of`). The catalog announces, as each batch commits, the listings it
//! changed and the batch's checkpoint (`catalog::CHANGES`); an announced listing is dropped,
//! and a *floor* is kept for it: a row read before that checkpoint is never kept again (a
//! read that raced the change, or a replica that has not replayed it yet). An announcement
//! of everything (`*`) or a lost connection empties it; past 32 MiB, listings are let go to
//! make room. Until this process listens, nothing is kept.
//!
//! So a read without a token may answer what the catalog had up to the moment the change's
//! announcement arrives (as a replica or a lagging view would); a read with a token is
//! answered from memory only by an entry read at or past the token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use carrot_projections::log::Checkpoint;
use carrot_projections::postgres::Db;
use carrot_projections::views::catalog::{ListingView, CHANGES};
use sqlx::postgres::PgListener;
use uuid::Uuid;

/// How many bytes of listings one process keeps at most (a description is up to 5,000
/// characters): past it, kept listings are let go, any of them, to make room.
const BYTES_AT_MOST: usize = 32 << 20;
/// The most floors kept: past it, the cache empties.
const FLOORS_AT_MOST: usize = 100_000;

/// The listings one process keeps (cheap to clone).
#[derive(Clone, Default)]
pub struct ListingCache {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// Whether announcements are being received (nothing is kept otherwise).
    listening: bool,
    rows: HashMap<Uuid, (ListingView, Checkpoint)>,
    /// About how many bytes `rows` holds.
    bytes: usize,
    /// For each announced listing, the checkpoint a row must be read at to be kept.
    floors: HashMap<Uuid, Checkpoint>,
    /// Moves on each emptying: a read begun before it is not kept.
    generation: u64,
}

impl Inner {
    fn empty(&mut self) {
        self.rows.clear();
        self.bytes = 0;
        self.floors.clear();
        self.generation += 1;
    }

    fn remove(&mut self, id: &Uuid) {
        if let Some((row, _)) = self.rows.remove(id) {
            self.bytes = self.bytes.saturating_sub(size_of_row(&row));
        }
    }
}

/// About what a kept listing takes in memory.
fn size_of_row(row: &ListingView) -> usize {
    std::mem::size_of::<(ListingView, Checkpoint)>()
        + row.title.len()
        + row.description.len()
        + row.status.len()
        + row.category.as_ref().map_or(0, String::len)
        + 64
}

/// A read's ticket: the generation it began in.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl ListingCache {
    /// The cache, kept exact by a `LISTEN` of its own on `pool`'s server (the primary:
    /// where the catalog's batches commit) until the pool closes.
    pub fn start(pool: &Db) -> Self {
        let cache = ListingCache::default();
        let keeper = cache.clone();
        let pool = pool.clone();
        tokio::spawn(async move { keeper.listen(pool).await });
        cache
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The listing, if kept and read at or past `token` (when given).
    pub fn get(&self, id: Uuid, token: Option<Checkpoint>) -> Option<ListingView> {
        let inner = self.lock();
        let (row, at) = inner.rows.get(&id)?;
        token.is_none_or(|t| *at >= t).then(|| row.clone())
    }

    /// Taken before reading a listing from the database, to keep it after.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Keeps `row`, read at `at`, unless an announcement since says it may be older than
    /// the catalog (or the cache emptied since the ticket).
    pub fn keep(&self, ticket: Ticket, row: ListingView, at: Checkpoint) {
        let mut inner = self.lock();
        let id = row.listing_id;
        let floor = inner.floors.get(&id).copied().unwrap_or_default();
        if !inner.listening || ticket.0 != inner.generation || at < floor {
            return;
        }
        inner.remove(&id);
        let size = size_of_row(&row);
        while inner.bytes + size > BYTES_AT_MOST {
            let Some(any) = inner.rows.keys().next().copied() else {
                break;
            };
            inner.remove(&any);
        }
        inner.bytes += size;
        inner.rows.insert(id, (row, at));
    }

    /// Applies one announcement: `<checkpoint>;<id>,<id>...` or `<checkpoint>;*`.
    fn announced(&self, payload: &str) {
        let mut inner = self.lock();
        let parsed = payload
            .split_once(';')
            .and_then(|(at, ids)| Some((at.parse::<Checkpoint>().ok()?, ids)));
        let Some((at, ids)) = parsed.filter(|(_, ids)| *ids != "*") else {
            inner.empty();
            return;
        };
        if inner.floors.len() >= FLOORS_AT_MOST {
            inner.empty();
        }
        for id in ids.split(',') {
            let Ok(id) = Uuid::try_parse(id) else {
                inner.empty();
                return;
            };
            inner.remove(&id);
            let floor = inner.floors.entry(id).or_default();
            *floor = (*floor).max(at);
        }
    }

    fn set_listening(&self, listening: bool) {
        let mut inner = self.lock();
        inner.listening = listening;
        inner.empty();
    }

    /// Receives the catalog's announcements, reconnecting with a backoff; whenever the
    /// connection is lost, whatever was missed meanwhile empties the cache.
    async fn listen(&self, pool: Db) {
        let mut backoff = Duration::from_millis(100);
        while !pool.is_closed() {
            let listener = match PgListener::connect_with(pool.pool()).await {
                Ok(mut listener) => listener.listen(CHANGES).await.map(|()| listener),
                Err(e) => Err(e),
            };
            let mut listener = match listener {
                Ok(listener) => listener,
                Err(_) if pool.is_closed() => return,
                Err(e) => {
                    tracing::debug!(error = %e, "no connection for the listing cache; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            self.set_listening(true);
            // Until the connection drops (`Ok(None)`): then whatever is announced before a
            // new one listens is missed, so nothing is kept until it does.
            while let Ok(Some(note)) = listener.try_recv().await {
                self.announced(note.payload());
            }
            self.set_listening(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(id: Uuid, price: i64) -> ListingView {
        ListingView {
            listing_id: id,
            seller_id: Uuid::nil(),
            title: "Lamp".into(),
            description: String::new(),
            price,
            category: None,
            status: "available".into(),
            created_at: chrono::DateTime::default(),
            updated_at: chrono::DateTime::default(),
        }
    }

    fn at(position: i64) -> Checkpoint {
        Checkpoint {
            transaction_id: 1,
            global_position: position,
        }
    }

    fn listening() -> ListingCache {
        let cache = ListingCache::default();
        cache.lock().listening = true;
        cache
    }

    #[test]
    fn nothing_is_kept_until_announcements_are_received() {
        let cache = ListingCache::default();
        let id = Uuid::new_v4();
        cache.keep(cache.ticket(), listing(id, 1), at(5));
        assert!(cache.get(id, None).is_none());
    }

    #[test]
    fn a_token_is_answered_only_by_a_row_read_at_or_past_it() {
        let cache = listening();
        let id = Uuid::new_v4();
        cache.keep(cache.ticket(), listing(id, 1), at(5));
        assert!(cache.get(id, Some(at(5))).is_some());
        assert!(cache.get(id, Some(at(6))).is_none());
        assert!(cache.get(id, None).is_some());
    }

    #[test]
    fn a_row_read_before_an_announced_change_is_never_kept() {
        let cache = listening();
        let id = Uuid::new_v4();
        let ticket = cache.ticket();
        cache.keep(ticket, listing(id, 1), at(5));
        // The change at 7 is announced: the row goes, and one read at 6 (a replica not
        // there yet, or a read that raced the change) is not kept.
        cache.announced(&format!("{};{id}", at(7)));
        assert!(cache.get(id, None).is_none());
        cache.keep(cache.ticket(), listing(id, 1), at(6));
        assert!(cache.get(id, None).is_none());
        cache.keep(cache.ticket(), listing(id, 2), at(7));
        assert_eq!(cache.get(id, None).map(|l| l.price), Some(2));
    }

    #[test]
    fn what_is_kept_stays_within_its_bytes() {
        let cache = listening();
        let mut big = listing(Uuid::new_v4(), 1);
        big.description = "가".repeat(5_000);
        let size = size_of_row(&big);
        for _ in 0..(BYTES_AT_MOST / size + 100) {
            let mut row = big.clone();
            row.listing_id = Uuid::new_v4();
            cache.keep(cache.ticket(), row, at(5));
        }
        let inner = cache.lock();
        assert!(inner.bytes <= BYTES_AT_MOST);
        assert_eq!(inner.rows.len(), BYTES_AT_MOST / size);
    }

    #[test]
    fn everything_announced_or_a_lost_connection_empties_it_and_voids_reads_in_flight() {
        let cache = listening();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        cache.keep(cache.ticket(), listing(a, 1), at(5));
        let in_flight = cache.ticket();
        cache.announced(&format!("{};*", at(9)));
        assert!(cache.get(a, None).is_none());
        cache.keep(in_flight, listing(b, 1), at(10));
        assert!(cache.get(b, None).is_none(), "begun before the emptying");
        cache.keep(cache.ticket(), listing(b, 1), at(10));
        assert!(cache.get(b, None).is_some());
        cache.set_listening(false);
        assert!(cache.get(b, None).is_none());
        cache.announced("not an announcement");
        cache.set_listening(false);
        cache.keep(cache.ticket(), listing(b, 1), at(11));
        assert!(cache.get(b, None).is_none());
    }
}
