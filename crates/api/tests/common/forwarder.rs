//! A TCP forwarder standing in for the Service in front of a PostgreSQL primary
//! (CloudNativePG's `-rw`): clients connect to it, and it connects each to the current
//! target. Moving the target (the primary failed over) also cuts every connection made
//! through it before, as the old primary's connections die with it.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running forwarder; it stops when dropped.
pub struct Forwarder {
    /// The port clients connect to.
    pub port: u16,
    target: Arc<AtomicU16>,
    moved: watch::Sender<u64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    /// Forwards a free loopback port to `127.0.0.1:target`.
    pub async fn start(target: u16) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(target));
        let (moved, _) = watch::channel(0u64);
        let (to, on_move) = (target.clone(), moved.subscribe());
        let accepting = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (to, mut on_move) = (to.load(Ordering::SeqCst), on_move.clone());
                on_move.mark_unchanged();
                tokio::spawn(async move {
                    // A target that refuses (a dead primary) closes the client at once.
                    let Ok(mut server) = TcpStream::connect(("127.0.0.1", to)).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = on_move.changed() => {}
                    }
                });
            }
        });
        Forwarder {
            port,
            target,
            moved,
            accepting,
        }
    }

    /// Sends new connections to `127.0.0.1:target`, and cuts the ones open now.
    pub fn switch(&self, target: u16) {
        self.target.store(target, Ordering::SeqCst);
        self.moved.send_modify(|n| *n += 1);
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.accepting.abort();
        self.moved.send_modify(|n| *n += 1);
    }
}
