//! What a subscriber's rebuild may write on connections of its own
//! ([`Filling`](crate::log::subscriber::Filling)): the
//! shadow it fills, and writes run aside, one at a time, while the fill applies the next
//! batches.

use std::future::Future;

use sqlx::PgConnection;
use tokio::task::JoinHandle;

use crate::log::subscriber::ApplyError;
use crate::postgres::{quote_ident, Db, Tx};

/// The shadow a fill writes.
#[derive(Debug, Clone)]
pub struct Shadow {
    pool: Db,
    schema: String,
}

impl Shadow {
    pub(super) fn new(pool: &Db, schema: &str) -> Self {
        Shadow {
            pool: pool.clone(),
            schema: schema.to_owned(),
        }
    }

    /// A transaction whose unqualified table names are the shadow's. A shadow lost in a
    /// crash is dropped and filled again by the next attempt, so its writes need not wait
    /// for the disk; the swap's transaction does.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT set_config('synchronous_commit', 'off', true)")
            .execute(&mut *tx)
            .await?;
        search_shadow(&mut tx, &self.schema).await?;
        Ok(tx)
    }
}

/// Points the transaction's unqualified table names at the shadow.
pub(super) async fn search_shadow(tx: &mut PgConnection, shadow: &str) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(format!("{}, public", quote_ident(shadow)))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Writes to a shadow that run aside, each in a transaction of its own, one at a time: a
/// write starts once the one before has committed, so they reach the shadow in the order
/// they were started. A fill's batches run meanwhile; whatever reads what a write writes
/// waits for it first ([`Aside::written`]). Dropped with a write under way (its fill
/// cancelled), it aborts the write, which then issues no further statement.
pub struct Aside {
    shadow: Shadow,
    writing: Option<JoinHandle<Result<(), ApplyError>>>,
}

impl Aside {
    /// Writes aside to `shadow`.
    pub fn new(shadow: &Shadow) -> Self {
        Aside {
            shadow: shadow.clone(),
            writing: None,
        }
    }

    /// Waits for the write under way, then starts `write` on a transaction of the shadow,
    /// committed once it returns it.
    pub async fn start<W, F>(&mut self, write: W) -> Result<(), ApplyError>
    where
        W: FnOnce(Tx) -> F + Send + 'static,
        F: Future<Output = Result<Tx, ApplyError>> + Send + 'static,
    {
        self.written().await?;
        let shadow = self.shadow.clone();
        self.writing = Some(tokio::spawn(async move {
            let tx = shadow.begin().await?;
            write(tx).await?.commit().await?;
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the write under way, if any, to commit.
    pub async fn written(&mut self) -> Result<(), ApplyError> {
        match self.writing.take() {
            Some(writing) => writing.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        if let Some(writing) = &self.writing {
            writing.abort();
        }
    }
}
