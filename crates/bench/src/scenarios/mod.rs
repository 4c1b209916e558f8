//! The load scenarios, one module each.

pub mod hot;
pub mod long;
pub mod pairs;
pub mod simple;
pub mod trade;
