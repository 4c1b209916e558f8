//! Test support: a database of its own for every test, on a real PostgreSQL.
//!
//! With `DATABASE_URL` set, test databases are created on that server. Otherwise each test
//! process starts a throwaway cluster from the machine's server binaries (see
//! [`EmbeddedPostgres::start_throwaway`]), which goes away when the process ends. Either
//! way every test gets a fresh database cloned from a migrated template.

use std::sync::OnceLock;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;

use crate::postgres::embedded::{Binaries, EmbeddedPostgres};
use crate::postgres::Db;
use crate::postgres::{connect_options, quote_ident, MIGRATOR};

struct Server {
    admin: PgConnectOptions,
    url_for: Box<dyn Fn(&str) -> String + Send + Sync>,
    _cluster: Option<EmbeddedPostgres>,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

fn server() -> &'static Server {
    let server = SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("DATABASE_URL") {
            let admin = connect_options(&url).map_err(|e| format!("DATABASE_URL: {e}"))?;
            let base = url.split('?').next().unwrap_or(&url).to_owned();
            let prefix = base
                .rsplit_once('/')
                .map(|(p, _)| p.to_owned())
                .unwrap_or(base);
            return Ok(Server {
                admin,
                url_for: Box::new(move |db| format!("{prefix}/{db}")),
                _cluster: None,
            });
        }
        let cluster = throwaway_cluster().map_err(|e| e.to_string())?;
        let admin = connect_options(&cluster.url("postgres")).map_err(|e| e.to_string())?;
        let password_url = cluster.url("");
        Ok(Server {
            admin,
            url_for: Box::new(move |db| format!("{password_url}{db}")),
            _cluster: Some(cluster),
        })
    });
    match server {
        Ok(server) => server,
        Err(e) => panic!("cannot provide a test database: {e}"),
    }
}

/// A PostgreSQL cluster of this test process's own, copied from the template every test
/// process shares (so its transaction counter starts where theirs did); stopped when
/// dropped.
pub fn throwaway_cluster() -> Result<EmbeddedPostgres, crate::postgres::embedded::EmbeddedError> {
    let bin = Binaries::locate()?;
    let base = std::env::temp_dir()
        .join("carrot-test-pg")
        .join(bin.fingerprint());
    EmbeddedPostgres::start_throwaway(&bin, &base)
}

/// A fresh, migrated database for one test.
pub struct TestDatabase {
    /// A pool on it.
    pub pool: Db,
    /// Its name.
    pub name: String,
    /// A connection URL for it (for spawning processes against it).
    pub url: String,
}

/// Creates a fresh database with every migration applied.
pub async fn test_database() -> TestDatabase {
    let server = server();
    let template = TEMPLATE
        .get_or_init(|| async { migrated_template(&server.admin).await })
        .await;
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection(&server.admin).await;
    let create = format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(&name),
        quote_ident(template)
    );
    let mut attempt = 0;
    while let Err(e) = sqlx::query(&create).execute(&mut admin).await {
        // Two tests cloning the template at the same instant can collide; try again.
        attempt += 1;
        assert!(attempt < 20, "creating a test database: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = admin.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(server.admin.clone().database(&name))
        .await
        .unwrap_or_else(|e| panic!("connecting to the test database: {e}"));
    TestDatabase {
        pool: Db::new(pool),
        url: (server.url_for)(&name),
        name,
    }
}

async fn admin_connection(options: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(options)
        .await
        .unwrap_or_else(|e| panic!("connecting to the test server: {e}"))
}

/// The name of a database holding every migration, made once per server and schema version.
async fn migrated_template(admin_options: &PgConnectOptions) -> String {
    let fingerprint: u64 = MIGRATOR
        .iter()
        .flat_map(|m| m.checksum.iter().copied())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let name = format!("carrot_template_{:016x}", fingerprint);
    let mut admin = admin_connection(admin_options).await;
    // Several test processes may share one server: make the template under a lock.
    let lock_key = (fingerprint >> 1) as i64;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(lock_key)
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("locking the template: {e}"));
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("looking for the template: {e}"));
    if !exists {
        let building = format!("{name}_building");
        let _ = sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {}",
            quote_ident(&building)
        ))
        .execute(&mut admin)
        .await;
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&building)))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("creating the template: {e}"));
        let mut conn = admin_connection(&admin_options.clone().database(&building)).await;
        MIGRATOR
            .run(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("migrating the template: {e}"));
        let _ = conn.close().await;
        sqlx::query(&format!(
            "ALTER DATABASE {} RENAME TO {}",
            quote_ident(&building),
            quote_ident(&name)
        ))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("publishing the template: {e}"));
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(lock_key)
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    name
}

/// Appends one event straight into the log, as postgres-es's INSERT does, on `conn`
/// (inside whatever transaction `conn` is in). For tests of the log and of subscribers.
pub async fn append_raw(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
    sequence: i64,
    payload: serde_json::Value,
) -> Result<(), sqlx::Error> {
    let event_type = payload
        .as_object()
        .and_then(|o| o.keys().next().cloned())
        .unwrap_or_else(|| "TestEvent".to_owned());
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         VALUES ($1, $2, $3, $4, '1.0', $5, '{}')",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .bind(event_type)
    .bind(payload)
    .execute(conn)
    .await?;
    Ok(())
}
