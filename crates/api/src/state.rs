//! What every handler can reach: the pool, the command frameworks, the keys, the clock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use carrot_domain::listing::{Listing, ListingServices};
use carrot_domain::payment::{Payment, PaymentGateway, PaymentServices};
use carrot_domain::purchase_request::{PurchaseRequest, PurchaseRequestServices};
use carrot_domain::Clock;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, EventStore};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlx::PgPool;

use crate::auth::JwtKeys;
use crate::error::ApiError;

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
    /// Commands on purchase requests.
    pub requests: Arc<PostgresCqrs<PurchaseRequest>>,
    /// Commands on payments (these call the gateway).
    pub payments: Arc<PostgresCqrs<Payment>>,
    /// How long a read waits for its consistency token.
    pub consistency_wait: Duration,
    /// False while starting or stopping: readiness answers 503.
    pub accepting: Arc<AtomicBool>,
}

impl AppState {
    /// Builds the state over `pool`; `gateway` is used as given (wrap it first).
    pub fn new(
        pool: PgPool,
        jwt: JwtKeys,
        clock: Arc<dyn Clock>,
        gateway: Arc<dyn PaymentGateway>,
        consistency_wait: Duration,
    ) -> Self {
        let listings = postgres_es::postgres_cqrs(
            pool.clone(),
            vec![],
            ListingServices {
                clock: clock.clone(),
            },
        );
        let requests = postgres_es::postgres_cqrs(
            pool.clone(),
            vec![],
            PurchaseRequestServices {
                clock: clock.clone(),
            },
        );
        let payments = postgres_es::postgres_cqrs(
            pool.clone(),
            vec![],
            PaymentServices {
                gateway,
                clock: clock.clone(),
            },
        );
        AppState {
            pool,
            jwt: Arc::new(jwt),
            clock,
            listings: Arc::new(listings),
            requests: Arc::new(requests),
            payments: Arc::new(payments),
            consistency_wait,
            accepting: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the instance takes traffic (false while shutting down).
    pub fn is_accepting(&self) -> bool {
        self.accepting.load(Ordering::Relaxed)
    }

    /// The current state of one aggregate, replayed from its events. For decisions on the
    /// write side only: reads go to views.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<A, ApiError>
    where
        A::Error: Send + Sync + 'static,
    {
        let store: PersistedEventStore<PostgresEventRepository, A> =
            PersistedEventStore::new_event_store(PostgresEventRepository::new(self.pool.clone()));
        match store.load_aggregate(id).await {
            Ok(context) => Ok(context.aggregate),
            Err(AggregateError::DatabaseConnectionError(e))
            | Err(AggregateError::DeserializationError(e))
            | Err(AggregateError::UnexpectedError(e)) => Err(ApiError::Internal(e)),
            Err(other) => Err(ApiError::Internal(other.to_string().into())),
        }
    }
}

impl FromRef<AppState> for Arc<JwtKeys> {
    fn from_ref(state: &AppState) -> Self {
        state.jwt.clone()
    }
}
