//! Startup as a value: `Application::build` binds (port 0 in tests) and wires the router
//! and the subscription runners; `run_until_stopped` serves until the shutdown signal,
//! then lets in-flight requests and running batches finish.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::Router;
use carrot_domain::payment::PaymentGateway;
use carrot_domain::Clock;
use carrot_projections::postgres::Db;
use carrot_projections::views::consistency::WaitBound;
use carrot_projections::Shutdown;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};

use crate::access_log::{self, AccessLog};
use crate::auth::JwtKeys;
use crate::error::{ApiError, BODY_LIMIT_BYTES};
use crate::limits::{LimitConfig, RateLimits};
use crate::payment::{BreakerConfig, CircuitBreaker, WithTimeout};
use crate::progress::ProgressCache;
use crate::reads::ReadReplica;
use crate::routes;
use crate::state::AppState;
use crate::workers::{self, WorkerConfig};

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ServeRole {
    /// The HTTP API and the workers.
    #[default]
    All,
    /// Only the HTTP API (stateless; scale out freely).
    Api,
    /// Only the workers (projections, saga), with the health and metrics endpoints.
    Worker,
}

impl ServeRole {
    /// Whether this role runs the workers.
    pub fn runs_workers(self) -> bool {
        matches!(self, ServeRole::All | ServeRole::Worker)
    }
}

/// What the application needs beyond its database.
#[derive(Clone)]
pub struct Settings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// What this process runs.
    pub role: ServeRole,
    /// Signs and verifies access tokens.
    pub jwt: JwtKeys,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// How long a read waits for a consistency token.
    pub consistency_wait: Duration,
    /// How old the workers' progress shown by readiness and `/metrics` may be.
    pub progress_refresh: Duration,
    /// How the workers pace themselves.
    pub workers: WorkerConfig,
    /// The payment gateway adapter, as it is (the application adds the time limit and the
    /// circuit breaker).
    pub gateway: Arc<dyn PaymentGateway>,
    /// How long a gateway call may take before its outcome counts as unknown.
    pub payment_timeout: Duration,
    /// When the gateway's circuit breaker opens and how it recovers.
    pub breaker: BreakerConfig,
    /// Per-user and per-address rate limits.
    pub limits: LimitConfig,
    /// A read replica for the read endpoints (`CARROT_READ_DATABASE_URL`), if any.
    pub read_replica: Option<ReadReplica>,
    /// Which requests get an access log line (`CARROT_ACCESS_LOG`).
    pub access_log: AccessLog,
}

/// A bound, wired, not yet running application.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    role: ServeRole,
    workers: WorkerConfig,
}

impl Application {
    /// Builds the application over an already migrated database.
    pub async fn build(settings: Settings, pool: Db) -> std::io::Result<Self> {
        let bounded = Arc::new(WithTimeout::new(settings.gateway, settings.payment_timeout));
        let breaker = Arc::new(CircuitBreaker::new(bounded, settings.breaker));
        let progress = ProgressCache::new(
            settings.progress_refresh,
            settings.clock.clone(),
            settings.workers.dispatcher.alert_after,
        );
        let mut state = AppState::new(
            pool,
            settings.jwt,
            settings.clock,
            breaker,
            WaitBound {
                timeout: settings.consistency_wait,
                // A token beyond the log's head is looked at as often as runners poll.
                idle_poll: settings.workers.runner.poll_interval,
            },
            RateLimits::new(settings.limits),
            progress,
            settings.workers.saga.deadlines,
            settings.read_replica,
        );
        if settings.role != ServeRole::Worker {
            state.listings = crate::listing_cache::ListingCache::start(&state.pool);
        }
        let listener = TcpListener::bind(settings.bind).await?;
        Ok(Application {
            listener,
            router: router(state.clone(), settings.role, settings.access_log),
            state,
            role: settings.role,
            workers: settings.workers,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The shared state (for tests and the CLI).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves HTTP and, by role, runs the workers, until `shutdown` fires.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let tasks = if self.role.runs_workers() {
            workers::spawn(
                &self.state.pool,
                self.state.write.clone(),
                self.state.breaker.clone(),
                self.state.clock.clone(),
                self.workers,
                &shutdown,
            )
            .await
        } else {
            Vec::new()
        };
        let mut tasks = tasks;
        if self.role != ServeRole::Worker {
            let sessions = self.state.sessions.clone();
            let stop = shutdown.clone();
            tasks.push(tokio::spawn(
                async move { sessions.keep_reading(stop).await },
            ));
        }
        let accepting = self.state.accepting.clone();
        let mut stop = shutdown.clone();
        let router = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(async move {
                stop.wait().await;
                accepting.store(false, Ordering::Relaxed);
            })
            .await;
        for task in tasks {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "a worker task ended abnormally");
            }
        }
        served
    }
}

/// The routes a role serves: the whole API, or for a worker only its probes and metrics.
fn routes(role: ServeRole) -> Router<AppState> {
    let operations = Router::new()
        .merge(routes::health::router())
        .merge(crate::metrics::router());
    if role == ServeRole::Worker {
        return operations;
    }
    operations
        .merge(routes::auth::router())
        .merge(routes::me::router())
        .merge(routes::listings::router())
        .merge(routes::requests::router())
        .merge(routes::payments::router())
        .merge(routes::mypage::router())
        .merge(routes::notifications::router())
        .merge(routes::admin::router())
        .merge(routes::dead_letters::router())
        .merge(routes::transfers::router())
        .merge(routes::quarantine::router())
        .merge(routes::docs::router())
        .merge(crate::console::router())
}

/// The whole router with its middleware.
pub fn router(state: AppState, role: ServeRole, access: AccessLog) -> Router {
    let request_id = crate::request_id::HEADER;
    routes(role)
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.limits.clone(),
            crate::limits::per_address,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(axum::middleware::from_fn(crate::metrics::track))
        .layer(axum::middleware::from_fn_with_state(
            access_log::Policy::new(access),
            access_log::layer,
        ))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                // The access log (access_log.rs) says which requests get a line at INFO.
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG))
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG))
                .make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        // Outermost: a caller's id out of bounds is replaced before anything logs, echoes or
        // stores it.
        .layer(axum::middleware::from_fn(crate::request_id::bound))
        .with_state(state)
}
