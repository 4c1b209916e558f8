//! Payment gateway adapters: the in-process simulated gateway (the default), the HTTP
//! adapter and the simulator's own HTTP server, and the timeout and circuit breaker that
//! wrap whichever adapter is in use.

pub mod breaker;
pub mod http;
pub mod sim_server;
pub mod simulated;
pub mod timeout;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker};
pub use http::HttpGateway;
pub use simulated::{LostAnswer, SimulatedGateway, SimulationProfile};
pub use timeout::WithTimeout;
