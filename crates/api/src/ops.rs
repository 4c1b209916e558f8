//! Operator commands of the CLI: the saga's dead letters, granting the admin role. Each
//! prints for a person and returns what went wrong, if anything.

use carrot_projections::settlement::outbox;
use sqlx::PgPool;

/// Why an operator command failed.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
}

/// Prints the dead letters, or retries one.
pub async fn dead_letters(pool: &PgPool, retry: Option<&str>) -> Result<(), OpsError> {
    if let Some(id) = retry {
        if !outbox::revive(pool, id).await? {
            return Err(OpsError::NotFound(format!("no dead letter {id:?}")));
        }
        println!("{id}: back in line; a dispatcher will run it shortly");
        return Ok(());
    }
    let letters = outbox::dead_letters(pool, 1000, None).await?;
    if letters.is_empty() {
        println!("no dead letters");
    }
    for letter in letters {
        println!(
            "{}  request {}  {} attempts  {}\n    {}",
            letter.command_id,
            letter.request_id,
            letter.attempts,
            letter.updated_at.to_rfc3339(),
            letter.last_error.as_deref().unwrap_or("-"),
        );
    }
    Ok(())
}

/// Gives `username` the admin role.
pub async fn grant_admin(pool: &PgPool, username: &str) -> Result<(), OpsError> {
    let granted = sqlx::query("UPDATE users SET role = 'admin' WHERE username = $1")
        .bind(username)
        .execute(pool)
        .await?;
    if granted.rows_affected() == 0 {
        return Err(OpsError::NotFound(format!("no user {username:?}")));
    }
    println!("{username} is an admin from their next login");
    Ok(())
}
