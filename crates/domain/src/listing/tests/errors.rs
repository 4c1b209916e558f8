//! The class and stable code of every refusal of a listing.

use super::*;
use crate::{DomainError, ErrorKind};

#[test]
fn every_refusal_has_a_class_and_a_stable_code() {
    let class = |error: ListingError| (error.kind(), error.code());
    assert_eq!(
        class(ListingError::AlreadyRegistered),
        (ErrorKind::Conflict, "listing_already_registered")
    );
    assert_eq!(
        class(ListingError::NotFound),
        (ErrorKind::NotFound, "not_found")
    );
    assert_eq!(
        class(ListingError::NotYourListing),
        (ErrorKind::Forbidden, "not_your_listing")
    );
    assert_eq!(
        class(ListingError::NotAvailable("sold")),
        (ErrorKind::Conflict, "listing_not_available")
    );
    assert_eq!(
        class(ListingError::NotReservedForRequest),
        (ErrorKind::Conflict, "invalid_transition")
    );
}
