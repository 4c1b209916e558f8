//! Closing an account, black-box: refused with the open trades listed while the person is
//! in one; then every session ends, the name can never log in or be taken again, nothing
//! the person typed is left anywhere in the database (a raw scan of every table, the event
//! log included), a full rebuild equals the live views, `carrot events` shows `[erased]`,
//! and the other party's MyPage keeps the trade. An operator can close one too, audited.
//! A listing registered by a request in flight as the account closed is withdrawn by the
//! workers, and a process that reads the key afterwards refuses the person's text.

use std::collections::HashMap;
use std::sync::Arc;

use carrot_api::auth::closing::finish_closings;
use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand};
use carrot_domain::metadata::ACTOR;
use carrot_domain::{ListingId, Price, SystemClock, UserId};
use carrot_projections::write_side::WriteSide;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, carrot_cli_alongside, spawn_app, TestApp, User};

/// What every string the person types carries, so that a scan can find any copy.
const MARK: &str = "ERASE-MARK-4417";
const PASSWORD: &str = "correct horse battery";

async fn signup_named(app: &TestApp, prefix: &str) -> User {
    let username = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let body = json!({"username": username, "password": PASSWORD,
                      "display_name": format!("Kim {MARK} display")});
    let response = app.signup_response(&body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    User {
        id: body["user_id"].as_str().unwrap().to_owned(),
        username,
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

async fn close(app: &TestApp, user: &User, password: &str) -> reqwest::Response {
    app.client
        .delete(app.url("/me"))
        .bearer_auth(&user.token)
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap()
}

/// Every table of every schema whose rows, as text, hold `needle`.
async fn tables_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p')
            AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg_toast%'",
    )
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "the scan sees every table: {tables:?}");
    let mut holding = Vec::new();
    for table in tables {
        let found: bool = sqlx::query_scalar(&format!(
            "SELECT EXISTS (SELECT 1 FROM {table} t WHERE t::text LIKE '%' || $1 || '%')"
        ))
        .bind(needle)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
        if found {
            holding.push(table);
        }
    }
    holding
}

/// A seller's three listings (one sold, one whose request they rejected with a reason, one
/// still on sale) and the buyer of the first.
struct History {
    seller: User,
    buyer: User,
    sold: String,
    sold_request: String,
    rejected_request: String,
    on_sale: String,
}

async fn history(app: &TestApp) -> History {
    let seller = signup_named(app, "closer").await;
    let buyer = app.signup("buyer").await;
    let body = json!({"title": format!("{MARK} lamp"), "description": format!("{MARK} warm"),
                      "price": 20_000, "category": format!("{MARK} lights")});
    let created: Value = app.post_listing(&seller, &body).await.json().await.unwrap();
    let sold = created["listing_id"].as_str().unwrap().to_owned();
    let edit =
        json!({"title": format!("{MARK} floor lamp"), "description": format!("{MARK} tall")});
    let response = app.patch(&seller, &format!("/listings/{sold}")).json(&edit);
    assert_eq!(response.send().await.unwrap().status(), StatusCode::OK);
    let placed = app.place_request(&buyer, &sold).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;

    let (second, _) = app
        .register_listing(&seller, &format!("{MARK} desk"), 15_000)
        .await;
    let rejected = app.place_request(&buyer, &second).await;
    let path = format!("/requests/{}/reject", rejected.request_id);
    let reason = json!({"reason": format!("{MARK} sold it at the market")});
    let response = app.post(&seller, &path).json(&reason).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (on_sale, _) = app
        .register_listing(&seller, &format!("{MARK} chair"), 9_000)
        .await;
    History {
        seller,
        buyer,
        sold,
        sold_request: placed.request_id,
        rejected_request: rejected.request_id,
        on_sale,
    }
}

#[tokio::test]
async fn closing_an_account_erases_what_its_person_typed_everywhere_and_keeps_the_trades() {
    let app = spawn_app().await;
    let h = history(&app).await;

    // While a buyer's request waits on the seller, the seller cannot leave.
    let pending = app.place_request(&h.buyer, &h.on_sale).await;
    let refused = close(&app, &h.seller, PASSWORD).await;
    let problem = assert_problem(refused, StatusCode::CONFLICT, "open_trades").await;
    assert_eq!(
        problem["open_trades"][0]["request_id"],
        pending.request_id.as_str()
    );
    assert_eq!(problem["open_trades"][0]["role"], "seller");
    app.act_ok(&h.buyer, &pending.request_id, "cancel", "cancelled")
        .await;
    app.settle().await;
    assert!(
        !tables_holding(&app, MARK).await.is_empty(),
        "the scan finds them before"
    );

    let wrong = close(&app, &h.seller, "not the password").await;
    assert_problem(wrong, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let closed = close(&app, &h.seller, PASSWORD).await;
    assert_eq!(closed.status(), StatusCode::NO_CONTENT);
    app.settle().await;

    // Nothing the person typed is left in any table, the log included.
    assert_eq!(tables_holding(&app, MARK).await, Vec::<String>::new());
    assert_eq!(
        tables_holding(&app, &h.seller.username).await,
        Vec::<String>::new()
    );

    // The account is gone for good: its token, its password, its name.
    let response = app.get(&h.seller, "/mypage").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let login = json!({"username": h.seller.username, "password": PASSWORD});
    let response = app.client.post(app.url("/auth/login")).json(&login).send();
    assert_problem(
        response.await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let again = json!({"username": h.seller.username, "password": PASSWORD});
    assert_problem(
        app.signup_response(&again).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;

    // The listing on sale was withdrawn; what the seller wrote reads [erased].
    let listing = app
        .read(&h.buyer, &format!("/listings/{}", h.on_sale))
        .await;
    assert_eq!(listing["status"], "withdrawn");
    let listing = app.read(&h.buyer, &format!("/listings/{}", h.sold)).await;
    assert_eq!(
        (listing["title"].as_str(), listing["status"].as_str()),
        (Some("[erased]"), Some("sold"))
    );
    assert_eq!(listing["price"], 20_000);

    // The buyer's MyPage keeps both trades whole.
    let purchases = app.read(&h.buyer, "/mypage/purchases").await;
    let find = |id: &str| {
        purchases["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["request_id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} missing from {purchases}"))
    };
    let bought = find(&h.sold_request);
    assert_eq!(
        (bought["status"].as_str(), bought["price"].as_i64()),
        (Some("completed"), Some(20_000))
    );
    assert_eq!(bought["payment"]["status"], "paid_out");
    let rejected = find(&h.rejected_request);
    assert_eq!(
        (rejected["status"].as_str(), rejected["reason"].as_str()),
        (Some("rejected"), Some("[erased]"))
    );
    assert_eq!(bought["listing_title"], "[erased]");
    let detail = app
        .read(&h.buyer, &format!("/requests/{}", h.rejected_request))
        .await;
    assert!(
        detail["timeline"].to_string().contains("[erased]"),
        "{detail}"
    );

    // A rebuild of every view from the log equals the live views.
    let verified = carrot_cli_alongside(&["replay", "--verify"], &app.db.url).await;
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // And the operators' view of the log shows the marker, never the text.
    let events = carrot_cli_alongside(
        &[
            "events",
            "--aggregate",
            &format!("listing/{}", h.sold),
            "--json",
        ],
        &app.db.url,
    )
    .await;
    let printed = String::from_utf8_lossy(&events.stdout);
    assert!(
        printed.contains("[erased]") && !printed.contains(MARK),
        "{printed}"
    );
    let closing = app
        .event_payload("account", &h.seller.id, "AccountClosed")
        .await;
    assert_eq!(closing["by"]["user"], h.seller.id.as_str());
}

#[tokio::test]
async fn an_operator_closes_an_account_for_its_person_and_the_log_says_who() {
    let app = spawn_app().await;
    let person = signup_named(&app, "asked").await;
    app.register_listing(&person, &format!("{MARK} bike"), 50_000)
        .await;
    let operator = app.make_admin(&app.signup("ops").await).await;
    let not_admin = carrot_cli_alongside(
        &["admin", "close", "--by", &person.username, &person.username],
        &app.db.url,
    )
    .await;
    assert!(
        !not_admin.status.success(),
        "only an admin closes for someone"
    );

    let closed = carrot_cli_alongside(
        &[
            "admin",
            "close",
            "--by",
            &operator.username,
            &person.username,
        ],
        &app.db.url,
    )
    .await;
    assert!(
        closed.status.success(),
        "{}",
        String::from_utf8_lossy(&closed.stderr)
    );
    app.settle().await;
    let closing = app
        .event_payload("account", &person.id, "AccountClosed")
        .await;
    assert_eq!(closing["by"]["user"], operator.id.as_str());
    assert_eq!(tables_holding(&app, MARK).await, Vec::<String>::new());
    // Its token is refused by the API process within a second (it reads revocations).
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let response = app.get(&person, "/mypage").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

fn register(seller: &User, title: &str) -> (String, ListingCommand) {
    let listing = ListingId::new();
    let command = ListingCommand::RegisterListing {
        listing_id: listing,
        seller_id: UserId::from_uuid(seller.id.parse().unwrap()),
        title: ListingTitle::parse(title).unwrap(),
        description: Description::parse("").unwrap(),
        price: Price::parse(1_000).unwrap(),
        category: None,
    };
    (listing.to_string(), command)
}

#[tokio::test]
async fn a_listing_slipped_in_as_the_account_closed_is_withdrawn_and_a_closed_sellers_text_refused()
{
    let app = spawn_app().await;
    let seller = signup_named(&app, "racer").await;
    let by = HashMap::from([(ACTOR.to_owned(), seller.id.clone())]);
    // Another process, which has sealed this seller's text and keeps their key a while.
    let other = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let (first, command) = register(&seller, "first lamp");
    other
        .create::<Listing>(&first, command, by.clone())
        .await
        .unwrap();
    assert_eq!(
        close(&app, &seller, PASSWORD).await.status(),
        StatusCode::NO_CONTENT
    );

    // A request in flight as the account closed, on a process holding the key.
    let (late, command) = register(&seller, &format!("{MARK} late lamp"));
    other
        .create::<Listing>(&late, command, by.clone())
        .await
        .unwrap();
    app.settle().await;
    assert!(
        tables_holding(&app, MARK).await.is_empty(),
        "sealed with a key that is gone"
    );
    let listing = app
        .read(&app.signup("reader").await, &format!("/listings/{late}"))
        .await;
    assert_eq!(
        (listing["title"].as_str(), listing["status"].as_str()),
        (Some("[erased]"), Some("available"))
    );
    // The workers' pass withdraws it.
    assert_eq!(finish_closings(&app.db.pool, &other).await.unwrap(), 1);
    app.settle().await;
    let listing = app
        .read(&app.signup("reader").await, &format!("/listings/{late}"))
        .await;
    assert_eq!(listing["status"], "withdrawn");

    // A process that reads the key now finds it destroyed: the seller's text is refused.
    let fresh = WriteSide::new(
        app.db.pool.clone(),
        Arc::new(SystemClock),
        app.gateway.clone(),
    );
    let (refused, command) = register(&seller, "after closing");
    assert!(fresh
        .create::<Listing>(&refused, command, by)
        .await
        .is_err());
    assert!(app.events_of("listing", &refused).await.is_empty());
}
