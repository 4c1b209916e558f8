//! The load scenarios, one module each, and [`run`], which runs one by name.

pub mod hot;
pub mod long;
pub mod pairs;
pub mod simple;
pub mod trade;

use serde_json::json;

use crate::client::Carrot;
use crate::driver::Load;
use crate::stats::{Recorder, Summary};
use simple::Reads;

/// Every scenario's name.
pub const NAMES: &str = "register, request, read, read-by-id, hot, long, trade, seeds";

/// What some scenarios need beyond the load.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// Measure lags on every `sample`-th trade of a worker (0: never).
    pub sample: u64,
    /// The database, for `long` (it seeds history straight into the store).
    pub database_url: Option<String>,
    /// The payment simulator, for `seeds` (it slows the gateway to 400-620 ms a call).
    pub payment_sim: Option<String>,
}

/// What one run of a scenario measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Iterations done (trades, requests, edits: the scenario's unit).
    pub iterations: u64,
    /// Seconds they took.
    pub seconds: f64,
    /// Latencies and statuses of every operation.
    pub operations: Vec<Summary>,
}

impl Measured {
    /// Iterations per second.
    pub fn rate(&self) -> f64 {
        self.iterations as f64 / self.seconds.max(1e-9)
    }

    /// One operation's summary.
    pub fn operation(&self, name: &str) -> Option<&Summary> {
        self.operations.iter().find(|o| o.name == name)
    }
}

/// Runs `scenario` against the service at `url`.
pub async fn run(scenario: &str, url: &str, load: Load, extra: &Extra) -> Result<Measured, String> {
    let recorder = Recorder::default();
    let carrot =
        Carrot::new(url, recorder.clone(), load.concurrency * 2).map_err(|e| e.to_string())?;
    let (iterations, seconds) = match scenario {
        "register" => simple::register(&carrot, load).await,
        "request" => simple::request(&carrot, load).await,
        "read" => simple::read(&carrot, load, Reads::ListingAndMyPage).await,
        "read-by-id" => simple::read(&carrot, load, Reads::ListingById).await,
        "trade" => trade::run(&carrot, load, extra.sample).await,
        "hot" => hot::run(&carrot, 100, load.duration).await,
        "long" => {
            let url = extra
                .database_url
                .as_deref()
                .ok_or("long needs --database-url")?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .map_err(|e| e.to_string())?;
            let done = long::run(&carrot, &pool, 10_000, 300).await;
            pool.close().await;
            done.map_err(|e| e.to_string())?
        }
        "seeds" => {
            let sim = extra
                .payment_sim
                .as_deref()
                .ok_or("seeds needs --payment-sim")?;
            faults(sim, "400-620").await?;
            let done = simple::request(&carrot, load).await;
            faults(sim, "0").await?;
            done
        }
        other => return Err(format!("no scenario {other:?}; the scenarios are {NAMES}")),
    };
    Ok(Measured {
        iterations,
        seconds,
        operations: recorder.summaries(),
    })
}

/// Sets the payment simulator's latency (and nothing else failing).
async fn faults(sim: &str, latency_ms: &str) -> Result<(), String> {
    let body =
        json!({"latency_ms": latency_ms, "failure_rate": 0.0, "decline_rate": 0.0, "down": false});
    let response = reqwest::Client::new()
        .put(format!("{}/faults", sim.trim_end_matches('/')))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the payment simulator refused the faults: {}",
            response.status()
        ))
    }
}
