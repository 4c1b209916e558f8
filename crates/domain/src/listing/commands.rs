//! What can be asked of a listing.

use super::fields::{Category, Description, ListingTitle};
use crate::{ListingId, Price, UserId};

/// A command on the `Listing` aggregate; every field is already validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ListingCommand {
    /// A seller puts an item up for sale.
    RegisterListing {
        /// The new listing's id (also the aggregate id).
        listing_id: ListingId,
        /// Who sells it.
        seller_id: UserId,
        /// Its title.
        title: ListingTitle,
        /// Its description.
        description: Description,
        /// The asking price.
        price: Price,
        /// An optional category.
        category: Option<Category>,
    },
}
