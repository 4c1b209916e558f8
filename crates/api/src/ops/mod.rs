//! The operator commands of the CLI, one module each: rebuilding views, reading the log,
//! the saga's dead letters, quarantined events, granting the admin role. Each prints for a
//! person (or, asked, for a machine) and returns what went wrong, if anything.

pub mod accounts;
pub mod events;
pub mod quarantine;
pub mod replay;
pub mod saga;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A rebuild failed.
    #[error("{0}")]
    Replay(#[from] carrot_projections::replay::ReplayError),
    /// Verifying found rebuilt views that differ from the live ones.
    #[error("{0} difference(s) between the live views and a rebuild")]
    Differences(usize),
    /// A reconciliation pass could not finish, or found mismatches.
    #[error("{0}")]
    Failed(String),
    /// Writing the output failed.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}
