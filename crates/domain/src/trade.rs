//! The parties and the listing of one trade: carried by every purchase request and
//! payment event, so any reader of one event knows whom it concerns.

use serde::{Deserialize, Serialize};

use crate::{ListingId, RequestId, UserId};

/// Who trades what, under which request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Trade {
    /// The purchase request (the correlation id of the whole trade).
    pub request_id: RequestId,
    /// The listing.
    pub listing_id: ListingId,
    /// Who buys.
    pub buyer_id: UserId,
    /// Who sells.
    pub seller_id: UserId,
}

/// Where a user stands in a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The buyer.
    Buyer,
    /// The seller.
    Seller,
}

impl Trade {
    /// The user's part in this trade, if any.
    pub fn party(&self, user: UserId) -> Option<Party> {
        if user == self.buyer_id {
            Some(Party::Buyer)
        } else if user == self.seller_id {
            Some(Party::Seller)
        } else {
            None
        }
    }
}
