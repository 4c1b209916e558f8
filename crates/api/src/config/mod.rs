//! The command line and the environment (`CARROT_*`, `DATABASE_URL`), with defaults that
//! run everything on one machine with an embedded PostgreSQL.

mod payment;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use carrot_domain::purchase_request::Deadlines;
use carrot_projections::settlement::{DispatcherConfig, SagaConfig};
use clap::{Args, Parser, Subcommand};

use crate::limits::{LimitConfig, Rate};
use crate::startup::ServeRole;
pub(crate) use payment::parse_latency;
pub use payment::{BreakerArgs, PaymentArgs, PaymentSimArgs};

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
    Serve(Box<ServeArgs>),
    /// Apply pending database migrations (as the schema's owner) and exit.
    Migrate(MigrateArgs),
    /// Rebuild views from the event log while the service runs (or check them: --verify).
    Replay(ReplayArgs),
    /// Print the events of one trade or one aggregate.
    Events(EventsArgs),
    /// The settlement saga, for operators.
    #[command(subcommand)]
    Saga(SagaCommand),
    /// List the events a subscriber holds in quarantine, or ask its runners to retry them.
    Quarantine(QuarantineArgs),
    /// Accounts, for operators.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Serve the simulated payment gateway over HTTP, with fault injection at run time.
    PaymentSim(PaymentSimArgs),
    /// Print the OpenAPI document (pretty JSON), as `GET /openapi.json` serves it.
    Openapi,
}

/// `carrot replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The views to rebuild (catalog, payments, mypage, timeline, notifications); all of
    /// them when none is named.
    pub views: Vec<String>,
    /// Rebuild aside and print every difference from the live views (exit 1 if any);
    /// change nothing.
    #[arg(long)]
    pub verify: bool,
}

/// `carrot migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database, as the schema's owner.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The role `carrot serve` connects as: granted the rights the service needs (rows,
    /// not schema) on every table, now and for what later migrations and rebuilds create.
    #[arg(long, env = "CARROT_APP_ROLE")]
    pub app_role: Option<String>,
}

/// `carrot quarantine`.
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// The subscriber (settlement, catalog, payments, mypage, timeline, notifications).
    pub subscriber: String,
    /// Ask its runners to apply its held events again (after deploying the code that reads
    /// them, or mending a damaged event); they do at their next batch.
    #[arg(long)]
    pub retry: bool,
}

/// `carrot events`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["request", "aggregate", "check"])))]
pub struct EventsArgs {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Every event of this trade (a purchase request id), whatever its aggregate.
    #[arg(long, value_name = "REQUEST_ID")]
    pub request: Option<uuid::Uuid>,
    /// Every event of one aggregate: `listing/<id>`, `purchase_request/<id>`, `payment/<id>`.
    #[arg(long, value_name = "TYPE/ID")]
    pub aggregate: Option<String>,
    /// JSON lines instead of text.
    #[arg(long)]
    pub json: bool,
    /// Read the whole log through the upcasters instead, and report per event type and
    /// stored version how many events read as today's (before and after an upgrade).
    #[arg(long, conflicts_with = "json")]
    pub check: bool,
}

/// `carrot saga ...`
#[derive(Debug, Subcommand)]
pub enum SagaCommand {
    /// List the saga commands that gave up (dead letters); or, as an admin, put one back in
    /// line or discard it with a reason (an event with the admin's id, in the trade's timeline).
    DeadLetters {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The payment gateway (the write side is built with it; deciding pays nothing).
        #[command(flatten)]
        payment: PaymentArgs,
        /// Put this dead letter back in line (its command id, as listed).
        #[arg(
            long,
            value_name = "COMMAND_ID",
            requires = "by",
            conflicts_with = "discard"
        )]
        retry: Option<String>,
        /// Discard this dead letter: it never runs (needs --reason).
        #[arg(long, value_name = "COMMAND_ID", requires_all = ["by", "reason"])]
        discard: Option<String>,
        /// Why (required to discard, optional to retry), 1 to 1,000 characters.
        #[arg(long)]
        reason: Option<String>,
        /// The operator's username (an admin): who the log records as deciding.
        #[arg(long)]
        by: Option<String>,
    },
    /// Recompute the saga's state from the log and list where the live saga differs (exit
    /// 1 if it does); with --apply, repair it: nothing already decided runs again.
    Recover {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The saga's deadlines (the same settings `carrot serve` uses).
        #[command(flatten)]
        saga: SagaArgs,
        /// Repair the live state (it pauses the saga for the last events and the repair).
        #[arg(long)]
        apply: bool,
    },
    /// Match the gateway's movements since a time with the log, repair what is safe to
    /// repair and list every mismatch (exit 1 if any).
    Reconcile {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The gateway (the same settings `carrot serve` uses).
        #[command(flatten)]
        payment: PaymentArgs,
        /// From when (RFC 3339, e.g. 2026-11-26T00:00:00Z).
        #[arg(long)]
        since: chrono::DateTime<chrono::Utc>,
    },
}

/// `carrot admin ...`
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Give a user the admin role (it takes effect at their next login).
    Grant {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The user's username.
        username: String,
    },
    /// Close a person's account for them (as `DELETE /me` does, without their password):
    /// refused while they are in a trade; recorded in the log as closed by the operator.
    Close {
        /// The database.
        #[command(flatten)]
        database: DatabaseArgs,
        /// The payment gateway (the write side is built with it; closing pays nothing).
        #[command(flatten)]
        payment: PaymentArgs,
        /// The operator's username (an admin): who the log records as closing it.
        #[arg(long)]
        by: String,
        /// The username of the account to close.
        username: String,
    },
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
    /// The most database connections this process opens (lazily). Keep it above the
    /// requests in flight at once: a request that waits for a connection costs sqlx's
    /// return-ping on every connection handed back (see `Db`). At least 2: a rebuild's batch
    /// may wait for a write aside, which needs a connection of its own.
    #[arg(long, env = "CARROT_DB_POOL_SIZE", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(2..))]
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
    /// What this process runs: the API and the workers, or one of them.
    #[arg(long, env = "CARROT_ROLE", value_enum, default_value_t = ServeRole::All)]
    pub role: ServeRole,
    /// Apply pending migrations at start (needs the schema owner's rights). Off: start only
    /// if none is missing (`carrot migrate` runs them as a step of its own). The embedded
    /// database always migrates.
    #[arg(long, env = "CARROT_MIGRATE")]
    pub migrate: bool,
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
    /// How old, at most, the subscriber lag and outbox depth that readiness and /metrics
    /// show may be, in milliseconds (they are read once per interval, not per probe).
    #[arg(long, env = "CARROT_PROGRESS_REFRESH_MS", default_value_t = 5000)]
    pub progress_refresh_ms: u64,
    /// How often a runner polls when no notification arrives, in milliseconds.
    #[arg(long, env = "CARROT_POLL_INTERVAL_MS", default_value_t = 500)]
    pub poll_interval_ms: u64,
    /// After SIGTERM or Ctrl-C, how long in-flight requests and batches may take to finish.
    #[arg(long, env = "CARROT_SHUTDOWN_TIMEOUT_SECONDS", default_value_t = 25)]
    pub shutdown_timeout_seconds: u64,
    /// The payment gateway.
    #[command(flatten)]
    pub payment: PaymentArgs,
    /// The gateway's circuit breaker.
    #[command(flatten)]
    pub breaker: BreakerArgs,
    /// The settlement saga.
    #[command(flatten)]
    pub saga: SagaArgs,
    /// Rate limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// A read replica (a streaming standby of DATABASE_URL's server, CloudNativePG's `-ro`
    /// service): the read endpoints read their views there while it keeps up. Unset: they
    /// read the primary.
    #[arg(long, env = "CARROT_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<String>,
    /// How far behind the primary, in milliseconds, the read replica may fall before reads
    /// go to the primary instead (until it is back within this).
    #[arg(long, env = "CARROT_READ_MAX_LAG_MS", default_value_t = 5000)]
    pub read_max_lag_ms: u64,
    /// Which requests get an access log line (target `carrot::access`, INFO): `errors`
    /// (5xx and those slower than a second), `all`, `off`, or a share such as `0.01`
    /// (that share of requests, and every error and slow one).
    #[arg(long, env = "CARROT_ACCESS_LOG", default_value = "errors")]
    pub access_log: crate::access_log::AccessLog,
}

/// Rate limits per user and per client address (429 `rate_limited` with Retry-After).
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Calls per second each authenticated user may make, sustained (0: no limit).
    #[arg(long, env = "CARROT_RATE_LIMIT_USER_PER_SECOND", default_value_t = 20.0,
          value_parser = parse_non_negative)]
    pub rate_limit_user_per_second: f64,
    /// Calls a user may make at once beyond the sustained rate.
    #[arg(long, env = "CARROT_RATE_LIMIT_USER_BURST", default_value_t = 40)]
    pub rate_limit_user_burst: u32,
    /// Calls per second from each client address, sustained (0: no limit).
    #[arg(long, env = "CARROT_RATE_LIMIT_ADDRESS_PER_SECOND", default_value_t = 100.0,
          value_parser = parse_non_negative)]
    pub rate_limit_address_per_second: f64,
    /// Calls an address may make at once beyond the sustained rate.
    #[arg(long, env = "CARROT_RATE_LIMIT_ADDRESS_BURST", default_value_t = 200)]
    pub rate_limit_address_burst: u32,
    /// The client's address is the last `X-Forwarded-For` entry (only behind a proxy that
    /// appends it; otherwise any client could pick its own address).
    #[arg(long, env = "CARROT_TRUST_FORWARDED_FOR", default_value_t = false)]
    pub trust_forwarded_for: bool,
}

impl LimitArgs {
    /// The limits.
    pub fn config(&self) -> LimitConfig {
        LimitConfig {
            per_user: Rate::new(self.rate_limit_user_per_second, self.rate_limit_user_burst),
            per_address: Rate::new(
                self.rate_limit_address_per_second,
                self.rate_limit_address_burst,
            ),
            trust_forwarded_for: self.trust_forwarded_for,
        }
    }
}

fn parse_non_negative(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "{raw:?} is not a number of calls per second (0 or more)"
        )),
    }
}

/// The settlement saga: deadlines and retries.
#[derive(Debug, Clone, Args)]
pub struct SagaArgs {
    /// A request nobody answers expires after this many seconds (default 48 h).
    #[arg(long, env = "CARROT_REQUEST_TTL_SECONDS", default_value_t = 48 * 3600,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub request_ttl_seconds: i64,
    /// An accepted request nobody completes is completed after this many seconds (7 days).
    #[arg(long, env = "CARROT_COMPLETION_TTL_SECONDS", default_value_t = 7 * 24 * 3600,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub completion_ttl_seconds: i64,
    /// How long a saga command (a refund, a payout) may keep failing before it is reported
    /// (error log lines, `carrot_saga_commands_stuck`, readiness); it is retried all along.
    #[arg(long, env = "CARROT_SAGA_ALERT_AFTER_SECONDS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub saga_alert_after_seconds: u64,
    /// The first retry delay of a failing saga command (ms); it doubles, up to a minute.
    #[arg(long, env = "CARROT_SAGA_RETRY_BASE_MS", default_value_t = 500)]
    pub saga_retry_base_ms: u64,
    /// How long a dispatcher holds a saga command it runs; a command whose dispatcher died
    /// runs again after this (ms). Longer than any one command takes.
    #[arg(long, env = "CARROT_SAGA_LEASE_MS", default_value_t = 30_000,
          value_parser = clap::value_parser!(u64).range(500..=3_600_000))]
    pub saga_lease_ms: u64,
}

impl SagaArgs {
    /// The saga's deadlines, with the crash-repair delays at their defaults.
    pub fn saga(&self) -> SagaConfig {
        SagaConfig {
            deadlines: Deadlines {
                request_ttl: chrono::Duration::seconds(self.request_ttl_seconds),
                completion_ttl: chrono::Duration::seconds(self.completion_ttl_seconds),
            },
            ..SagaConfig::default()
        }
    }

    /// The dispatcher's retries.
    pub fn dispatcher(&self) -> DispatcherConfig {
        DispatcherConfig {
            alert_after: Duration::from_secs(self.saga_alert_after_seconds),
            retry_base: Duration::from_millis(self.saga_retry_base_ms),
            lease: Duration::from_millis(self.saga_lease_ms),
            ..DispatcherConfig::default()
        }
    }
}
