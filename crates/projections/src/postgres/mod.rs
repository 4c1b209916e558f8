//! Postgres wiring shared by the server, the workers, the CLI and the tests: connection
//! pools with the session settings the event log relies on, migrations, the embedded cluster.

mod clock;
mod db;
pub mod embedded;
pub mod log_order;
pub mod roles;

pub use clock::DatabaseClock;
pub use db::{Conn, Db, Tx};

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};

/// Every schema change, embedded in the binary and applied at start-up.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// Connection options for `url` with the session settings every Carrot connection uses.
///
/// `idle_in_transaction_session_timeout` bounds how long a forgotten transaction can hold
/// back the log's horizon (readers stall behind any open transaction, by design).
pub fn connect_options(url: &str) -> Result<PgConnectOptions, sqlx::Error> {
    Ok(PgConnectOptions::from_str(url)?
        .options([("idle_in_transaction_session_timeout", "10s")])
        .application_name("carrot"))
}

/// A pool of at most `max_connections` connections to `url` (see [`Db`]).
pub async fn connect(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
    let pool = pool_options(max_connections)
        .connect_with(connect_options(url)?)
        .await?;
    Ok(Db::new(pool))
}

/// [`connect`], without connecting yet: for a server that may be down when the process
/// starts (a read replica: reads use the primary until it answers).
pub fn connect_lazy(url: &str, max_connections: u32) -> Result<Db, sqlx::Error> {
    Ok(Db::new(
        pool_options(max_connections).connect_lazy_with(connect_options(url)?),
    ))
}

/// How every pool of Carrot's is set up.
fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // Db checks what it takes from its own cache; sqlx's own idle connections are
        // checked the same way (a busy connection that died fails its statement, and goes).
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > Duration::from_secs(1) {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Whether `e` says the server cannot serve this connection for now: unreachable, shutting
/// down or crashed, refusing connections, or read-only (a standby, or a primary just
/// demoted). The same statement may well succeed on a new connection soon: on the server
/// back, or on the standby promoted in its place.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exceptions; 57P01-03: shutdown, crash, cannot connect now;
        // 25006: a write on a read-only server; 53300: too many connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08")
                || matches!(&*code, "57P01" | "57P02" | "57P03" | "25006" | "53300")
        }),
        _ => false,
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &Db) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(db.pool()).await
}

/// How a process treats the database's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Apply pending migrations (`carrot migrate`, `carrot serve --migrate`, the embedded
    /// default). Needs the rights of the schema's owner.
    Migrate,
    /// Never change the schema; refuse if a migration this version needs is missing. A
    /// schema a newer version migrated further is fine: migrations only add.
    Require,
}

/// Why the database is not ready for Carrot.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A migration failed.
    #[error("applying migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Reading which migrations are applied failed.
    #[error("reading the applied migrations: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations this version needs are not applied, and this process may not apply them.
    #[error(
        "the database lacks {} migration(s) this version needs (the first: {}); run `carrot \
         migrate` as the schema's owner first (or `carrot serve --migrate`)",
        .0.len(), .0.first().copied().unwrap_or_default()
    )]
    Behind(Vec<i64>),
    /// The log's order could not be made safe.
    #[error(transparent)]
    LogOrder(#[from] log_order::LogOrderError),
}

/// What every process does before using the database: applies pending migrations (or,
/// with [`Schema::Require`], checks that none is missing), then makes sure events written
/// from now on order after the log (`log_order.rs`).
pub async fn prepare(db: &Db, schema: Schema) -> Result<log_order::LogOrder, PrepareError> {
    match schema {
        Schema::Migrate => migrate(db).await?,
        Schema::Require => {
            let missing = missing_migrations(db).await?;
            if !missing.is_empty() {
                return Err(PrepareError::Behind(missing));
            }
        }
    }
    Ok(log_order::ensure(db).await?)
}

/// The versions of this binary's migrations the database has not applied (all of them on
/// a database never migrated).
pub async fn missing_migrations(db: &Db) -> Result<Vec<i64>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('public._sqlx_migrations') IS NOT NULL")
            .fetch_one(db)
            .await?;
    let applied: Vec<i64> = if exists {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(db)
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| m.version)
        .filter(|v| applied.binary_search(v).is_err())
        .collect())
}

/// Whether every embedded migration has been applied successfully to this database.
pub async fn migrations_applied(pool: &Db) -> Result<bool, sqlx::Error> {
    Ok(missing_migrations(pool).await?.is_empty())
}

/// Creates `database` on the server behind `admin_url` unless it exists.
pub async fn ensure_database(admin_url: &str, database: &str) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&connect_options(admin_url)?).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(database)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(database)))
            .execute(&mut conn)
            .await?;
    }
    conn.close().await
}

/// Quotes an SQL identifier (for names that cannot be bound as parameters).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
