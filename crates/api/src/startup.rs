//! Startup as a value: `Application::build` binds (port 0 in tests) and wires the router
//! and the subscription runners; `run_until_stopped` serves until the shutdown signal,
//! then lets in-flight requests and running batches finish.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::Router;
use carrot_domain::payment::PaymentGateway;
use carrot_domain::Clock;
use carrot_projections::{Runner, RunnerConfig, Shutdown, Wakeups};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::JwtKeys;
use crate::error::ApiError;
use crate::payment::WithTimeout;
use crate::routes;
use crate::state::AppState;

/// The largest request body accepted (64 KiB); larger ones get 413.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What the application needs beyond its database.
#[derive(Clone)]
pub struct Settings {
    /// Where to listen.
    pub bind: SocketAddr,
    /// Signs and verifies access tokens.
    pub jwt: JwtKeys,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// How long a read waits for a consistency token.
    pub consistency_wait: Duration,
    /// How the subscription runners pace themselves.
    pub runner: RunnerConfig,
    /// The payment gateway adapter, as it is (the application adds the time limit).
    pub gateway: Arc<dyn PaymentGateway>,
    /// How long a gateway call may take before its outcome counts as unknown.
    pub payment_timeout: Duration,
}

/// A bound, wired, not yet running application.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    runner_config: RunnerConfig,
}

impl Application {
    /// Builds the application over an already migrated database.
    pub async fn build(settings: Settings, pool: PgPool) -> std::io::Result<Self> {
        let gateway = Arc::new(WithTimeout::new(settings.gateway, settings.payment_timeout));
        let state = AppState::new(
            pool,
            settings.jwt,
            settings.clock,
            gateway,
            settings.consistency_wait,
        );
        let listener = TcpListener::bind(settings.bind).await?;
        Ok(Application {
            listener,
            router: router(state.clone()),
            state,
            runner_config: settings.runner,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves HTTP and runs every subscriber until `shutdown` fires.
    pub async fn run_until_stopped(self, shutdown: Shutdown) -> std::io::Result<()> {
        let wakeups = Wakeups::listen(&self.state.pool);
        let runners: Vec<_> = carrot_projections::subscribers()
            .into_iter()
            .map(|subscriber| {
                let runner = Runner::new(self.state.pool.clone(), subscriber, self.runner_config);
                tokio::spawn(runner.run(wakeups.clone(), shutdown.clone()))
            })
            .collect();
        let accepting = self.state.accepting.clone();
        let mut stop = shutdown.clone();
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move {
                stop.wait().await;
                accepting.store(false, Ordering::Relaxed);
            })
            .await;
        for runner in runners {
            if let Err(e) = runner.await {
                tracing::error!(error = %e, "a runner task ended abnormally");
            }
        }
        served
    }
}

/// The whole router with its middleware.
pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    Router::new()
        .merge(routes::auth::router())
        .merge(routes::listings::router())
        .merge(routes::requests::router())
        .merge(routes::health::router())
        .fallback(|| async { ApiError::NoRoute })
        .method_not_allowed_fallback(|| async { ApiError::NoRoute })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            use axum::response::IntoResponse;
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
            }),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
