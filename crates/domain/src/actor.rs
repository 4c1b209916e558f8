//! Who asks for a change: a user, or the system itself (the saga, the deadline timer).

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::UserId;

/// The author of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// A signed-in user.
    User(UserId),
    /// Carrot itself: automatic rejections, expiries, completions, settlements.
    System,
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(id) => id.fmt(f),
            Actor::System => f.write_str("system"),
        }
    }
}
