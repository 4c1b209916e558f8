//! Live notifications: one `LISTEN carrot_notifications` connection per process, fanned
//! out to every open stream. The notifications projection notifies with the id of each
//! user it wrote to, so only that user's streams look for new rows. A stream also looks
//! every few seconds, so a lost notification (a reconnect) costs latency, never a message.

use std::time::Duration;

use carrot_projections::postgres::Db;
use carrot_projections::views::notifications::CHANNEL;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use uuid::Uuid;

/// A wake-up for one user, or for everyone (after a reconnect, when some may be lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// New notifications for this user.
    User(Uuid),
    /// Anything may have been missed: everyone looks.
    Everyone,
}

/// Fans notifications out to the streams of this process.
#[derive(Debug, Clone)]
pub struct NotificationHub {
    sender: broadcast::Sender<Wake>,
}

impl NotificationHub {
    /// Listens on its own connection until the pool closes.
    pub fn start(pool: &Db) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let hub = NotificationHub { sender };
        let relay = hub.sender.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !pool.is_closed() {
                let mut listener = match PgListener::connect_with(pool.pool()).await {
                    Ok(mut listener) => match listener.listen(CHANNEL).await {
                        Ok(()) => listener,
                        Err(e) => {
                            tracing::warn!(error = %e, "LISTEN for notifications failed");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    },
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "no connection for live notifications; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                let _ = relay.send(Wake::Everyone);
                loop {
                    match listener.try_recv().await {
                        Ok(Some(note)) => {
                            if let Ok(user) = Uuid::try_parse(note.payload()) {
                                let _ = relay.send(Wake::User(user));
                            }
                        }
                        // The connection dropped and is re-established by the next call.
                        Ok(None) => {
                            let _ = relay.send(Wake::Everyone);
                        }
                        Err(_) => break,
                    }
                }
            }
        });
        hub
    }

    /// A receiver of every wake-up from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.sender.subscribe()
    }
}
