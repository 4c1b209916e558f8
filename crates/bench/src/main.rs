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
        /// `trade`.
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
        } => {
            let load = Load {
                concurrency,
                duration: Duration::from_secs(seconds),
                rate,
            };
            run(&scenario, &url, load, sample).await
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

async fn run(scenario: &str, url: &str, load: Load, sample: u64) -> ExitCode {
    let recorder = Recorder::default();
    let carrot = match Carrot::new(url, recorder.clone(), load.concurrency * 2) {
        Ok(carrot) => carrot,
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (iterations, seconds) = match scenario {
        "trade" => scenarios::trade::run(&carrot, load, sample).await,
        other => {
            eprintln!("carrot-bench: no scenario {other:?}; the scenarios are: trade");
            return ExitCode::FAILURE;
        }
    };
    let summaries = recorder.summaries();
    println!(
        "{}",
        json!({
            "scenario": scenario,
            "concurrency": load.concurrency,
            "rate": load.rate,
            "seconds": seconds,
            "iterations": iterations,
            "iterations_per_second": iterations as f64 / seconds.max(1e-9),
            "operations": summaries,
        })
    );
    ExitCode::SUCCESS
}
