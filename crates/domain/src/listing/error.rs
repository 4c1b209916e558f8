//! Why a listing refused a command.

use crate::{DomainError, ErrorKind};

/// A refused listing command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListingError {
    /// The listing was registered already (a replayed or duplicated registration).
    #[error("this listing is already registered")]
    AlreadyRegistered,
    /// No listing with this id.
    #[error("there is no such listing")]
    NotFound,
    /// Only the seller may do this.
    #[error("only the listing's seller may do this")]
    NotYourListing,
    /// The listing is reserved, sold or withdrawn.
    #[error("the listing is not available (it is {0})")]
    NotAvailable(&'static str),
    /// The listing is not held by this request.
    #[error("the listing is not reserved for this request")]
    NotReservedForRequest,
}

impl DomainError for ListingError {
    fn kind(&self) -> ErrorKind {
        match self {
            ListingError::NotFound => ErrorKind::NotFound,
            ListingError::NotYourListing => ErrorKind::Forbidden,
            ListingError::AlreadyRegistered
            | ListingError::NotAvailable(_)
            | ListingError::NotReservedForRequest => ErrorKind::Conflict,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ListingError::AlreadyRegistered => "listing_already_registered",
            ListingError::NotFound => "not_found",
            ListingError::NotYourListing => "not_your_listing",
            ListingError::NotAvailable(_) => "listing_not_available",
            ListingError::NotReservedForRequest => "invalid_transition",
        }
    }
}
