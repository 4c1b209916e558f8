//! The read side through HTTP: MyPage for both sides of a trade, a request's detail with
//! its timeline, notifications and their live stream, and nobody reading anyone else's.

use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_problem, spawn_app, Deal, TestApp, User};

fn statuses(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn mypage_shows_each_side_its_trades_and_the_money() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        listing,
        placed,
    } = app.pending_deal("Camera", 100_000).await;
    // A second listing of the same seller: the buyer is rejected there.
    let (other, _) = app.register_listing(&seller, "Lens", 40_000).await;
    let rejected = app.place_request(&buyer, &other).await;
    app.act_ok(&seller, &rejected.request_id, "reject", "rejected")
        .await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.settle().await;

    let mine = app.read(&buyer, "/mypage").await;
    assert_eq!(mine["purchases"]["completed"], 1);
    assert_eq!(mine["purchases"]["rejected"], 1);
    assert_eq!(mine["purchases"]["requested"], 0);
    assert_eq!(
        mine["money"]["paid_out"], 100_000,
        "the buyer's money went to the seller"
    );
    assert_eq!(mine["money"]["refunded"], 40_000);
    assert_eq!(mine["money"]["held"], 0);
    let theirs = app.read(&seller, "/mypage").await;
    assert_eq!(theirs["sales"]["completed"], 1);
    assert_eq!(theirs["money"]["earned"], 100_000);
    assert_eq!(theirs["listings"]["sold"], 1);
    assert_eq!(theirs["listings"]["available"], 1);

    let purchases = app.read(&buyer, "/mypage/purchases").await;
    assert_eq!(
        statuses(&purchases),
        ["rejected", "completed"],
        "newest first"
    );
    let completed = &purchases["items"][1];
    assert_eq!(completed["listing_title"], "Camera");
    assert_eq!(completed["payment"]["status"], "paid_out");
    assert_eq!(completed["payment"]["amount"], 100_000);
    assert_eq!(purchases["items"][0]["payment"]["status"], "refunded");

    let sales = app.read(&seller, "/mypage/sales").await;
    let items = sales["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["listing_id"], listing.as_str());
    assert_eq!(items[1]["status"], "sold");
    assert_eq!(items[1]["requests"][0]["status"], "completed");
    assert_eq!(items[0]["requests"][0]["status"], "rejected");
}

#[tokio::test]
async fn a_requests_detail_shows_its_payment_and_full_timeline() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Tent", 70_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "cancel", "cancelled")
        .await;
    app.settle().await;
    let path = format!("/requests/{}", placed.request_id);
    for user in [&buyer, &seller] {
        let detail = app.read(user, &path).await;
        assert_eq!(detail["status"], "cancelled");
        assert_eq!(detail["price"], 70_000);
        assert_eq!(detail["buyer_id"], buyer.id.as_str());
        assert_eq!(detail["seller_id"], seller.id.as_str());
        assert_eq!(detail["payment"]["payment_id"], placed.payment_id.as_str());
        assert_eq!(detail["payment"]["status"], "refunded");
        let events: Vec<&str> = detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            events,
            [
                "PaymentCaptureStarted",
                "PaymentCaptured",
                "PurchaseRequested",
                "ListingReserved",
                "PurchaseRequestAccepted",
                "PurchaseRequestCancelled",
                "ListingReleased",
                "PaymentRefunded"
            ]
        );
        let cancelled = &detail["timeline"][5];
        assert_eq!(cancelled["by"], "buyer");
        assert_eq!(cancelled["after_acceptance"], true);
        assert_eq!(cancelled["actor"], buyer.id.as_str());
        assert!(cancelled["at"].as_str().unwrap().ends_with('Z'));
    }
}

#[tokio::test]
async fn a_read_with_a_command_token_sees_that_command() {
    let app = spawn_app().await;
    let Deal { seller, placed, .. } = app.pending_deal("Kettle", 9_000).await;
    let token = app
        .act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    for path in [
        format!("/requests/{}", placed.request_id),
        "/mypage/sales".to_owned(),
    ] {
        let response = app
            .get(&seller, &path)
            .header("x-consistency-token", token.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-consistency"], "consistent", "{path}");
        let body: Value = response.json().await.unwrap();
        let status = body["status"]
            .as_str()
            .or(body["items"][0]["requests"][0]["status"].as_str());
        assert_eq!(status, Some("accepted"), "{path}: {body}");
    }
}

#[tokio::test]
async fn nobody_reads_another_users_request_payment_or_mypage() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Bag", 20_000).await;
    let stranger = app.signup("stranger").await;
    app.settle().await;
    for path in [
        format!("/requests/{}", placed.request_id),
        format!("/payments/{}", placed.payment_id),
    ] {
        let response = app.get(&stranger, &path).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
        for owner in [&buyer, &seller] {
            assert_eq!(
                app.get(owner, &path).send().await.unwrap().status(),
                StatusCode::OK
            );
        }
    }
    for path in ["/mypage/purchases", "/mypage/sales", "/notifications"] {
        let theirs = app.read(&stranger, path).await;
        assert_eq!(theirs["items"], Value::Array(vec![]), "{path}");
    }
    let summary = app.read(&stranger, "/mypage").await;
    assert_eq!(summary["purchases"]["requested"], 0);
    assert_eq!(summary["sales"]["requested"], 0);
    for path in [
        "/mypage",
        "/mypage/purchases",
        "/requests/x",
        "/notifications",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[tokio::test]
async fn a_declined_request_is_on_the_buyers_mypage_and_never_shown_to_the_seller() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (listing, _) = app.register_listing(&seller, "Piano", 900_000).await;
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.request_listing(&buyer, &listing, None).await;
    let body = assert_problem(response, StatusCode::PAYMENT_REQUIRED, "payment_declined").await;
    let request_id = body["request_id"].as_str().unwrap();
    app.settle().await;
    let purchases = app.read(&buyer, "/mypage/purchases").await;
    assert_eq!(statuses(&purchases), ["payment_failed"]);
    assert_eq!(purchases["items"][0]["payment"]["status"], "failed");
    let detail = app.read(&buyer, &format!("/requests/{request_id}")).await;
    assert_eq!(detail["status"], "payment_failed");
    let response = app
        .get(&seller, &format!("/requests/{request_id}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let sales = app.read(&seller, "/mypage/sales").await;
    assert_eq!(sales["items"][0]["requests"], Value::Array(vec![]));
    assert_eq!(
        app.read(&seller, "/notifications").await["items"],
        Value::Array(vec![])
    );
}

#[tokio::test]
async fn each_status_change_notifies_the_other_party_newest_first_in_pages() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Drill", 30_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.settle().await;
    let request = placed.request_id.as_str();
    assert_eq!(kinds(&app, &buyer, request).await, ["request_accepted"]);
    assert_eq!(
        kinds(&app, &seller, request).await,
        ["payment_paid_out", "request_completed", "request_received"]
    );
    let response = app
        .get(&buyer, "/notifications?cursor=nonsense")
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

/// The kinds of a user's notifications, newest first, read a page of one at a time.
async fn kinds(app: &TestApp, user: &User, request_id: &str) -> Vec<String> {
    let mut kinds = Vec::new();
    let mut path = "/notifications?limit=1".to_owned();
    loop {
        let page = app.read(user, &path).await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["request_id"], request_id);
            kinds.push(item["kind"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/notifications?limit=1&cursor={cursor}"),
            None => return kinds,
        }
    }
}

/// Reads the stream until an event of `kind` arrives (bounded); returns its data.
async fn next_notification(stream: &mut reqwest::Response, kind: &str) -> Value {
    let mut buffer = String::new();
    let read = async {
        while let Some(chunk) = stream.chunk().await.unwrap() {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            for block in buffer.split("\n\n") {
                let data = block.lines().find_map(|l| l.strip_prefix("data: "));
                if let Some(data) = data {
                    let value: Value = serde_json::from_str(data).unwrap();
                    if value["kind"] == kind {
                        return value;
                    }
                }
            }
        }
        panic!("the stream ended");
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("no {kind} notification arrived"))
}

async fn open_stream(app: &TestApp, user: &User, last_event_id: Option<&str>) -> reqwest::Response {
    let mut call = app.get(user, "/notifications/stream");
    if let Some(id) = last_event_id {
        call = call.header("last-event-id", id);
    }
    let stream = call.send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    stream
}

#[tokio::test]
async fn a_subscribed_buyer_receives_the_acceptance_live_and_can_resume_after_a_drop() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Skis", 150_000).await;
    let mut stream = open_stream(&app, &buyer, None).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let accepted = next_notification(&mut stream, "request_accepted").await;
    assert_eq!(accepted["request_id"], placed.request_id.as_str());
    assert_eq!(accepted["status"], "accepted");
    drop(stream);

    // While disconnected, the seller cancels; reconnecting with the last id catches up.
    let seen = accepted["id"].as_str().unwrap().to_owned();
    app.act_ok(&seller, &placed.request_id, "cancel", "cancelled")
        .await;
    let mut resumed = open_stream(&app, &buyer, Some(&seen)).await;
    let cancelled = next_notification(&mut resumed, "request_cancelled").await;
    assert_eq!(cancelled["status"], "cancelled");
}

#[tokio::test]
async fn a_browser_opens_the_stream_with_a_token_in_its_url_and_replays_what_it_missed() {
    let app = spawn_app().await;
    let Deal {
        seller,
        buyer,
        placed,
        ..
    } = app.pending_deal("Kayak", 90_000).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.settle().await;
    // What an EventSource can do: no header, the token in the URL; `0.0` replays all kept.
    let url = app.url(&format!(
        "/notifications/stream?access_token={}",
        buyer.token
    ));
    let mut stream = app
        .client
        .get(&url)
        .header("last-event-id", "0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let accepted = next_notification(&mut stream, "request_accepted").await;
    assert_eq!(accepted["request_id"], placed.request_id.as_str());
    // A bad token in the URL is refused; and only the stream reads one from a URL.
    for path in [
        "/notifications/stream?access_token=not-a-token".to_owned(),
        format!("/notifications?access_token={}", buyer.token),
        format!("/mypage?access_token={}", buyer.token),
    ] {
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[tokio::test]
async fn operators_see_every_subscribers_progress() {
    let app = spawn_app().await;
    let Deal { seller, .. } = app.pending_deal("Clock", 5_000).await;
    app.settle().await;
    let admin = app.make_admin(&app.signup("ops").await).await;
    let body = app.read(&admin, "/admin/subscriptions").await;
    let names: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    for view in [
        "catalog",
        "mypage",
        "notifications",
        "payments",
        "settlement",
        "timeline",
    ] {
        assert!(names.contains(&view), "{view} missing from {names:?}");
    }
    let first = &body["items"][0];
    assert_eq!(first["lag_events"], 0);
    assert_eq!(first["lag_ms"], 0);
    assert_eq!(first["last_error"], Value::Null);
    assert!(first["checkpoint"].as_str().unwrap().contains('.'));
    let response = app
        .get(&seller, "/admin/subscriptions")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
}
