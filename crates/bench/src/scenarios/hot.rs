//! `hot`: 100 buyers request one listing at the same instant, round after round. Requests
//! are aggregates of their own, so none should ever be refused for a conflict: every answer
//! should be 201.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::pairs;
use crate::client::Carrot;

/// Runs rounds for about `duration`; returns (successful requests, seconds spent requesting).
pub async fn run(carrot: &Carrot, buyers: usize, duration: Duration) -> (u64, f64) {
    let crowd = pairs::buyers(carrot, buyers).await;
    let Some(seller) = carrot.signup().await else {
        return (0, 0.0);
    };
    let (mut succeeded, mut requesting) = (0u64, Duration::ZERO);
    let end = Instant::now() + duration;
    while Instant::now() < end {
        let Some(listing) = carrot.register(&seller, 150_000).await else {
            continue;
        };
        let started = Instant::now();
        let answers = join_all(crowd.iter().map(|buyer| carrot.request(buyer, &listing))).await;
        requesting += started.elapsed();
        succeeded += answers.iter().filter(|(status, _)| *status == 201).count() as u64;
    }
    (succeeded, requesting.as_secs_f64())
}
