//! The `carrot` binary: `serve` and `migrate`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use carrot_api::auth::JwtKeys;
use carrot_api::config::{Cli, Command, ServeArgs};
use carrot_api::database::Database;
use carrot_api::payment::{SimulatedGateway, SimulationProfile};
use carrot_api::startup::{Application, Settings};
use carrot_api::{secret, telemetry};
use carrot_domain::SystemClock;
use carrot_projections::{RunnerConfig, Shutdown};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Migrate(args) => match Database::open(&args).await {
            Ok(db) => {
                eprintln!("carrot: migrations applied");
                db.close().await;
                Ok(())
            }
            Err(e) => Err(e.into()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("carrot: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let secret = secret::resolve(args.jwt_secret.as_deref(), &args.database.data_dir)?;
    let db = Database::open(&args.database).await?;
    let settings = Settings {
        bind: args.bind,
        jwt: JwtKeys::new(&secret, chrono::Duration::seconds(args.jwt_ttl_seconds)),
        clock: Arc::new(SystemClock),
        consistency_wait: Duration::from_millis(args.consistency_wait_ms),
        runner: RunnerConfig {
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            ..RunnerConfig::default()
        },
        gateway: Arc::new(SimulatedGateway::new(SimulationProfile {
            latency_ms: args.payment.payment_latency_ms.clone(),
            decline_rate: args.payment.payment_decline_rate,
            failure_rate: args.payment.payment_failure_rate,
        })),
        payment_timeout: Duration::from_millis(args.payment.payment_timeout_ms),
    };
    let app = match Application::build(settings, db.pool.clone()).await {
        Ok(app) => app,
        Err(e) => {
            db.close().await;
            return Err(format!("cannot listen on {}: {e}", args.bind).into());
        }
    };
    eprintln!(
        "carrot: listening on http://{}:{}",
        args.bind.ip(),
        app.port()
    );
    let (trigger, shutdown) = Shutdown::new();
    tokio::spawn(async move {
        wait_for_signal().await;
        eprintln!("carrot: shutting down");
        trigger.trigger();
    });
    let served = app.run_until_stopped(shutdown).await;
    db.close().await;
    Ok(served?)
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
