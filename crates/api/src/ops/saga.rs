//! `carrot saga dead-letters [--retry ID]`.

use carrot_projections::postgres::Db;
use carrot_projections::settlement::outbox;

use super::OpsError;

/// Prints the dead letters, or retries one.
pub async fn dead_letters(pool: &Db, retry: Option<&str>) -> Result<(), OpsError> {
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
