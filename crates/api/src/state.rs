//! What every handler can reach: the pool, the command frameworks, the keys, the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use carrot_domain::listing::{Listing, ListingServices};
use carrot_domain::Clock;
use postgres_es::PostgresCqrs;
use sqlx::PgPool;

use crate::auth::JwtKeys;

/// Shared application state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The database (event store, views, accounts).
    pub pool: PgPool,
    /// Signs and verifies access tokens.
    pub jwt: Arc<JwtKeys>,
    /// The time source.
    pub clock: Arc<dyn Clock>,
    /// Commands on listings.
    pub listings: Arc<PostgresCqrs<Listing>>,
    /// How long a read waits for its consistency token.
    pub consistency_wait: Duration,
    /// False while starting or stopping: readiness answers 503.
    pub accepting: Arc<AtomicBool>,
}

impl AppState {
    /// Builds the state over `pool`.
    pub fn new(
        pool: PgPool,
        jwt: JwtKeys,
        clock: Arc<dyn Clock>,
        consistency_wait: Duration,
    ) -> Self {
        let listings = postgres_es::postgres_cqrs(
            pool.clone(),
            vec![],
            ListingServices {
                clock: clock.clone(),
            },
        );
        AppState {
            pool,
            jwt: Arc::new(jwt),
            clock,
            listings: Arc::new(listings),
            consistency_wait,
            accepting: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the instance takes traffic (false while shutting down).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}
