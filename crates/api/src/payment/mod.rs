//! Payment gateway adapters: the in-process simulated gateway (the default), and the
//! timeout and circuit breaker that wrap whichever adapter is in use.

pub mod breaker;
pub mod simulated;
pub mod timeout;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use simulated::{SimulatedGateway, SimulationProfile};
pub use timeout::WithTimeout;
