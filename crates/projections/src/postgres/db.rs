//! [`Db`]: the connection pool every Carrot process uses. sqlx's pool, minus a round trip.
//!
//! sqlx (0.8, and 0.9 alike) pings every connection on its way back into the pool, to flush
//! the rollback of a dropped transaction and to notice a dead connection. That is a second
//! round trip, and a second wake-up of a server process, for every statement run on the
//! pool: 14-16% of the throughput of registrations and reads on two cores (docs/BENCHMARKS.md).
//! `Db` keeps the connections it hands out in a cache of its own instead, and gives one back
//! to sqlx (which then pings it) only when it has something to flush, or when a task waits
//! on sqlx for a connection (sqlx would not know one came free in the cache). sqlx still
//! opens, bounds and times out connections; a cached one idle for a while is pinged before
//! reuse, since that is when a dead one (a restarted server) is likely.

use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use futures_util::{StreamExt, TryStreamExt};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTransactionManager, PgTypeInfo};
use sqlx::TransactionManager;
use sqlx::{Connection, Describe, Either, Execute, Executor, PgConnection, PgPool, Postgres};

/// How long a cached connection may sit idle before it is checked on its way out.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// After a statement failed because its server went away (killed, failed over), how long
/// every connection is checked on its way out and back: the others in the cache most likely
/// went with it, and a busy pool would otherwise hand the dead ones round and round, never
/// idle long enough to be checked.
const DISTRUST_FOR: Duration = Duration::from_secs(2);

/// A pool of connections (cheap to clone).
#[derive(Clone, Debug)]
pub struct Db {
    pool: PgPool,
    cache: Arc<Mutex<Cache>>,
}

/// Connections handed back, and the tasks waiting on sqlx for one.
#[derive(Debug, Default)]
struct Cache {
    /// Each with when it came back; the most recent last.
    idle: Vec<(PoolConnection<Postgres>, Instant)>,
    waiting: usize,
    /// Set by [`Db::close`]: a connection handed back from then on goes to sqlx, whose
    /// `close` waits for every connection out (one kept here would be waited for forever).
    closed: bool,
    /// Until when connections are checked whatever their idle time (see [`DISTRUST_FOR`]).
    distrust_until: Option<Instant>,
}

impl Cache {
    fn distrusting(&self) -> bool {
        self.distrust_until
            .is_some_and(|until| Instant::now() < until)
    }
}

/// Notes a failed statement: one that failed for want of its server makes every cached
/// connection suspect for a while (dropping them hands them to sqlx, which checks them).
fn noticed(cache: &Mutex<Cache>, error: &sqlx::Error) {
    if super::is_unavailable(error) {
        let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.distrust_until = Some(Instant::now() + DISTRUST_FOR);
        cache.idle.clear();
    }
}

impl Db {
    /// Connections from `pool`, which keeps its limits and options.
    pub fn new(pool: PgPool) -> Self {
        Db {
            pool,
            cache: Arc::default(),
        }
    }

    /// sqlx's pool underneath, for what needs one (`LISTEN`, migrations).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A connection: the most recently used idle one, or one from sqlx.
    pub async fn acquire(&self) -> Result<Conn, sqlx::Error> {
        loop {
            let taken = {
                let mut cache = self.lock();
                let taken = cache.idle.pop();
                if taken.is_none() {
                    cache.waiting += 1;
                }
                taken
            };
            match taken {
                Some((mut conn, since)) => {
                    let fresh = since.elapsed() < PING_IF_IDLE_FOR && !self.lock().distrusting();
                    if fresh || conn.ping().await.is_ok() {
                        return Ok(self.lease(conn));
                    }
                    // Dead: dropping it hands it to sqlx, whose check closes it.
                }
                None => {
                    // Counted as waiting until this ends, however it ends (a caller may
                    // give up on it).
                    let _waiting = Waiting(self);
                    let conn = self.pool.acquire().await;
                    if let Err(e) = &conn {
                        noticed(&self.cache, e);
                    }
                    return Ok(self.lease(conn?));
                }
            }
        }
    }

    /// Begins a transaction on a connection of its own.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let mut conn = self.acquire().await?;
        PgTransactionManager::begin(&mut conn, None).await?;
        Ok(Tx { conn, open: true })
    }

    /// Whether [`Db::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Closes every connection and the pool.
    pub async fn close(&self) {
        {
            let mut cache = self.lock();
            cache.closed = true;
            cache.idle.clear();
        }
        self.pool.close().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lease(&self, conn: PoolConnection<Postgres>) -> Conn {
        Conn {
            conn: Some(conn),
            cache: self.cache.clone(),
        }
    }
}

/// One task waiting on sqlx for a connection.
struct Waiting<'a>(&'a Db);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

/// A connection taken from a [`Db`]; back to its cache when dropped.
pub struct Conn {
    conn: Option<PoolConnection<Postgres>>,
    cache: Arc<Mutex<Cache>>,
}

impl Conn {
    /// Passes `result` through, noting a failure for want of the server (see [`DISTRUST_FOR`]).
    fn noting<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(e) = &result {
            noticed(&self.cache, e);
        }
        result
    }
}

impl Deref for Conn {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Present from creation until drop.
        self.conn.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        // A rollback queued by a dropped transaction (or a statement cut short) must reach
        // the server now, not whenever the connection is next used: sqlx flushes it.
        let dirty = conn.is_in_transaction() || conn.should_flush();
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if dirty || cache.waiting > 0 || cache.closed || cache.distrusting() {
            drop(cache);
            drop(conn);
        } else {
            cache.idle.push((conn, Instant::now()));
        }
    }
}

/// A transaction on a connection of its own; rolled back unless committed.
pub struct Tx {
    conn: Conn,
    open: bool,
}

impl Tx {
    /// Commits.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        let committed = PgTransactionManager::commit(&mut self.conn).await;
        self.conn.noting(committed)?;
        self.open = false;
        Ok(())
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> Result<(), sqlx::Error> {
        PgTransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            PgTransactionManager::start_rollback(&mut self.conn);
        }
    }
}

/// Statements run straight on the pool, each on a connection taken for it (as on sqlx's
/// pool). Results are read whole before the connection goes back.
impl<'p> Executor<'p> for &'_ Db {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let db = self.clone();
        stream::once(async move {
            let mut conn = db.acquire().await?;
            let all = conn.fetch_many(query).try_collect::<Vec<_>>().await;
            let all = conn.noting(all)?;
            Ok::<_, sqlx::Error>(stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.acquire().await?;
            let row = conn.fetch_optional(query).await;
            conn.noting(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>> {
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.acquire().await?;
            conn.prepare_with(sql, parameters).await
        })
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>> {
        let db = self.clone();
        Box::pin(async move {
            let mut conn = db.acquire().await?;
            conn.describe(sql).await
        })
    }
}
