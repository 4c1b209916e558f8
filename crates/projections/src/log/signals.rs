//! What wakes a long-running task and what stops it: [`Wakeups`] from `NOTIFY` (appends to
//! the log, outbox inserts), with polling as the fallback, and the [`Shutdown`] signal
//! shared by every worker task.

use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::watch;

use crate::postgres::Db;

/// Wake-ups from `NOTIFY carrot_events`: a counter that moves on every notification.
#[derive(Debug, Clone)]
pub struct Wakeups(watch::Receiver<u64>);

impl Wakeups {
    /// Listens for appends on a connection of its own; reconnects on loss. The task ends
    /// when every `Wakeups` clone is dropped.
    pub fn listen(pool: &Db) -> Wakeups {
        Self::listen_on(pool, crate::log::notify::CHANNEL)
    }

    /// Listens for `NOTIFY channel` (as [`Wakeups::listen`] does for appends).
    pub fn listen_on(pool: &Db, channel: &'static str) -> Wakeups {
        let (tx, rx) = watch::channel(0u64);
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while !tx.is_closed() && !pool.is_closed() {
                let listener = async {
                    let mut listener = PgListener::connect_with(pool.pool()).await?;
                    listener.listen(channel).await?;
                    Ok::<_, sqlx::Error>(listener)
                };
                let mut listener = match listener.await {
                    Ok(listener) => listener,
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, channel, "LISTEN failed; polling only until it works");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                };
                backoff = Duration::from_millis(100);
                // A wake-up right after (re)connecting covers anything missed meanwhile.
                tx.send_modify(|n| *n += 1);
                loop {
                    tokio::select! {
                        received = listener.try_recv() => match received {
                            // `None`: the connection was lost and is re-established by the
                            // next call; wake anyway, a notification may have been missed.
                            Ok(_) => tx.send_modify(|n| *n += 1),
                            Err(_) if pool.is_closed() => return,
                            Err(e) => {
                                tracing::warn!(error = %e, "lost LISTEN connection");
                                break;
                            }
                        },
                        () = tx.closed() => return,
                    }
                }
            }
        });
        Wakeups(rx)
    }

    /// Wake-ups that never fire (polling only).
    pub fn none() -> Wakeups {
        // The sender is dropped at once: `next` then never resolves.
        let (_, rx) = watch::channel(0u64);
        Wakeups(rx)
    }

    pub(crate) async fn next(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// A stop signal shared by every long-running task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side of [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

impl Shutdown {
    /// A new signal and the trigger that fires it.
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger(tx), Shutdown(rx))
    }

    /// Whether the stop was asked for.
    pub fn is_triggered(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is asked for (or the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

impl ShutdownTrigger {
    /// Asks every holder of the signal to stop.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}
