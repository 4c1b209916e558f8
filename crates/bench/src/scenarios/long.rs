//! `long`: what a command costs on an aggregate with a long history. A listing gets 10,000
//! edits written straight to the store, then sequential edits go to it and to a fresh
//! listing in turn; their latencies (`edit:long`, `edit:fresh`) compare.

use serde_json::json;
use sqlx::PgPool;

use crate::client::{Carrot, User};

/// Seeds the history, then makes `edits` edits on each listing; returns the edits done.
pub async fn run(
    carrot: &Carrot,
    pool: &PgPool,
    history: usize,
    edits: usize,
) -> Result<(u64, f64), sqlx::Error> {
    let Some(seller) = carrot.signup().await else {
        return Ok((0, 0.0));
    };
    let (Some(long), Some(fresh)) = (
        carrot.register(&seller, 10_000).await,
        carrot.register(&seller, 10_000).await,
    ) else {
        return Ok((0, 0.0));
    };
    crate::seed::edits(pool, &long, history).await?;
    // Warm both (the long one's first command may take a snapshot).
    edit(carrot, &seller, &long, 0, "edit:warm").await;
    edit(carrot, &seller, &fresh, 0, "edit:warm").await;
    let started = std::time::Instant::now();
    for n in 1..=edits {
        edit(carrot, &seller, &long, n, "edit:long").await;
        edit(carrot, &seller, &fresh, n, "edit:fresh").await;
    }
    Ok(((2 * edits) as u64, started.elapsed().as_secs_f64()))
}

async fn edit(carrot: &Carrot, seller: &User, listing: &str, n: usize, op: &str) {
    let body = json!({"price": 10_001 + (n % 2)});
    carrot
        .call(
            op,
            reqwest::Method::PATCH,
            &format!("/listings/{listing}"),
            Some(seller),
            Some(&body),
        )
        .await;
}
