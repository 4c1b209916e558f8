//! What can be asked of a listing.

use super::fields::{Category, Description, ListingTitle};
use crate::{ListingId, Price, RequestId, UserId};

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
    /// The seller changes some of title, description and price, while available.
    EditListing {
        /// Who asks.
        actor: UserId,
        /// A new title, if any.
        title: Option<ListingTitle>,
        /// A new description, if any.
        description: Option<Description>,
        /// A new price, if any.
        price: Option<Price>,
    },
    /// The seller takes the listing off sale, while available.
    WithdrawListing {
        /// Who asks.
        actor: UserId,
    },
    /// Hold the listing for one accepted request (the seller's accept does this first).
    ReserveListing {
        /// The request being accepted.
        request_id: RequestId,
    },
    /// Make the listing available again after its accepted request was cancelled.
    ReleaseListing {
        /// The request that held it.
        request_id: RequestId,
    },
    /// The request holding the listing was completed: the item is sold.
    MarkListingSold {
        /// The completed request.
        request_id: RequestId,
    },
}
