//! `carrot-bench`: load scenarios against a running Carrot, a generator of realistic event
//! logs for rebuild benchmarks, and `report`, which measures everything in one run.
#![forbid(unsafe_code)]

mod client;
mod cpu;
mod driver;
mod report;
mod scenarios;
mod seed;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::driver::Load;
use crate::scenarios::Extra;

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
    /// Run a load scenario against a running service; prints its figures as JSON.
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
        /// Also report the CPU time this process (and its children: give a postmaster's pid
        /// for PostgreSQL) spent during the run, in all and per iteration. Repeatable.
        #[arg(long = "cpu-of", value_name = "PID")]
        cpu_of: Vec<u32>,
    },
    /// Measure PostgreSQL's ceiling (pgbench) and every Carrot scenario in one run, on a
    /// fresh embedded cluster, and write the figures and ratios to a Markdown file.
    /// Needs the `carrot` binary beside this one (`cargo build --release --workspace`).
    Report(report::Options),
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
            cpu_of,
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
            run(&scenario, &url, load, &extra, &cpu_of).await
        }
        Command::Report(options) => match report::run(&options).await {
            Ok(written) => {
                println!("wrote {}", written.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("carrot-bench report: {e}");
                ExitCode::FAILURE
            }
        },
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

async fn run(scenario: &str, url: &str, load: Load, extra: &Extra, cpu_of: &[u32]) -> ExitCode {
    let before: Vec<Option<f64>> = cpu_of.iter().map(|&p| cpu::seconds_of_tree(p)).collect();
    match scenarios::run(scenario, url, load, extra).await {
        Ok(measured) => {
            let cpu: serde_json::Map<String, serde_json::Value> = cpu_of
                .iter()
                .zip(before)
                .filter_map(|(&pid, before)| {
                    let spent = cpu::seconds_of_tree(pid)? - before?;
                    let per = spent * 1e6 / measured.iterations.max(1) as f64;
                    Some((
                        pid.to_string(),
                        json!({"cpu_seconds": spent, "cpu_us_per_iteration": per}),
                    ))
                })
                .collect();
            println!(
                "{}",
                json!({
                    "scenario": scenario,
                    "concurrency": load.concurrency,
                    "rate": load.rate,
                    "seconds": measured.seconds,
                    "iterations": measured.iterations,
                    "iterations_per_second": measured.rate(),
                    "operations": measured.operations,
                    "cpu": cpu,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("carrot-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
