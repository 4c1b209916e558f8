//! A primary and its streaming standby, each a private cluster of the test's own.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::{connect, ensure_database, Db};

/// The database Carrot uses on the pair.
pub const DATABASE: &str = "carrot";

/// A primary and its standby, under a directory removed when dropped.
pub struct Pair {
    pub primary: EmbeddedPostgres,
    pub standby: EmbeddedPostgres,
    dir: PathBuf,
}

impl Pair {
    /// A primary with `primary_settings` (beside `synchronous_commit=on`), the `carrot`
    /// database on it, and a standby streaming from it, named `standby1`. `synchronous`:
    /// the primary's commits wait for the standby (`synchronous_standby_names`).
    pub async fn start(name: &str, primary_settings: &[&str], synchronous: bool) -> Pair {
        let dir = std::env::temp_dir().join(format!("carrot-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let bin = Binaries::locate().unwrap();
        let mut settings = vec!["synchronous_commit=on".to_owned()];
        settings.extend(primary_settings.iter().map(|s| (*s).to_owned()));
        let options = ClusterOptions {
            data_dir: dir.join("primary"),
            durable: false,
            remove_on_stop: true,
            port: None,
            settings,
        };
        let primary = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&bin, &options))
            .await
            .unwrap()
            .unwrap();
        ensure_database(&primary.url("postgres"), DATABASE)
            .await
            .unwrap();
        let standby_dir = dir.join("standby");
        let (primary, standby) = tokio::task::spawn_blocking(move || {
            let standby = primary
                .start_standby(&standby_dir, "standby1", Vec::new())
                .unwrap();
            (primary, standby)
        })
        .await
        .unwrap();
        let pair = Pair {
            primary,
            standby,
            dir,
        };
        if synchronous {
            let admin = pair.primary_pool("postgres").await;
            sqlx::query("ALTER SYSTEM SET synchronous_standby_names = 'standby1'")
                .execute(&admin)
                .await
                .unwrap();
            sqlx::query("SELECT pg_reload_conf()")
                .execute(&admin)
                .await
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let state: Option<String> = sqlx::query_scalar(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'",
                )
                .fetch_optional(&admin)
                .await
                .unwrap();
                if state.as_deref() == Some("sync") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the standby never became synchronous"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            admin.close().await;
        }
        pair
    }

    /// A small pool on `database` of the primary.
    pub async fn primary_pool(&self, database: &str) -> Db {
        connect(&self.primary.url(database), 2).await.unwrap()
    }

    /// A small pool on `database` of the standby.
    pub async fn standby_pool(&self, database: &str) -> Db {
        connect(&self.standby.url(database), 2).await.unwrap()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        self.standby.stop(Duration::from_secs(10));
        self.primary.stop(Duration::from_secs(10));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
