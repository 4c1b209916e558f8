//! Taking one's data: `GET /me/export` holds everything Carrot keeps about the caller (the
//! account, sessions, listings, requests on both sides, payments, notifications, and the
//! events of those listings, requests and payments), and nothing of anyone else's trades.

use carrot_api::payment::SimulationProfile;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{eventually, spawn_app, Deal};

fn ids(items: &Value, field: &str) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[field].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_export_holds_everything_about_the_caller_and_nothing_about_others() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Camping stove", 45_000).await;
    let token = app
        .act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let elsewhere = app.pending_deal("Tent", 80_000).await;
    let path = "/me/export";
    let read = |user| {
        let request = app.get(user, path).header("X-Consistency-Token", &token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };

    let mine = read(&buyer).await;
    assert_eq!(mine["account"]["username"], buyer.username.as_str());
    assert_eq!(mine["account"]["user_id"], buyer.id.as_str());
    assert!(mine["account"].get("password_hash").is_none());
    assert_eq!(mine["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(
        ids(&mine["purchases"], "request_id"),
        [placed.request_id.as_str()]
    );
    assert_eq!(mine["purchases"][0]["status"], "accepted");
    assert_eq!(
        ids(&mine["payments"], "payment_id"),
        [placed.payment_id.as_str()]
    );
    assert!(mine["listings"].as_array().unwrap().is_empty());
    assert!(mine["sales"].as_array().unwrap().is_empty());
    assert!(!mine["notifications"].as_array().unwrap().is_empty());
    // The events of their request and its payment; the listing is the seller's.
    let aggregates: Vec<String> = ids(&mine["events"], "aggregate_id");
    for own in [&placed.request_id, &placed.payment_id] {
        assert!(aggregates.contains(own), "{own} in {aggregates:?}");
    }
    // Their own acts keep their metadata; the seller's accept keeps who and which trade only.
    let events = mine["events"].as_array().unwrap();
    let of = |event_type: &str| {
        let event = events.iter().find(|e| e["event_type"] == event_type);
        event.unwrap()["metadata"].clone()
    };
    assert!(of("PurchaseRequested")["http_request_id"].is_string());
    let accepted = of("PurchaseRequestAccepted");
    assert_eq!(accepted["actor"], seller.id.as_str());
    assert_eq!(accepted["correlation_id"], placed.request_id.as_str());
    assert!(accepted.get("http_request_id").is_none(), "{accepted}");
    let others = [&listing, &elsewhere.listing, &elsewhere.placed.request_id];
    assert!(
        others.iter().all(|id| !aggregates.contains(id)),
        "{aggregates:?}"
    );

    // A buyer whose card is declined on another of the seller's listings: that payment never
    // reached the seller, and stays the buyer's alone (as `GET /payments/{id}` has it).
    let (lantern, _) = app.register_listing(&seller, "Lantern", 9_000).await;
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let declined = app.signup("declined").await;
    let response = app.request_listing(&declined, &lantern, None).await;
    assert_eq!(response.status(), StatusCode::PAYMENT_REQUIRED);
    app.gateway.set_profile(SimulationProfile::default());
    let seller_uuid: uuid::Uuid = seller.id.parse().unwrap();
    eventually("the declined payment in the payments view", || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM payments.payments WHERE seller_id = $1")
                .bind(seller_uuid)
                .fetch_one(&app.db.pool)
                .await
                .ok()?;
        (n == 2).then_some(())
    })
    .await;

    let theirs = read(&seller).await;
    assert_eq!(
        ids(&theirs["payments"], "payment_id"),
        [placed.payment_id.as_str()],
        "not the declined buyer's payment"
    );
    assert_eq!(
        ids(&theirs["listings"], "listing_id"),
        [listing.as_str(), lantern.as_str()]
    );
    assert!(ids(&theirs["events"], "aggregate_id").contains(&listing));
    assert_eq!(theirs["listings"][0]["description"], "in good shape");
    assert_eq!(
        ids(&theirs["sales"], "request_id"),
        [placed.request_id.as_str()]
    );
    assert!(theirs["purchases"].as_array().unwrap().is_empty());

    let stranger = app.signup("stranger").await;
    let nothing = read(&stranger).await;
    for part in [
        "listings",
        "purchases",
        "sales",
        "payments",
        "notifications",
        "events",
    ] {
        assert!(nothing[part].as_array().unwrap().is_empty(), "{part}");
    }
}
