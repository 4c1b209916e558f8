//! The single-operation scenarios: `register` (listing registrations), `request` (purchase
//! requests, each capturing a payment), `read` (a listing by id and MyPage, or listings by
//! id only).

use std::sync::Arc;
use std::time::Instant;

use rand::Rng;

use super::pairs::{self, Pairs};
use crate::client::{Carrot, User};
use crate::driver::{self, Load};

/// Listing registrations by one seller per worker.
pub async fn register(carrot: &Carrot, load: Load) -> (u64, f64) {
    let client = carrot.clone();
    let (done, took) = driver::run(
        load,
        |_| carrot.signup(),
        move |seller| {
            let carrot = client.clone();
            async move {
                if let Some(seller) = seller.lock().await.as_ref() {
                    carrot.register(seller, 12_000).await;
                }
            }
        },
    )
    .await;
    (done, took.as_secs_f64())
}

/// Purchase requests on fresh pairs.
pub async fn request(carrot: &Carrot, load: Load) -> (u64, f64) {
    let buyers = pairs::buyers(carrot, 50).await;
    let client = carrot.clone();
    let prepare = |_| Pairs::new(carrot, buyers.clone());
    let (done, took) = driver::run(load, prepare, move |pairs| {
        let carrot = client.clone();
        async move {
            let mut pairs = pairs.lock().await;
            if let Some((buyer, listing)) = pairs.next(&carrot).await {
                carrot.request(&buyer, &listing).await;
            }
        }
    })
    .await;
    (done, took.as_secs_f64())
}

/// What a `read` run reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Listings by id and the reader's MyPage, alternately.
    ListingAndMyPage,
    /// Listings by id only.
    ListingById,
}

/// Reads over 200 registered listings, once all of them are visible.
pub async fn read(carrot: &Carrot, load: Load, reads: Reads) -> (u64, f64) {
    let Some(seller) = carrot.signup().await else {
        return (0, 0.0);
    };
    let listings =
        futures_util::future::join_all((0..200).map(|_| carrot.register(&seller, 5_000))).await;
    let listings: Vec<String> = listings.into_iter().flatten().collect();
    for listing in &listings {
        let path = format!("/listings/{listing}");
        let visible = |body: &serde_json::Value| body["listing_id"].as_str() == Some(listing);
        carrot.until(&seller, &path, Instant::now(), visible).await;
    }
    let listings = Arc::new(listings);
    let seller = Arc::new(seller);
    let client = carrot.clone();
    let (done, took) = driver::run(
        load,
        |_| async { 0u64 },
        move |n| {
            let (carrot, listings, seller) = (client.clone(), listings.clone(), seller.clone());
            async move {
                let mut n = n.lock().await;
                *n += 1;
                let mypage = reads == Reads::ListingAndMyPage && n.is_multiple_of(2);
                read_one(&carrot, &seller, &listings, mypage).await;
            }
        },
    )
    .await;
    (done, took.as_secs_f64())
}

async fn read_one(carrot: &Carrot, reader: &User, listings: &[String], mypage: bool) {
    if mypage {
        carrot.get("read:mypage", reader, "/mypage").await;
    } else {
        let listing = &listings[rand::thread_rng().gen_range(0..listings.len().max(1))];
        carrot
            .get("read:listing", reader, &format!("/listings/{listing}"))
            .await;
    }
}
