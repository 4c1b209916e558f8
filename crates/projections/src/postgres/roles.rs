//! Two database roles: the schema's owner (migrations, rebuilds, the saga's recovery, the
//! order's re-basing) and the role the service runs as, which reads and writes rows and
//! nothing else (`carrot migrate` with `CARROT_APP_ROLE` grants it that).
//!
//! The service's role gets, on the public schema and every subscriber's schema: usage,
//! the four row rights on every table (but only reading and appending on the event log, and
//! only reading on the migrations' and moves' records), and the use of every sequence. Default privileges
//! give it the same on what the owner creates later: a new migration's tables, and the
//! schemas and tables a rebuild swaps in. It cannot create, alter or drop anything, so a
//! serving process can never change the schema, by mistake or by attack.

use super::{quote_ident, Db};

/// Why the grants could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The role does not exist.
    #[error("there is no role {0:?}; create it first (CREATE ROLE ... LOGIN PASSWORD ...)")]
    NoRole(String),
    /// A grant failed.
    #[error("granting the service's rights: {0}")]
    Database(#[from] sqlx::Error),
}

/// Grants `role` what the service needs on every schema Carrot has (`schemas`: the
/// subscribers' names; `public` is added), now and for what this owner creates later.
pub async fn grant_service_rights(db: &Db, role: &str, schemas: &[&str]) -> Result<(), GrantError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(role)
            .fetch_one(db)
            .await?;
    if !exists {
        return Err(GrantError::NoRole(role.to_owned()));
    }
    let role = quote_ident(role);
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname",
    )
    .bind(
        std::iter::once("public")
            .chain(schemas.iter().copied())
            .collect::<Vec<_>>(),
    )
    .fetch_all(db)
    .await?;
    let mut tx = db.begin().await?;
    for schema in &present {
        let schema = quote_ident(schema);
        for statement in [
            format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
        ] {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
    }
    // The log is append-only, and the migrations' and moves' records are the owner's to
    // write: the service may add events, never change or remove one.
    for statement in [
        format!("REVOKE UPDATE, DELETE, TRUNCATE ON public.events FROM {role}"),
        format!(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public._sqlx_migrations, \
             public.log_moves FROM {role}"
        ),
        format!(
            "ALTER DEFAULT PRIVILEGES GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
        ),
        format!("ALTER DEFAULT PRIVILEGES GRANT USAGE, SELECT ON SEQUENCES TO {role}"),
        format!("ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO {role}"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}
