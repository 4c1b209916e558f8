//! `carrot admin grant USERNAME` and `carrot admin close --by OPERATOR USERNAME`.

use std::sync::Arc;

use carrot_domain::payment::PaymentGateway;
use carrot_domain::{SystemClock, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::write_side::WriteSide;
use uuid::Uuid;

use super::OpsError;
use crate::auth::closing::{self, CloseError};

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

/// The admin named `username`, who an operator's command is recorded as.
pub async fn admin_named(pool: &Db, username: &str) -> Result<UserId, OpsError> {
    let operator: Option<Uuid> =
        sqlx::query_scalar("SELECT user_id FROM users WHERE username = $1 AND role = 'admin'")
            .bind(username)
            .fetch_optional(pool)
            .await?;
    operator
        .map(UserId::from_uuid)
        .ok_or_else(|| OpsError::NotFound(format!("no admin {username:?}")))
}

/// Closes `username`'s account for them, recorded as done by the admin `by`.
pub async fn close(
    pool: &Db,
    gateway: Arc<dyn PaymentGateway>,
    by: &str,
    username: &str,
) -> Result<(), OpsError> {
    let operator = admin_named(pool, by).await?.as_uuid();
    let user: Option<Uuid> = sqlx::query_scalar("SELECT user_id FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await?;
    let user = user.ok_or_else(|| OpsError::NotFound(format!("no open account {username:?}")))?;
    let write = WriteSide::new(pool.clone(), Arc::new(SystemClock), gateway);
    match closing::close(pool, &write, user, operator).await {
        Ok(revoked) => {
            println!(
                "closed {user}: {} session(s) ended, personal data erased",
                revoked.len()
            );
            Ok(())
        }
        Err(CloseError::OpenTrades(trades)) => {
            for trade in &trades {
                println!(
                    "open: request {} ({}, {}, payment {})",
                    trade.request_id, trade.role, trade.status, trade.payment_status
                );
            }
            Err(OpsError::Failed(format!(
                "{username} is still in {} trade(s); close the account once they are settled",
                trades.len()
            )))
        }
        Err(e) => Err(OpsError::Failed(e.to_string())),
    }
}
