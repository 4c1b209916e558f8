//! The HTTP routes, one module per resource, each owning its `router()`.

pub mod admin;
pub mod auth;
pub mod catalog;
pub mod dead_letters;
pub mod docs;
pub mod health;
pub mod listings;
pub mod me;
pub mod mypage;
pub mod notifications;
pub mod payments;
pub mod quarantine;
pub mod requests;
pub mod transfers;
