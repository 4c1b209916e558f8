//! Request extractors: who is calling, the JSON body, the consistency token, the page of a
//! list, command metadata.

pub mod admin;
pub mod auth;
pub mod consistency;
pub mod id;
pub mod json;
pub mod metadata;
pub mod page;

pub use admin::AdminUser;
pub use auth::{AuthUser, StreamUser};
pub use consistency::{await_views, ConsistencyToken, Freshness};
pub use id::PathId;
pub use json::{Json, OptionalJson};
pub use metadata::CommandContext;
pub use page::{Cursor, PageParams, Paging};
