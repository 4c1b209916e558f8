//! What a buyer would pay for a listing: the rules a purchase request is checked against
//! before any money moves, in the order a buyer meets them.

use super::{Listing, ListingStatus};
use crate::{Price, UserId};

/// Why `buyer` cannot request the listing at that price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuoteRefusal {
    /// No such listing.
    #[error("there is no such listing")]
    NotFound,
    /// The buyer is its seller.
    #[error("you cannot request your own listing")]
    OwnListing,
    /// Reserved, sold or withdrawn (its status).
    #[error("the listing is not available (it is {0})")]
    NotAvailable(&'static str),
    /// An offer above the asking price (which it carries).
    #[error("an offer may not exceed the asking price of {} KRW", .0.as_krw())]
    AboveAsking(Price),
}

impl Listing {
    /// The price `buyer` would pay: `offer` if given (a lower offer), else the asking price.
    pub fn quote(&self, buyer: UserId, offer: Option<Price>) -> Result<Price, QuoteRefusal> {
        let asking = match (self.status, self.price) {
            (ListingStatus::Unregistered, _) | (_, None) => return Err(QuoteRefusal::NotFound),
            _ if self.seller_id == buyer => return Err(QuoteRefusal::OwnListing),
            (ListingStatus::Available, Some(price)) => price,
            (other, _) => return Err(QuoteRefusal::NotAvailable(other.name())),
        };
        match offer {
            Some(offer) if offer > asking => Err(QuoteRefusal::AboveAsking(asking)),
            Some(offer) => Ok(offer),
            None => Ok(asking),
        }
    }
}
