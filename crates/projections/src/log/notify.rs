//! Waking subscribers after appends, cheaply: a commit only signals this process's
//! notifier, which sends one `NOTIFY carrot_events` for all the appends of the last couple of
//! milliseconds (and always one after the last). A NOTIFY per append costs PostgreSQL and
//! every listener dearly; runners gather a few milliseconds of events per batch anyway.
//!
//! Every runner, in this process or another, listens on its own connection (a process hears
//! its own notifications too). Anything appending without the store (a bulk load) is found
//! by the runners' polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::postgres::Db;

/// The channel runners listen on.
pub const CHANNEL: &str = "carrot_events";

/// How long appends gather before their notification goes out.
const GATHER: Duration = Duration::from_millis(2);

/// Signals appends; a background task turns them into coalesced notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    appended: Arc<Notify>,
}

impl Notifier {
    /// A notifier sending on `pool`; its task ends when the pool closes.
    pub fn start(pool: &Db) -> Notifier {
        let appended = Arc::new(Notify::new());
        let signal = appended.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            while !pool.is_closed() {
                signal.notified().await;
                tokio::time::sleep(GATHER).await;
                if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&pool)
                    .await
                {
                    // Runners still poll: this costs latency, never an event.
                    tracing::debug!(error = %e, "could not notify subscribers");
                }
            }
        });
        Notifier { appended }
    }

    /// A notifier that tells nobody (runners poll): for stores outside a running service.
    pub fn silent() -> Notifier {
        Notifier {
            appended: Arc::new(Notify::new()),
        }
    }

    /// Something was appended and committed.
    pub fn appended(&self) {
        self.appended.notify_one();
    }
}
