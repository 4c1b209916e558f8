//! `trade`: full trades (register, request, accept, complete) and, for every `sample`-th
//! one, how long after the completion's answer (its commit) the buyer's MyPage shows it
//! (`lag:mypage`) and the payment is paid out (`lag:paid_out`).

use std::time::Instant;

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
    let (done, took) = driver::run(load, prepare, move |parties| {
        let carrot = client.clone();
        async move {
            let mut parties = parties.lock().await;
            parties.n += 1;
            let measure = sample > 0 && parties.n % sample == 0;
            if let (Some(seller), Some(buyer)) = (&parties.seller, &parties.buyer) {
                one(&carrot, seller, buyer, measure).await;
            }
        }
    })
    .await;
    (done, took.as_secs_f64())
}

async fn one(carrot: &Carrot, seller: &User, buyer: &User, measure: bool) {
    let Some(listing) = carrot.register(seller, 25_000).await else {
        return;
    };
    let (status, placed) = carrot.request(buyer, &listing).await;
    if status != 201 {
        return;
    }
    let request = placed["request_id"].as_str().unwrap_or_default().to_owned();
    let payment = placed["payment_id"].as_str().unwrap_or_default().to_owned();
    if carrot.act(seller, &request, "accept").await.0 != 200 {
        return;
    }
    if carrot.act(buyer, &request, "complete").await.0 != 200 {
        return;
    }
    if !measure {
        return;
    }
    let committed = Instant::now();
    let visible = carrot.until(buyer, "/mypage/purchases?limit=1", committed, |body| {
        body["items"][0]["request_id"] == request.as_str()
            && body["items"][0]["status"] == "completed"
    });
    let payment_path = format!("/payments/{payment}");
    let paid = carrot.until(seller, &payment_path, committed, |body| {
        body["status"] == "paid_out"
    });
    let (visible, paid) = tokio::join!(visible, paid);
    for (name, lag) in [("lag:mypage", visible), ("lag:paid_out", paid)] {
        match lag {
            Some(took) => carrot.recorder.record(name, took, 200),
            None => carrot
                .recorder
                .record(name, std::time::Duration::from_secs(10), 0),
        }
    }
}
