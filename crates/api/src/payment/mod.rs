//! Payment gateway adapters: the in-process simulated gateway (the default) and the
//! timeout that wraps whichever adapter is in use.

pub mod simulated;
pub mod timeout;

pub use simulated::{SimulatedGateway, SimulationProfile};
pub use timeout::WithTimeout;
