//! What every handler can reach: the pool, the command frameworks, the keys, the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::FromRef;
use carrot_domain::schema::StateVersion;
use carrot_domain::Clock;
use carrot_projections::postgres::Db;
use carrot_projections::views::consistency::WaitBound;
use carrot_projections::write_side::WriteSide;
use cqrs_es::Aggregate;

use crate::auth::sessions::Sessions;
use crate::auth::JwtKeys;
use crate::error::ApiError;
use crate::limits::RateLimits;
use crate::listing_cache::ListingCache;
use crate::live::NotificationHub;
use crate::payment::CircuitBreaker;
use crate::progress::ProgressCache;
use crate::reads::{ReadReplica, Reads};
use carrot_domain::purchase_request::Deadlines;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The database (event store, views, accounts): the primary.
    pub pool: Db,
    /// Where the read endpoints read their views: a replica while it keeps up, or `pool`.
    pub reads: Reads,
    /// Listings kept in memory for `GET /listings/{id}`, exact by the catalog's announcements
    /// (only where the API is served: a worker keeps none, and holds no `LISTEN` for it).
    pub listings: ListingCache,
    /// Signs and verifies access tokens.
    pub jwt: Arc<JwtKeys>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Commands on the aggregates.
    pub write: Arc<WriteSide>,
    /// The payment gateway's circuit breaker (the write side calls the gateway through it).
    pub breaker: Arc<CircuitBreaker>,
    /// Wakes live notification streams.
    pub hub: NotificationHub,
    /// How long a read waits for its consistency token, and how often it looks.
    pub consistency: WaitBound,
    /// The workers' progress for readiness and metrics, read at most once per interval.
    pub progress: Arc<ProgressCache>,
    /// False while starting or stopping: readiness answers 503.
    pub accepting: Arc<AtomicBool>,
    /// Per-user and per-address rate limits.
    pub limits: Arc<RateLimits>,
    /// The sessions tokens belong to, and those revoked.
    pub sessions: Arc<Sessions>,
    /// The rebuilds the console started in this process.
    pub rebuilds: Arc<crate::console::rebuilds::Jobs>,
}

impl AppState {
    /// Builds the state over `pool`, calling the gateway through `breaker`.
    #[allow(clippy::too_many_arguments)] // one call site (startup.rs), each part named there
    pub fn new(
        pool: Db,
        jwt: JwtKeys,
        clock: Arc<dyn Clock>,
        breaker: Arc<CircuitBreaker>,
        consistency: WaitBound,
        limits: RateLimits,
        progress: ProgressCache,
        deadlines: Deadlines,
        read_replica: Option<ReadReplica>,
    ) -> Self {
        AppState {
            write: Arc::new(WriteSide::with_deadlines(
                pool.clone(),
                clock.clone(),
                breaker.clone(),
                deadlines,
            )),
            breaker,
            hub: NotificationHub::start(&pool),
            sessions: Arc::new(Sessions::new(pool.clone(), jwt.ttl())),
            reads: Reads::new(pool.clone(), read_replica),
            // Keeps nothing until `Application::build` starts it for a role serving the API.
            listings: ListingCache::default(),
            pool,
            jwt: Arc::new(jwt),
            clock,
            consistency,
            progress: Arc::new(progress),
            accepting: Arc::new(AtomicBool::new(true)),
            limits: Arc::new(limits),
            rebuilds: Arc::default(),
        }
    }

    /// Whether the instance takes traffic (false while shutting down).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// The current state of one aggregate, replayed from its events. For decisions on the
    /// write side only: reads go to views.
    pub async fn load<A: Aggregate + StateVersion + 'static>(
        &self,
        id: &str,
    ) -> Result<A, ApiError> {
        self.write.load::<A>(id).await.map_err(ApiError::Internal)
    }
}

impl FromRef<AppState> for Arc<RateLimits> {
    fn from_ref(state: &AppState) -> Self {
        state.limits.clone()
    }
}

impl FromRef<AppState> for Arc<Sessions> {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}
