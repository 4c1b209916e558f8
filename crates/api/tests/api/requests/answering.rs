//! Answering a request: reject, cancel, who may accept or complete, and from which status.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app};

use super::market;

#[tokio::test]
async fn a_rejected_request_leaves_the_listing_available() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    let response = app
        .post(&seller, &format!("/requests/{}/reject", placed.request_id))
        .json(&json!({"reason": "sold it at the flea market"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "rejected");
    let view = app
        .listing_after(
            &seller,
            &listing,
            body["consistency_token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(view["status"], "available");
}

#[tokio::test]
async fn the_buyer_cancels_a_pending_request() {
    let app = spawn_app().await;
    let (_, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    app.act_ok(&buyer, &placed.request_id, "cancel", "cancelled")
        .await;
    assert_eq!(
        app.events_of("listing", &listing).await,
        ["ListingRegistered"],
        "a pending request never held the listing"
    );
}

#[tokio::test]
async fn cancelling_an_accepted_request_makes_the_listing_available_again_for_either_side() {
    let app = spawn_app().await;
    for canceller in ["buyer", "seller"] {
        let (seller, buyer, listing) = market(&app).await;
        let placed = app.place_request(&buyer, &listing).await;
        app.act_ok(&seller, &placed.request_id, "accept", "accepted")
            .await;
        let who = if canceller == "buyer" {
            &buyer
        } else {
            &seller
        };
        let token = app
            .act_ok(who, &placed.request_id, "cancel", "cancelled")
            .await;
        let view = app.listing_after(&buyer, &listing, &token).await;
        assert_eq!(view["status"], "available", "cancelled by the {canceller}");
        // The listing can be requested and accepted again.
        let other = app.signup("next").await;
        let again = app.place_request(&other, &listing).await;
        app.act_ok(&seller, &again.request_id, "accept", "accepted")
            .await;
    }
}

#[tokio::test]
async fn only_the_seller_answers_and_only_the_buyer_completes_and_strangers_see_nothing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let stranger = app.signup("stranger").await;
    let placed = app.place_request(&buyer, &listing).await;
    let id = placed.request_id.as_str();

    for action in ["accept", "reject"] {
        let response = app.act(&buyer, id, action).await;
        assert_problem(response, StatusCode::FORBIDDEN, "not_your_listing").await;
    }
    for action in ["accept", "reject", "complete", "cancel"] {
        let response = app.act(&stranger, id, action).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = app
            .client
            .post(app.url(&format!("/requests/{id}/{action}")))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    app.act_ok(&seller, id, "accept", "accepted").await;
    let response = app.act(&seller, id, "complete").await;
    assert_problem(response, StatusCode::FORBIDDEN, "not_your_request").await;
    assert_eq!(
        app.events_of("purchase_request", id).await,
        ["PurchaseRequested", "PurchaseRequestAccepted"],
        "no refusal wrote anything"
    );
}

#[tokio::test]
async fn transitions_not_allowed_from_the_current_status_are_409_invalid_transition() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let placed = app.place_request(&buyer, &listing).await;
    let id = placed.request_id.as_str();
    // Requested: it cannot be completed yet, nor cancelled by the seller.
    let response = app.act(&buyer, id, "complete").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    let response = app.act(&seller, id, "cancel").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    // Accepted: it cannot be rejected.
    app.act_ok(&seller, id, "accept", "accepted").await;
    let response = app.act(&seller, id, "reject").await;
    assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    // Completed: final.
    app.act_ok(&buyer, id, "complete", "completed").await;
    for (user, action) in [(&buyer, "cancel"), (&seller, "cancel"), (&seller, "accept")] {
        let response = app.act(user, id, action).await;
        assert_problem(response, StatusCode::CONFLICT, "invalid_transition").await;
    }
}

#[tokio::test]
async fn a_second_request_cannot_be_accepted_while_another_holds_the_listing() {
    let app = spawn_app().await;
    let (seller, buyer, listing) = market(&app).await;
    let other = app.signup("other").await;
    let first = app.place_request(&buyer, &listing).await;
    let second = app.place_request(&other, &listing).await;
    app.act_ok(&seller, &first.request_id, "accept", "accepted")
        .await;
    let response = app.act(&seller, &second.request_id, "accept").await;
    // Refused because the listing is held; or, if the saga has already rejected the second
    // request (`listing_reserved`, its job), because a rejected request cannot be accepted.
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: serde_json::Value = response.json().await.unwrap();
    let events = app.events_of("purchase_request", &second.request_id).await;
    let rest: Vec<&str> = events[1..].iter().map(String::as_str).collect();
    match problem["code"].as_str() {
        Some("listing_not_available") => {
            assert!(
                rest.is_empty() || rest == ["PurchaseRequestRejected"],
                "{events:?}"
            )
        }
        Some("invalid_transition") => assert_eq!(rest, ["PurchaseRequestRejected"]),
        other => panic!("refused with {other:?}"),
    }
    assert_eq!(events[0], "PurchaseRequested");
}
