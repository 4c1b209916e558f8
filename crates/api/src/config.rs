//! The command line and the environment (`CARROT_*`, `DATABASE_URL`), with defaults that
//! run everything on one machine with an embedded PostgreSQL.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
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
    /// The payment gateway.
    #[command(flatten)]
    pub payment: PaymentArgs,
}

/// The payment gateway: the in-process simulated one, and the limits around it.
#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// How long a gateway call may take before its outcome counts as unknown, in ms.
    #[arg(long, env = "CARROT_PAYMENT_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub payment_timeout_ms: u64,
    /// Simulated gateway: the latency of each call in ms, `N` or a range `MIN-MAX`.
    #[arg(long, env = "CARROT_PAYMENT_LATENCY_MS", default_value = "0", value_parser = parse_latency)]
    pub payment_latency_ms: RangeInclusive<u64>,
    /// Simulated gateway: the share of captures declined, 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_DECLINE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_decline_rate: f64,
    /// Simulated gateway: the share of calls failing with nothing moved, 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_failure_rate: f64,
}

fn parse_latency(raw: &str) -> Result<RangeInclusive<u64>, String> {
    let bad = || format!("expected milliseconds as `N` or `MIN-MAX`, got {raw:?}");
    let (min, max) = match raw.split_once('-') {
        Some((min, max)) => (min.trim(), max.trim()),
        None => (raw.trim(), raw.trim()),
    };
    let (min, max) = (
        min.parse::<u64>().map_err(|_| bad())?,
        max.parse::<u64>().map_err(|_| bad())?,
    );
    if min > max || max > 600_000 {
        return Err(bad());
    }
    Ok(min..=max)
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("expected a share from 0 to 1, got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_one_number_or_a_range() {
        assert_eq!(parse_latency("0"), Ok(0..=0));
        assert_eq!(parse_latency("400-620"), Ok(400..=620));
        for bad in ["", "-5", "9-3", "a-b", "1-2-3"] {
            assert!(parse_latency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_are_shares() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        for bad in ["-0.1", "1.5", "NaN", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
