//! Fresh (listing, buyer) pairs for request-heavy scenarios: a buyer has one open request
//! per listing, so each worker walks a shared pool of buyers over a listing of its own and
//! registers a new listing when the pool is used up (registrations are recorded apart).

use std::sync::Arc;

use crate::client::{Carrot, User};

/// A worker's seller, its current listing, and where it is in the buyers' pool.
pub struct Pairs {
    seller: Option<User>,
    buyers: Arc<Vec<User>>,
    listing: Option<String>,
    next: usize,
}

impl Pairs {
    /// A worker's pairs over the shared `buyers`.
    pub async fn new(carrot: &Carrot, buyers: Arc<Vec<User>>) -> Pairs {
        Pairs {
            seller: carrot.signup().await,
            buyers,
            listing: None,
            next: 0,
        }
    }

    /// The next buyer and a listing it has no request on.
    pub async fn next(&mut self, carrot: &Carrot) -> Option<(User, String)> {
        if self.buyers.is_empty() {
            return None;
        }
        if self.listing.is_none() || self.next == self.buyers.len() {
            self.listing = carrot.register(self.seller.as_ref()?, 90_000).await;
            self.next = 0;
        }
        let buyer = self.buyers[self.next].clone();
        self.next += 1;
        Some((buyer, self.listing.clone()?))
    }
}

/// `n` signed-up buyers, made before the clock starts.
pub async fn buyers(carrot: &Carrot, n: usize) -> Arc<Vec<User>> {
    let made = futures_util::future::join_all((0..n).map(|_| carrot.signup())).await;
    Arc::new(made.into_iter().flatten().collect())
}
