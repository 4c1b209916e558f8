//! The `carrot` binary: `serve`, `migrate`, and the operator commands.

use carrot_projections::postgres::{connect_lazy, roles, DatabaseClock, Db, Schema};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use carrot_api::auth::JwtKeys;
use carrot_api::config::{
    AdminCommand, Cli, Command, DatabaseArgs, EventsArgs, MigrateArgs, PaymentSimArgs,
    QuarantineArgs, SagaCommand, ServeArgs,
};
use carrot_api::database::{Database, Embedded};
use carrot_api::ops::events::Selection;
use carrot_api::payment::{sim_server, SimulatedGateway};
use carrot_api::reads::ReadReplica;
use carrot_api::routes::dead_letters::Decision;
use carrot_api::startup::{Application, Settings};
use carrot_api::workers::WorkerConfig;
use carrot_api::{ops, secret, telemetry};
use carrot_projections::{RunnerConfig, Shutdown};
use clap::Parser;

/// mimalloc instead of the system allocator: a request allocates and frees many small
/// buffers across threads, where glibc's malloc took a fifth of the server's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Migrate(args) => migrate(args).await,
        Command::Replay(args) => match ops::replay::select(&args.views) {
            Ok(views) => {
                with_database(&args.database, |pool| async move {
                    ops::replay::run(&pool, &views, args.verify).await
                })
                .await
            }
            Err(e) => Err(e.into()),
        },
        Command::Events(args) if args.check => {
            with_database(&args.database, |pool| async move {
                let mut out = std::io::stdout().lock();
                ops::events::check(&pool, &mut out).await
            })
            .await
        }
        Command::Events(args) => match selection(&args) {
            Ok(selection) => {
                with_database(&args.database, |pool| async move {
                    let mut out = std::io::stdout().lock();
                    ops::events::print(&pool, &selection, args.json, &mut out).await
                })
                .await
            }
            Err(e) => Err(e),
        },
        Command::Saga(SagaCommand::DeadLetters {
            database,
            payment,
            retry,
            discard,
            reason,
            by,
        }) => {
            let decision = match (retry, discard) {
                (Some(id), _) => Some((id, Decision::Retry(reason))),
                (None, Some(id)) => Some((id, Decision::Discard(reason.unwrap_or_default()))),
                (None, None) => None,
            };
            match payment.gateway() {
                Ok(gateway) => {
                    with_database(&database, |pool| async move {
                        match (decision, by) {
                            (Some((id, decision)), Some(by)) => {
                                ops::saga::decide(&pool, gateway, &by, &id, decision).await
                            }
                            _ => ops::saga::dead_letters(&pool).await,
                        }
                    })
                    .await
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Saga(SagaCommand::Recover {
            database,
            saga,
            apply,
        }) => {
            with_database(&database, |pool| async move {
                ops::saga::recover(&pool, saga.saga(), apply).await
            })
            .await
        }
        Command::Saga(SagaCommand::Reconcile {
            database,
            payment,
            since,
        }) => match payment.gateway() {
            Ok(gateway) => {
                with_database(&database, |pool| async move {
                    ops::saga::reconcile(&pool, gateway, &payment, since).await
                })
                .await
            }
            Err(e) => Err(e.into()),
        },
        Command::Quarantine(QuarantineArgs {
            database,
            subscriber,
            retry,
        }) => {
            with_database(&database, |pool| async move {
                ops::quarantine::run(&pool, &subscriber, retry).await
            })
            .await
        }
        Command::PaymentSim(args) => payment_sim(args).await,
        Command::Openapi => print_openapi(),
        Command::Admin(AdminCommand::Grant { database, username }) => {
            with_database(&database, |pool| async move {
                ops::accounts::grant_admin(&pool, &username).await
            })
            .await
        }
        Command::Admin(AdminCommand::Close {
            database,
            payment,
            by,
            username,
        }) => match payment.gateway() {
            Ok(gateway) => {
                with_database(&database, |pool| async move {
                    ops::accounts::close(&pool, gateway, &by, &username).await
                })
                .await
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

/// What `carrot events` was asked for.
fn selection(args: &EventsArgs) -> Result<Selection, Box<dyn std::error::Error>> {
    match (&args.request, &args.aggregate) {
        (Some(id), _) => Ok(Selection::Trade(*id)),
        (None, Some(aggregate)) => match aggregate.split_once('/') {
            Some((kind, id)) if !kind.is_empty() && !id.is_empty() => {
                Ok(Selection::Aggregate(kind.to_owned(), id.to_owned()))
            }
            _ => Err("--aggregate takes TYPE/ID, for example listing/0e3f...".into()),
        },
        (None, None) => Err("name --request or --aggregate".into()),
    }
}

/// Opens the database (checking its schema), runs `work` on it, and closes it whatever
/// happened.
async fn with_database<F, Fut>(
    args: &DatabaseArgs,
    work: F,
) -> Result<(), Box<dyn std::error::Error>>
where
    F: FnOnce(Db) -> Fut,
    Fut: std::future::Future<Output = Result<(), ops::OpsError>>,
{
    // Operator commands never change the schema (a newer binary looking at production
    // must not migrate it), except on the embedded database, which is their own.
    let db = Database::open(args, Schema::Require, Embedded::Share).await?;
    let done = work(db.pool.clone()).await;
    db.close().await;
    Ok(done?)
}

/// `carrot migrate`: the schema, the log's order, and the service role's rights.
async fn migrate(args: MigrateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::open(&args.database, Schema::Migrate, Embedded::Share).await?;
    let granted = match &args.app_role {
        Some(role) => {
            let schemas = carrot_projections::subscriber_names();
            roles::grant_service_rights(&db.pool, role, &schemas)
                .await
                .map(|()| Some(role))
        }
        None => Ok(None),
    };
    db.close().await;
    match granted? {
        Some(role) => eprintln!("carrot: migrations applied; {role} may read and write rows"),
        None => eprintln!("carrot: migrations applied"),
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let secret = secret::resolve(args.jwt_secret.as_deref(), &args.database.data_dir)?;
    let schema = if args.migrate {
        Schema::Migrate
    } else {
        Schema::Require
    };
    let db = Database::open(&args.database, schema, Embedded::Own).await?;
    let settings = Settings {
        bind: args.bind,
        role: args.role,
        jwt: JwtKeys::new(&secret, chrono::Duration::seconds(args.jwt_ttl_seconds)),
        // One clock for every process: the database's (postgres/clock.rs).
        clock: Arc::new(DatabaseClock::start(&db.pool).await?),
        consistency_wait: Duration::from_millis(args.consistency_wait_ms),
        progress_refresh: Duration::from_millis(args.progress_refresh_ms),
        workers: WorkerConfig {
            runner: RunnerConfig {
                poll_interval: Duration::from_millis(args.poll_interval_ms),
                ..RunnerConfig::default()
            },
            // The reconciler asks about a started capture only once its call must have
            // ended: after the gateway's time limit, with room to record the answer.
            saga: args
                .saga
                .saga()
                .reconciling_after(Duration::from_millis(args.payment.payment_timeout_ms)),
            dispatcher: args.saga.dispatcher(),
            ..WorkerConfig::default()
        },
        gateway: args.payment.gateway()?,
        payment_timeout: Duration::from_millis(args.payment.payment_timeout_ms),
        breaker: args.breaker.config(),
        limits: args.limits.config(),
        access_log: args.access_log,
        read_replica: match &args.read_database_url {
            Some(url) => Some(ReadReplica {
                pool: connect_lazy(url, args.database.pool_size)?,
                max_lag: Duration::from_millis(args.read_max_lag_ms),
            }),
            None => None,
        },
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
        eprintln!("carrot: shutting down: readiness is 503, draining in-flight requests");
        trigger.trigger();
    });
    // In-flight requests and batches finish, but not forever: an orchestrator kills the
    // process soon after anyway, and the database must be stopped cleanly first.
    let drain = Duration::from_secs(args.shutdown_timeout_seconds);
    let mut stopping = shutdown.clone();
    let served = tokio::select! {
        served = app.run_until_stopped(shutdown) => served,
        () = async { stopping.wait().await; tokio::time::sleep(drain).await } => {
            eprintln!("carrot: in-flight work did not finish within {drain:?}; stopping anyway");
            Ok(())
        }
    };
    db.close().await;
    Ok(served?)
}

/// `carrot openapi`: the document on stdout (`> docs/openapi.json` to update the committed one).
fn print_openapi() -> Result<(), Box<dyn std::error::Error>> {
    let json = carrot_api::openapi::document().to_pretty_json()?;
    println!("{json}");
    Ok(())
}

async fn payment_sim(args: PaymentSimArgs) -> Result<(), Box<dyn std::error::Error>> {
    let gateway = Arc::new(SimulatedGateway::new(args.payment.profile()));
    let listener = tokio::net::TcpListener::bind(args.bind).await?;
    eprintln!(
        "carrot: payment simulator on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, sim_server::router(gateway))
        .with_graceful_shutdown(wait_for_signal())
        .await?;
    Ok(())
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
