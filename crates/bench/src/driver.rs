//! Runs a scenario: `concurrency` workers, each repeating the scenario's iteration until the
//! duration is up, optionally paced to a total rate of iterations per second.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Workers running at once.
    pub concurrency: usize,
    /// How long to run.
    pub duration: Duration,
    /// Iterations per second in all, or as many as the workers manage.
    pub rate: Option<f64>,
}

/// Spreads iteration starts evenly over time, across workers.
#[derive(Debug)]
struct Pacer {
    started: Instant,
    every: Duration,
    issued: AtomicU64,
}

impl Pacer {
    async fn wait(&self) {
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        let due = self.started + self.every.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Runs `iteration(worker, n)` per worker until the time is up; returns the iterations done
/// and the time taken. Each worker's state is made once by `prepare`.
pub async fn run<S, P, PF, I, IF>(load: Load, prepare: P, iteration: I) -> (u64, Duration)
where
    S: Send + 'static,
    P: Fn(usize) -> PF,
    PF: Future<Output = S>,
    I: Fn(Arc<tokio::sync::Mutex<S>>) -> IF + Clone + Send + Sync + 'static,
    IF: Future<Output = ()> + Send,
{
    let states: Vec<S> = join_all((0..load.concurrency).map(&prepare)).await;
    let pacer = load.rate.map(|rate| {
        Arc::new(Pacer {
            started: Instant::now(),
            every: Duration::from_secs_f64(1.0 / rate.max(1e-3)),
            issued: AtomicU64::new(0),
        })
    });
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + load.duration;
    let workers = states.into_iter().map(|state| {
        let (iteration, pacer, done) = (iteration.clone(), pacer.clone(), done.clone());
        let state = Arc::new(tokio::sync::Mutex::new(state));
        tokio::spawn(async move {
            while Instant::now() < end {
                if let Some(pacer) = &pacer {
                    pacer.wait().await;
                }
                iteration(state.clone()).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    });
    for worker in join_all(workers).await {
        let _ = worker;
    }
    (done.load(Ordering::Relaxed), started.elapsed())
}
