//! `carrot admin grant USERNAME`.

use super::OpsError;
use carrot_projections::postgres::Db;

/// Gives `username` the admin role.
pub async fn grant_admin(pool: &Db, username: &str) -> Result<(), OpsError> {
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
