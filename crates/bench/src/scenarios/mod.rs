//! The load scenarios, one module each.

pub mod trade;
