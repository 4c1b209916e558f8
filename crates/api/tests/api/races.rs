//! The invariants under real concurrency: many commands on the same listing or by the same
//! buyer at once, through HTTP, against one PostgreSQL.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, Placed, TestApp, User};

/// `n` buyers, each with one pending request on `listing`.
async fn pending_requests(app: &TestApp, listing: &str, n: usize) -> Vec<(User, Placed)> {
    let buyers = join_all((0..n).map(|_| app.signup("buyer"))).await;
    let placed = join_all(buyers.iter().map(|b| app.place_request(b, listing))).await;
    buyers.into_iter().zip(placed).collect()
}

async fn statuses(responses: Vec<reqwest::Response>) -> Vec<(StatusCode, Value)> {
    join_all(responses.into_iter().map(|r| async move {
        let status = r.status();
        (status, r.json::<Value>().await.unwrap_or_default())
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_fifty_concurrent_accepts_on_one_listing_exactly_one_wins() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (listing, _) = app.register_listing(&seller, "Game console", 200_000).await;
    let pending = pending_requests(&app, &listing, 50).await;

    let accepts = join_all(
        pending
            .iter()
            .map(|(_, placed)| app.act(&seller, &placed.request_id, "accept")),
    )
    .await;
    let outcomes = statuses(accepts).await;
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one accept wins: {outcomes:?}");
    for (status, body) in &outcomes {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::CONFLICT, "{body}");
        }
    }
    let reservations: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ListingReserved'",
    )
    .bind(&listing)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(reservations, 1);
    let accepted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE event_type = 'PurchaseRequestAccepted'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(accepted, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_requests_by_one_buyer_at_once_open_exactly_one() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let listings =
        join_all((0..10).map(|i| app.register_listing(&seller, "Record", 1_000 + i))).await;
    let attempts = join_all(listings.iter().flat_map(|(listing, _)| {
        [
            app.request_listing(&buyer, listing, None),
            app.request_listing(&buyer, listing, None),
        ]
    }))
    .await;
    let outcomes = statuses(attempts).await;
    for pair in outcomes.chunks(2) {
        let mut codes: Vec<u16> = pair.iter().map(|(s, _)| s.as_u16()).collect();
        codes.sort();
        assert_eq!(codes, [201, 409], "{pair:?}");
        let refused = pair.iter().find(|(s, _)| *s == StatusCode::CONFLICT);
        assert_eq!(
            refused.map(|(_, b)| b["code"].clone()),
            Some("request_already_open".into())
        );
    }
    assert_eq!(
        app.gateway_calls("capture").len(),
        10,
        "the refused ones paid nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_accept_racing_the_buyers_cancel_never_leaves_the_listing_held() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    for round in 0..10 {
        let (listing, _) = app.register_listing(&seller, "Tent", 40_000 + round).await;
        let pending = pending_requests(&app, &listing, 1).await;
        let (buyer, placed) = &pending[0];
        let (accept, cancel) = tokio::join!(
            app.act(&seller, &placed.request_id, "accept"),
            app.act(buyer, &placed.request_id, "cancel"),
        );
        assert_eq!(
            cancel.status(),
            StatusCode::OK,
            "the buyer may cancel either way"
        );
        assert!(
            [StatusCode::OK, StatusCode::CONFLICT].contains(&accept.status()),
            "{}",
            accept.status()
        );
        // Whatever the interleaving, the request ends cancelled and the listing free.
        let events = app.events_of("listing", &listing).await;
        let held = events.iter().filter(|e| *e == "ListingReserved").count();
        let freed = events.iter().filter(|e| *e == "ListingReleased").count();
        assert_eq!(held, freed, "round {round}: {events:?}");
        let last = app.events_of("purchase_request", &placed.request_id).await;
        assert_eq!(
            last.last().map(String::as_str),
            Some("PurchaseRequestCancelled")
        );
    }
}
