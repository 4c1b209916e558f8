//! Clients running full trades against a service until stopped: the steady load the fault
//! and failover tests put a service under.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use super::http;
use super::trades::{trade, Trade};

/// Clients running trades until stopped, each as a seller and buyer of its own; a client
/// that finds the service down waits for it instead of spinning.
pub struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<tokio::task::JoinHandle<Vec<Trade>>>,
}

impl Load {
    pub fn start(client: &reqwest::Client, base: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let clients = (0..clients)
            .map(|c| {
                let (client, base, stop) = (client.clone(), base.to_owned(), stop.clone());
                tokio::spawn(async move {
                    let seller = http::signup(&client, &base).await;
                    let buyer = http::signup(&client, &base).await;
                    let mut done = Vec::new();
                    let mut n = c;
                    while !stop.load(Ordering::Relaxed) {
                        let t = trade(&client, &base, &seller, &buyer, n).await;
                        if t.acked.is_empty() {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        } else {
                            done.push(t);
                        }
                        n += clients;
                    }
                    done
                })
            })
            .collect();
        Load { stop, clients }
    }

    /// Stops the clients; every trade they got at least one answer for.
    pub async fn finish(self) -> Vec<Trade> {
        self.stop.store(true, Ordering::Relaxed);
        join_all(self.clients)
            .await
            .into_iter()
            .flat_map(|c| c.unwrap())
            .collect()
    }
}
