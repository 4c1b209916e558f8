//! `carrot-bench report`: one run that measures PostgreSQL's ceiling and every Carrot
//! scenario on the same fresh cluster, then the growth curves (search, MyPage, a command, a
//! read and replay at growing sizes), and writes the figures, their conditions and the
//! target ratios as Markdown.
//!
//! The order is fixed so that runs compare: pgbench first (on an idle machine), then the
//! service's scenarios, then the growth curves on databases of their own.

mod growth;
mod machine;
mod markdown;
mod pgbench;
mod replay;
mod service;
mod targets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use carrot_projections::postgres::embedded::{Binaries, ClusterOptions, EmbeddedPostgres};
use carrot_projections::postgres::ensure_database;

use crate::driver::Load;
use crate::scenarios::{self, Extra, Measured};
pub use pgbench::Workload;
use service::Service;

/// `carrot-bench report`'s options.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Where the Markdown goes.
    #[arg(long, default_value = "docs/BENCHMARKS.md")]
    pub out: PathBuf,
    /// Seconds per pgbench workload and per scenario (the seeds' test always runs 60 s and
    /// the half-rate trade run half as long again).
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Catalog sizes (available listings) search is measured at.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000,1000000")]
    pub catalog_sizes: Vec<u64>,
    /// Seller histories (sales) MyPage is measured at.
    #[arg(long, value_delimiter = ',', default_value = "10,1000,100000")]
    pub sales_sizes: Vec<u64>,
    /// Log sizes (events) a command, a read and replay are measured at; the largest is the
    /// replay section's.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,10000000")]
    pub log_sizes: Vec<u64>,
    /// Seconds per point of a growth curve.
    #[arg(long, default_value_t = 5)]
    pub growth_seconds: u64,
    /// Measure the growth curves only (no pgbench, no scenarios): their targets are judged,
    /// the others say "not run".
    #[arg(long)]
    pub growth_only: bool,
    /// A scratch directory (wiped first) for the cluster and the service's logs.
    #[arg(long, default_value = "/tmp/carrot-bench-report")]
    pub work_dir: PathBuf,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The embedded cluster failed.
    #[error(transparent)]
    Embedded(#[from] carrot_projections::postgres::embedded::EmbeddedError),
    /// A database call failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A file or process failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// pgbench gave no figure.
    #[error("pgbench {workload} gave no tps:\n{output}")]
    Pgbench {
        /// The workload.
        workload: &'static str,
        /// What it printed.
        output: String,
    },
    /// `carrot` is not beside `carrot-bench`.
    #[error("no carrot binary at {0}; build both with `cargo build --release --workspace`")]
    NoCarrot(PathBuf),
    /// The service never answered ready.
    #[error("the service was not ready within {0:?}")]
    NotReady(Duration),
    /// A scenario failed.
    #[error("scenario {0}: {1}")]
    Scenario(String, String),
    /// Seeding the log failed.
    #[error("seeding: {0}")]
    Seed(#[from] crate::seed::SeedError),
    /// `carrot replay` failed.
    #[error("carrot replay failed:\n{0}")]
    Replay(String),
}

/// One scenario's run, as the report shows it.
#[derive(Debug, Clone)]
pub struct ScenarioRun {
    /// Its name and settings, as a reader would rerun it.
    pub label: String,
    /// What it measured.
    pub measured: Measured,
}

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    /// The machine and the build.
    pub machine: machine::Machine,
    /// Seconds per workload.
    pub seconds: u64,
    /// pgbench at c=32: transactions per second per workload.
    pub pgbench: Vec<(Workload, f64)>,
    /// The service's scenarios, in the order run.
    pub scenarios: Vec<ScenarioRun>,
    /// The server's peak resident memory, in bytes.
    pub peak_rss: Option<u64>,
    /// Replay of each view, over the largest log of the growth curve.
    pub replay: Vec<replay::Rebuild>,
    /// The growth curves.
    pub growth: Vec<growth::Table>,
    /// Events in the replayed log.
    pub replay_log: i64,
}

/// Runs everything and writes the report; returns where.
pub async fn run(options: &Options) -> Result<PathBuf, ReportError> {
    let out = std::path::absolute(&options.out)?;
    let dir = out.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir)?;
    let figures = measure(options, dir).await?;
    std::fs::write(&out, markdown::render(&figures))?;
    Ok(out)
}

async fn measure(options: &Options, checkout: &Path) -> Result<Figures, ReportError> {
    let work_dir = std::path::absolute(&options.work_dir)?;
    let _ = std::fs::remove_dir_all(&work_dir);
    std::fs::create_dir_all(&work_dir)?;
    let carrot = service::carrot_binary()?;
    let bin = Binaries::locate()?;
    let machine = machine::Machine::describe(&bin, checkout);
    let cluster_options = ClusterOptions {
        data_dir: work_dir.join("pg"),
        durable: true,
        remove_on_stop: true,
        port: None,
        settings: Vec::new(),
    };
    say("starting a durable PostgreSQL cluster");
    let cluster = {
        let (bin, options) = (bin.clone(), cluster_options.clone());
        tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&bin, &options))
            .await
            .map_err(std::io::Error::other)??
    };
    let seconds = options.seconds;

    let (ceiling, runs, peak_rss) = if options.growth_only {
        (Vec::new(), Vec::new(), None)
    } else {
        service_figures(&bin, &cluster, &work_dir, seconds).await?
    };
    let sizes = growth::Sizes {
        catalog: options.catalog_sizes.clone(),
        sales: options.sales_sizes.clone(),
        log: options.log_sizes.clone(),
        seconds: options.growth_seconds,
    };
    let url_of = |database: &str| cluster.url(database);
    let (growth, (rebuilt, replay_log)) =
        growth::measure(&work_dir, &url_of, &carrot, &sizes).await?;
    drop(cluster);
    Ok(Figures {
        machine,
        seconds,
        pgbench: ceiling,
        scenarios: runs,
        peak_rss,
        replay: rebuilt,
        replay_log,
        growth,
    })
}

/// pgbench's ceiling, then every scenario against one service, and its peak memory.
async fn service_figures(
    bin: &Binaries,
    cluster: &EmbeddedPostgres,
    work_dir: &Path,
    seconds: u64,
) -> Result<(Vec<(Workload, f64)>, Vec<ScenarioRun>, Option<u64>), ReportError> {
    pgbench::prepare(cluster).await?;
    let mut ceiling = Vec::new();
    for workload in Workload::ALL {
        say(&format!("pgbench {} c=32 for {seconds} s", workload.name()));
        let tps = pgbench::run(bin, cluster, work_dir, workload, 32, seconds)?;
        ceiling.push((workload, tps));
    }

    ensure_database(&cluster.url("postgres"), "carrot").await?;
    let database_url = cluster.url("carrot");
    say("starting carrot payment-sim and carrot serve");
    let service = Service::start(work_dir, &database_url, &[]).await?;
    let extra = Extra {
        sample: 0,
        database_url: Some(database_url.clone()),
        payment_sim: Some(service.payment_sim.clone()),
    };
    let runs = scenarios_run(&service, &extra, seconds).await?;
    let peak_rss = service.peak_rss();
    service.stop(Duration::from_secs(30));

    Ok((ceiling, runs, peak_rss))
}

/// The scenarios, in order; the half-rate trade run is paced at half the measured maximum.
async fn scenarios_run(
    service: &Service,
    extra: &Extra,
    seconds: u64,
) -> Result<Vec<ScenarioRun>, ReportError> {
    let load = |concurrency, seconds, rate| Load {
        concurrency,
        duration: Duration::from_secs(seconds),
        rate,
    };
    let mut plan: Vec<(&str, &str, Load, u64)> = vec![
        ("register", "register c=50", load(50, seconds, None), 0),
        ("request", "request c=50", load(50, seconds, None), 0),
        (
            "hot",
            "hot: 100 buyers at once",
            load(100, seconds, None),
            0,
        ),
        (
            "long",
            "long: 10,000-event listing vs fresh",
            load(1, seconds, None),
            0,
        ),
        ("read-by-id", "read by id c=50", load(50, seconds, None), 0),
        (
            "read",
            "read: listing and MyPage c=50",
            load(50, seconds, None),
            0,
        ),
        ("trade", "trade, max rate c=16", load(16, seconds, None), 0),
    ];
    let mut runs = Vec::new();
    let run_one = async |scenario: &str, label: String, load: Load, sample: u64| {
        say(&label);
        let extra = Extra {
            sample,
            ..extra.clone()
        };
        let measured = scenarios::run(scenario, &service.url, load, &extra)
            .await
            .map_err(|e| ReportError::Scenario(label.clone(), e))?;
        Ok::<_, ReportError>(ScenarioRun { label, measured })
    };
    for (scenario, label, load, sample) in plan.drain(..) {
        runs.push(run_one(scenario, label.to_owned(), load, sample).await?);
    }
    let max = runs.last().map(|r| r.measured.rate()).unwrap_or(0.0);
    let half = (max / 2.0).max(1.0);
    let label = format!("trade at half the max rate ({half:.0}/s) c=32, lags of every 5th");
    let half_run = load(32, seconds * 3 / 2, Some(half));
    runs.push(run_one("trade", label, half_run, 5).await?);
    let seeds = load(100, 60, None);
    let label = "seeds: request c=100, gateway 400-620 ms".to_owned();
    runs.push(run_one("seeds", label, seeds, 0).await?);
    Ok(runs)
}

fn say(what: &str) {
    eprintln!("carrot-bench report: {what}");
}
