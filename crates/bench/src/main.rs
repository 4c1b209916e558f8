//! `carrot-bench`: load scenarios against a running Carrot, and a generator of realistic
//! event logs for rebuild benchmarks.
#![forbid(unsafe_code)]

mod client;
mod driver;
mod scenarios;
mod seed;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::client::Carrot;
use crate::driver::Load;
use crate::scenarios::simple::Reads;
use crate::stats::Recorder;

/// Carrot's load generator and benchmark harness.
#[derive(Debug, Parser)]
#[command(name = "carrot-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Append a realistic event log of about EVENTS events straight to the store
    /// (DATABASE_URL), for `carrot replay` benchmarks.
    Seed {
        /// How many events (whole trades, about six events each).
        #[arg(long, default_value_t = 200_000)]
        events: usize,
        /// The database.
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Run a load scenario against a running service.
    Run {
        /// register, request, read, read-by-id, hot, long, trade, seeds.
        scenario: String,
        /// The service.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Workers at once.
        #[arg(long, default_value_t = 10)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Iterations per second in all (default: as fast as the workers go).
        #[arg(long)]
        rate: Option<f64>,
        /// Measure view and settlement lag on every SAMPLE-th iteration of a worker (0: never).
        #[arg(long, default_value_t = 1)]
        sample: u64,
        /// The database, for scenarios that seed history straight into it (`long`).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// The payment simulator, for `seeds` (it slows the gateway to 400-620 ms a call).
        #[arg(long)]
        payment_sim: Option<String>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Seed {
            events,
            database_url,
        } => seed(events, &database_url).await,
        Command::Run {
            scenario,
            url,
            concurrency,
            seconds,
            rate,
            sample,
            database_url,
            payment_sim,
        } => {
            let load = Load {
                concurrency,
                duration: Duration::from_secs(seconds),
                rate,
            };
            let extra = Extra {
                sample,
                database_url,
                payment_sim,
            };
            run(&scenario, &url, load, &extra).await
        }
    }
}

async fn seed(events: usize, url: &str) -> ExitCode {
    let pool = match sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = std::time::Instant::now();
    let written = seed::seed(&pool, events, &mut |n| eprint!("\rseeded {n} events")).await;
    eprintln!();
    match written {
        Ok(n) => {
            println!(
                "seeded {n} events in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What some scenarios need beyond the load.
struct Extra {
    sample: u64,
    database_url: Option<String>,
    payment_sim: Option<String>,
}

async fn run(scenario: &str, url: &str, load: Load, extra: &Extra) -> ExitCode {
    let recorder = Recorder::default();
    let carrot = match Carrot::new(url, recorder.clone(), load.concurrency * 2) {
        Ok(carrot) => carrot,
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = scenario_run(scenario, &carrot, load, extra).await;
    let (iterations, seconds) = match outcome {
        Ok(done) => done,
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "{}",
        json!({
            "scenario": scenario,
            "concurrency": load.concurrency,
            "rate": load.rate,
            "seconds": seconds,
            "iterations": iterations,
            "iterations_per_second": iterations as f64 / seconds.max(1e-9),
            "operations": recorder.summaries(),
        })
    );
    ExitCode::SUCCESS
}

/// Runs one scenario; (iterations, seconds).
async fn scenario_run(
    scenario: &str,
    carrot: &Carrot,
    load: Load,
    extra: &Extra,
) -> Result<(u64, f64), String> {
    match scenario {
        "register" => Ok(scenarios::simple::register(carrot, load).await),
        "request" => Ok(scenarios::simple::request(carrot, load).await),
        "read" => Ok(scenarios::simple::read(carrot, load, Reads::ListingAndMyPage).await),
        "read-by-id" => Ok(scenarios::simple::read(carrot, load, Reads::ListingById).await),
        "trade" => Ok(scenarios::trade::run(carrot, load, extra.sample).await),
        "hot" => Ok(scenarios::hot::run(carrot, 100, load.duration).await),
        "long" => {
            let url = extra.database_url.as_deref().ok_or("long needs --database-url")?;
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .connect(url)
                .await
                .map_err(|e| e.to_string())?;
            scenarios::long::run(carrot, &pool, 10_000, 300)
                .await
                .map_err(|e| e.to_string())
        }
        "seeds" => {
            let sim = extra.payment_sim.as_deref().ok_or("seeds needs --payment-sim")?;
            faults(sim, "400-620").await?;
            let done = scenarios::simple::request(carrot, load).await;
            faults(sim, "0").await?;
            Ok(done)
        }
        other => Err(format!(
            "no scenario {other:?}; the scenarios are register, request, read, read-by-id, hot, long, trade, seeds"
        )),
    }
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
