//! The command line and the environment (`CARROT_*`, `DATABASE_URL`), with defaults that
//! run everything on one machine with an embedded PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Carrot: an event-sourced second-hand marketplace backend.
#[derive(Debug, Parser)]
#[command(name = "carrot", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and run the projections.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// A PostgreSQL URL. Unset: an embedded PostgreSQL runs in the data directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Where Carrot keeps its files (embedded database, generated JWT secret).
    #[arg(long, env = "CARROT_DATA_DIR", default_value = "./.carrot")]
    pub data_dir: PathBuf,
    /// The most database connections this process opens.
    #[arg(long, env = "CARROT_DB_POOL_SIZE", default_value_t = 20)]
    pub pool_size: u32,
}

/// `carrot serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The address to listen on.
    #[arg(long, env = "CARROT_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The JWT signing secret (at least 32 bytes). Unset: one is generated once and kept in
    /// the data directory. Replicas must share it.
    #[arg(long, env = "CARROT_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// How long an access token is valid, in seconds.
    #[arg(long, env = "CARROT_JWT_TTL_SECONDS", default_value_t = 3600,
          value_parser = clap::value_parser!(i64).range(60..=604_800))]
    pub jwt_ttl_seconds: i64,
    /// How long a read with X-Consistency-Token waits for the views, in milliseconds.
    #[arg(long, env = "CARROT_CONSISTENCY_WAIT_MS", default_value_t = 2000)]
    pub consistency_wait_ms: u64,
    /// How often a runner polls when no notification arrives, in milliseconds.
    #[arg(long, env = "CARROT_POLL_INTERVAL_MS", default_value_t = 500)]
    pub poll_interval_ms: u64,
}
