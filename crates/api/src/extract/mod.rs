//! Request extractors: who is calling, the JSON body, the consistency token, command metadata.

pub mod admin;
pub mod auth;
pub mod consistency;
pub mod id;
pub mod json;
pub mod metadata;

pub use admin::AdminUser;
pub use auth::{AuthUser, StreamUser};
pub use consistency::ConsistencyToken;
pub use id::PathId;
pub use json::{Json, OptionalJson};
pub use metadata::CommandContext;
