//! Opening the database: the one at `DATABASE_URL`, or an embedded cluster in the data
//! directory; then migrations and the log's order.

use std::path::Path;

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::Db;
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
    /// Another `carrot serve` runs the embedded cluster of this data directory.
    #[error(
        "another carrot serve runs the embedded PostgreSQL in {0}; stop it first, or give \
         this one a CARROT_DATA_DIR of its own (operator commands use the running one)"
    )]
    Busy(String),
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
    pub async fn open(
        args: &DatabaseArgs,
        schema: Schema,
        embedded: Embedded,
    ) -> Result<Database, DatabaseError> {
        let (url, cluster, own) = match &args.database_url {
            Some(url) => (url.clone(), None, false),
            None => {
                let (url, cluster) = open_embedded(&args.data_dir, embedded).await?;
                (url, cluster, true)
            }
        };
        let pool = connect(&url, args.pool_size).await?;
        let schema = if own { Schema::Migrate } else { schema };
        prepare(&pool, schema).await?;
        Ok(Database {
            pool,
            embedded: cluster,
        })
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

/// What a process wants of the embedded cluster when another process runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Embedded {
    /// Run it itself (`carrot serve`): refused while another process runs it.
    Own,
    /// Use the running one if there is one (the operator commands beside the README's
    /// first command), else run it for as long as the command lasts.
    Share,
}

/// The URL of Carrot's database in the embedded cluster of `data_dir`, and the cluster
/// when this process started it. Starting is under a lock on the data directory, so two
/// first starts cannot race; the one that waited finds the other's cluster running.
async fn open_embedded(
    data_dir: &Path,
    wants: Embedded,
) -> Result<(String, Option<EmbeddedPostgres>), DatabaseError> {
    let fail = |e| DatabaseError::DataDir(data_dir.display().to_string(), e);
    std::fs::create_dir_all(data_dir).map_err(fail)?;
    let lock_path = data_dir.join("embedded.lock");
    let lock = tokio::task::spawn_blocking(move || {
        let lock = std::fs::File::create(&lock_path)?;
        lock.lock()?;
        Ok::<_, std::io::Error>(lock)
    })
    .await
    .map_err(|e| fail(std::io::Error::other(e)))?
    .map_err(fail)?;
    let pg = data_dir.join("pg");
    let opened = match (EmbeddedPostgres::running(&pg, EMBEDDED_DATABASE), wants) {
        (Some(_), Embedded::Own) => Err(DatabaseError::Busy(pg.display().to_string())),
        (Some(url), Embedded::Share) => Ok((url, None)),
        (None, _) => match start_embedded(data_dir).await {
            Ok(cluster) => ensure_database(&cluster.url("postgres"), EMBEDDED_DATABASE)
                .await
                .map(|()| (cluster.url(EMBEDDED_DATABASE), Some(cluster)))
                .map_err(DatabaseError::from),
            Err(e) => Err(e),
        },
    };
    drop(lock);
    opened
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
        settings: Vec::new(),
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
