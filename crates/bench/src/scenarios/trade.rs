//! `trade`: full trades (register, request, accept, complete) and, for every `sample`-th
//! one, how long after the completion's answer (its commit) the buyer's MyPage shows it
//! (`lag:mypage`, through `GET /requests/{id}`, which reads MyPage's view) and the payment is paid out (`lag:paid_out`).
//!
//! The lags are watched by tasks of their own, polling every 5 ms, so a worker goes on
//! trading at its pace while an earlier trade settles; the run waits for them at the end.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::{Carrot, User};
use crate::driver::{self, Load};

/// A worker's parties.
pub struct Parties {
    seller: Option<User>,
    buyer: Option<User>,
    n: u64,
}

/// Runs the scenario; returns (trades, seconds).
pub async fn run(carrot: &Carrot, load: Load, sample: u64) -> (u64, f64) {
    let prepare = |_| async {
        Parties {
            seller: carrot.signup().await,
            buyer: carrot.signup().await,
            n: 0,
        }
    };
    let client = carrot.clone();
    let watches: Watches = Arc::default();
    let all = watches.clone();
    let (done, took) = driver::run(load, prepare, move |parties| {
        let (carrot, watches) = (client.clone(), watches.clone());
        async move {
            let mut parties = parties.lock().await;
            parties.n += 1;
            let measure = sample > 0 && parties.n % sample == 0;
            if let (Some(seller), Some(buyer)) = (&parties.seller, &parties.buyer) {
                if let Some(watch) = one(&carrot, seller, buyer, measure).await {
                    watches
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(watch);
                }
            }
        }
    })
    .await;
    let pending = std::mem::take(&mut *all.lock().unwrap_or_else(PoisonError::into_inner));
    for watch in pending {
        let _ = watch.await;
    }
    (done, took.as_secs_f64())
}

/// The lag watches started so far.
type Watches = Arc<Mutex<Vec<JoinHandle<()>>>>;

/// One trade; the task watching its lags, if it is measured.
async fn one(
    carrot: &Carrot,
    seller: &User,
    buyer: &User,
    measure: bool,
) -> Option<JoinHandle<()>> {
    let listing = carrot.register(seller, 25_000).await?;
    let (status, placed) = carrot.request(buyer, &listing).await;
    if status != 201 {
        return None;
    }
    let request = placed["request_id"].as_str().unwrap_or_default().to_owned();
    let payment = placed["payment_id"].as_str().unwrap_or_default().to_owned();
    if carrot.act(seller, &request, "accept").await.0 != 200 {
        return None;
    }
    if carrot.act(buyer, &request, "complete").await.0 != 200 {
        return None;
    }
    if !measure {
        return None;
    }
    let committed = Instant::now();
    let (carrot, seller, buyer) = (carrot.clone(), seller.clone(), buyer.clone());
    Some(tokio::spawn(async move {
        let request_path = format!("/requests/{request}");
        let visible = carrot.until(&buyer, &request_path, committed, |body| {
            body["status"] == "completed"
        });
        let payment_path = format!("/payments/{payment}");
        let paid = carrot.until(&seller, &payment_path, committed, |body| {
            body["status"] == "paid_out"
        });
        let (visible, paid) = tokio::join!(visible, paid);
        for (name, lag) in [("lag:mypage", visible), ("lag:paid_out", paid)] {
            match lag {
                Some(took) => carrot.recorder.record(name, took, 200),
                None => carrot.recorder.record(name, Duration::from_secs(10), 0),
            }
        }
    }))
}
