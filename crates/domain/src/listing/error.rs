//! Why a listing refused a command.

use crate::{DomainError, ErrorKind};

/// A refused listing command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The listing was registered already (a replayed or duplicated registration).
    #[error("this listing is already registered")]
    AlreadyRegistered,
}

impl DomainError for ListingError {
    fn kind(&self) -> ErrorKind {
        match self {
            ListingError::AlreadyRegistered => ErrorKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ListingError::AlreadyRegistered => "listing_already_registered",
        }
    }
}
