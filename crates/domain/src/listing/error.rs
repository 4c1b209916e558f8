//! Why a listing refused a command.

use crate::ErrorKind;

/// A refused listing command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The listing was registered already (a replayed or duplicated registration).
    #[error("this listing is already registered")]
    AlreadyRegistered,
}

impl ListingError {
    /// The class of refusal, for the edge to map to a status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ListingError::AlreadyRegistered => ErrorKind::Conflict,
        }
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ListingError::AlreadyRegistered => "listing_already_registered",
        }
    }
}
