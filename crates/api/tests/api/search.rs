//! Catalog search through the HTTP edge: Korean and English text, `sort=relevance` and its
//! pages, and the mistakes a client can make with them (422, nothing read).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{refused, spawn_app, TestApp, User};

async fn listing(app: &TestApp, seller: &User, title: &str, description: &str) -> String {
    let body = json!({"title": title, "description": description, "price": 10_000});
    let response = app.post_listing(seller, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["consistency_token"].as_str().unwrap().to_owned()
}

async fn titles(app: &TestApp, user: &User, token: &str, query: &str) -> (Vec<String>, Value) {
    let response = app
        .get(user, &format!("/listings?{query}"))
        .header("x-consistency-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    let body: Value = response.json().await.unwrap();
    let titles = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect();
    (titles, body["next_cursor"].clone())
}

#[tokio::test]
async fn korean_and_english_are_found_and_relevance_puts_titles_first() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let mut token = String::new();
    for (title, description) in [
        ("산악자전거 팝니다", "거의 새것"),
        ("Road bike", "Carbon frame"),
        ("Helmet", "Fits any bike, 자전거 헬멧"),
        ("Bikes for kids", "Two of them"),
        ("자전거 자물쇠", "Bike lock, 직거래"),
    ] {
        // Tokens of one process rise with the log: the last is the newest.
        token = listing(&app, &seller, title, description).await;
    }

    let (korean, _) = titles(&app, &seller, &token, "q=자전거").await;
    assert_eq!(
        korean,
        ["자전거 자물쇠", "Helmet", "산악자전거 팝니다"],
        "newest first, in titles and descriptions, within a word too"
    );
    let (english, _) = titles(&app, &seller, &token, "q=BIKE").await;
    assert_eq!(
        english,
        ["자전거 자물쇠", "Bikes for kids", "Helmet", "Road bike"]
    );

    // By relevance: a whole word in the title, then within a title word, then only in the
    // description (newest first among equals), cut into pages by its own cursor.
    let (first, cursor) = titles(&app, &seller, &token, "q=bike&sort=relevance&limit=2").await;
    assert_eq!(first, ["Road bike", "Bikes for kids"]);
    let cursor = cursor.as_str().expect("more to come").to_owned();
    let next = format!("q=bike&sort=relevance&limit=2&cursor={cursor}");
    let (rest, end) = titles(&app, &seller, &token, &next).await;
    assert_eq!(rest, ["자전거 자물쇠", "Helmet"]);
    assert!(end.is_null());
    let (korean, _) = titles(&app, &seller, &token, "q=자전거&sort=relevance").await;
    assert_eq!(korean, ["자전거 자물쇠", "산악자전거 팝니다", "Helmet"]);
}

#[tokio::test]
async fn sorting_mistakes_are_422_naming_the_field() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    let newest_cursor = format!("1700000000000000_{}", uuid::Uuid::nil().simple());
    let ranked_cursor = format!("r4_{newest_cursor}");
    for (query, field) in [
        ("sort=relevance".to_owned(), "sort"),
        ("sort=price".to_owned(), "query"),
        (
            format!("q=bike&sort=relevance&cursor={newest_cursor}"),
            "cursor",
        ),
        (format!("q=bike&cursor={ranked_cursor}"), "cursor"),
    ] {
        let body = refused(&app, &user, &format!("/listings?{query}")).await;
        assert_eq!(body["errors"][0]["field"], field, "{query}");
    }
}
