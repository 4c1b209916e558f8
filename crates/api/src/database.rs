//! Opening the database: the one at `DATABASE_URL`, or an embedded cluster in the data
//! directory; then migrations and the log's order.

use carrot_projections::postgres::Db;
use std::path::Path;

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::{connect, ensure_database, prepare, PrepareError, Schema};

use crate::config::DatabaseArgs;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// The embedded cluster failed.
    #[error(transparent)]
    Embedded(#[from] carrot_projections::postgres::embedded::EmbeddedError),
    /// Connecting failed.
    #[error("connecting to PostgreSQL: {0}")]
    Connect(#[from] sqlx::Error),
    /// A migration failed, or the log's order could not be made safe.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    /// The data directory is unusable.
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
}

/// The database Carrot runs on; stops the embedded cluster (if any) when dropped.
pub struct Database {
    /// A pool on it.
    pub pool: Db,
    embedded: Option<EmbeddedPostgres>,
}

/// The name of Carrot's database inside an embedded cluster.
const EMBEDDED_DATABASE: &str = "carrot";

impl Database {
    /// Opens the configured database, applies pending migrations (with
    /// [`Schema::Migrate`], or always on the embedded cluster, which is this process's
    /// own; [`Schema::Require`] only checks that none is missing) and makes sure the log's
    /// order is safe on this cluster (re-basing it after a restore elsewhere).
    pub async fn open(args: &DatabaseArgs, schema: Schema) -> Result<Database, DatabaseError> {
        let (url, embedded, own) = match &args.database_url {
            Some(url) => (url.clone(), None, false),
            // A `carrot serve` already runs the embedded cluster: use it, never a second
            // server on the same files (the operator commands beside the README's first
            // command).
            None => match EmbeddedPostgres::running(&args.data_dir.join("pg"), EMBEDDED_DATABASE) {
                Some(url) => (url, None, true),
                None => {
                    let cluster = start_embedded(&args.data_dir).await?;
                    ensure_database(&cluster.url("postgres"), EMBEDDED_DATABASE).await?;
                    (cluster.url(EMBEDDED_DATABASE), Some(cluster), true)
                }
            },
        };
        let pool = connect(&url, args.pool_size).await?;
        let schema = if own { Schema::Migrate } else { schema };
        prepare(&pool, schema).await?;
        Ok(Database { pool, embedded })
    }

    /// Closes the pool, then stops the embedded cluster (fast shutdown).
    pub async fn close(mut self) {
        self.pool.close().await;
        if let Some(mut cluster) = self.embedded.take() {
            let _ = tokio::task::spawn_blocking(move || {
                cluster.stop(std::time::Duration::from_secs(30));
                eprintln!("carrot: embedded PostgreSQL stopped");
            })
            .await;
        }
    }
}

async fn start_embedded(data_dir: &Path) -> Result<EmbeddedPostgres, DatabaseError> {
    let data_dir = std::path::absolute(data_dir)
        .map_err(|e| DatabaseError::DataDir(data_dir.display().to_string(), e))?;
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| DatabaseError::DataDir(data_dir.display().to_string(), e))?;
    let bin = Binaries::locate()?;
    let options = ClusterOptions {
        data_dir: data_dir.join("pg"),
        durable: true,
        remove_on_stop: false,
        port: None,
    };
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&bin, &options))
        .await
        .map_err(|e| {
            DatabaseError::DataDir("starting PostgreSQL".into(), std::io::Error::other(e))
        })??;
    eprintln!(
        "carrot: embedded PostgreSQL on 127.0.0.1:{}; its data lives in {}",
        cluster.port(),
        cluster.data_dir().display()
    );
    Ok(cluster)
}
