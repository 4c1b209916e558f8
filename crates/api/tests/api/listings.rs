use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, test_settings};

#[tokio::test]
async fn a_registered_listing_is_read_back_from_the_catalog_with_its_token() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let response = app
        .post_listing(
            &seller,
            &json!({"title": "  Desk lamp ", "description": "Warm light", "price": 15000, "category": "furniture"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["status"], "available");
    let id = created["listing_id"].as_str().unwrap();
    assert_eq!(location, format!("/listings/{id}"));

    // Read-your-writes: with the token, the very next read sees the listing.
    let read = app
        .get(&seller, &location)
        .header(
            "x-consistency-token",
            created["consistency_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["x-consistency"], "consistent");
    let listing: Value = read.json().await.unwrap();
    assert_eq!(listing["listing_id"], id);
    assert_eq!(listing["seller_id"], seller.id.as_str());
    assert_eq!(listing["title"], "Desk lamp", "trimmed");
    assert_eq!(listing["description"], "Warm light");
    assert_eq!(listing["price"], 15000);
    assert_eq!(listing["category"], "furniture");
    assert_eq!(listing["status"], "available");
    assert!(listing["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(listing["updated_at"].is_string());
}

#[tokio::test]
async fn a_token_the_views_never_reach_answers_stale_after_the_bounded_wait() {
    let mut settings = test_settings();
    settings.consistency_wait = Duration::from_millis(300);
    let app = spawn_app_with(settings).await;
    let seller = app.signup("seller").await;
    let (id, _) = app.register_listing(&seller, "Chair", 5000).await;
    let read = app
        .get(&seller, &format!("/listings/{id}"))
        .header("x-consistency-token", "999999999.1")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.headers()["x-consistency"], "stale");
}

#[tokio::test]
async fn a_malformed_consistency_token_is_422() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    let read = app
        .get(&user, "/listings")
        .header("x-consistency-token", "not-a-token")
        .send()
        .await
        .unwrap();
    assert_problem(read, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[tokio::test]
async fn malformed_json_is_400_and_writes_nothing() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    for body in [
        r#"{"title": "Lamp", "#,
        "not json at all",
        r#"{"title": "Lamp", "description": "", "price": 1}}"#,
    ] {
        let response = app
            .post(&seller, "/listings")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn bodies_that_break_a_rule_are_422_and_write_nothing() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let valid = json!({"title": "Lamp", "description": "ok", "price": 100});
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = valid.clone();
        body.as_object_mut().unwrap().remove(key);
        body
    };
    let cases = [
        (with("price", json!(-1)), "negative price"),
        (with("price", json!(0)), "zero price"),
        (
            with("price", json!(1_000_000_001)),
            "price over the ceiling",
        ),
        (with("price", json!(12.5)), "fractional price"),
        (with("price", json!("100")), "price as a string"),
        (with("price", json!(u64::MAX)), "price beyond i64"),
        (with("title", json!("")), "empty title"),
        (with("title", json!("   ")), "blank title"),
        (with("title", json!("t".repeat(101))), "title too long"),
        (with("title", json!(7)), "title of the wrong type"),
        (
            with("description", json!("d".repeat(5001))),
            "description too long",
        ),
        (with("category", json!("")), "empty category"),
        (with("category", json!("c".repeat(51))), "category too long"),
        (without("title"), "missing title"),
        (without("price"), "missing price"),
        (json!([1, 2, 3]), "an array instead of an object"),
    ];
    for (body, case) in cases {
        let response = app.post_listing(&seller, &body).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        let _ = case;
    }
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_negative_price_names_the_field() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let response = app
        .post_listing(
            &seller,
            &json!({"title": "Lamp", "description": "", "price": -500}),
        )
        .await;
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "price");
}

#[tokio::test]
async fn registering_without_a_token_is_401() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/listings"))
        .json(&json!({"title": "Lamp", "description": "", "price": 100}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let big = json!({"title": "Lamp", "description": "x".repeat(70 * 1024), "price": 100});
    let response = app.post_listing(&seller, &big).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.event_count().await, 0);
}

#[tokio::test]
async fn a_body_without_a_json_content_type_is_415() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let response = app
        .post(&seller, "/listings")
        .body(r#"{"title": "Lamp", "description": "", "price": 100}"#)
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

#[tokio::test]
async fn unknown_and_malformed_listing_ids_are_404() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_owned(),
        "1".to_owned(),
    ] {
        let response = app
            .get(&user, &format!("/listings/{id}"))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn the_catalog_lists_newest_first_in_pages_and_filters_by_text() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let mut last_token = String::new();
    for i in 0..5 {
        let (_, token) = app
            .register_listing(&seller, &format!("Lamp number {i}"), 1000 + i)
            .await;
        last_token = token;
    }
    app.register_listing(&seller, "Bicycle 100% steel", 90_000)
        .await;
    let (_, token) = app.register_listing(&seller, "Under_score", 10).await;
    last_token = if token > last_token {
        token
    } else {
        last_token
    };

    let page = |query: &str| {
        let request = app
            .get(&seller, &format!("/listings?{query}"))
            .header("x-consistency-token", &last_token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let titles = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };

    let first = page("q=lamp&limit=2").await;
    assert_eq!(titles(&first), ["Lamp number 4", "Lamp number 3"]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = page(&format!("q=lamp&limit=2&cursor={cursor}")).await;
    assert_eq!(titles(&second), ["Lamp number 2", "Lamp number 1"]);
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    let third = page(&format!("q=lamp&limit=2&cursor={cursor}")).await;
    assert_eq!(titles(&third), ["Lamp number 0"]);
    assert!(third["next_cursor"].is_null());

    // LIKE wildcards in the filter are matched literally.
    assert_eq!(titles(&page("q=100%25").await), ["Bicycle 100% steel"]);
    assert_eq!(titles(&page("q=_").await), ["Under_score"]);
    assert_eq!(page("").await["items"].as_array().unwrap().len(), 7);
    assert!(page("status=sold").await["items"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn bad_catalog_parameters_are_422() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "status=lost",
        "cursor=garbage",
        &format!("q={}", "q".repeat(201)),
    ] {
        let response = app
            .get(&user, &format!("/listings?{query}"))
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
}

#[tokio::test]
async fn the_seller_edits_an_available_listing_and_the_catalog_follows() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (id, _) = app.register_listing(&seller, "Chair", 5000).await;
    let response = app
        .patch(&seller, &format!("/listings/{id}"))
        .json(&json!({"price": 4500, "title": " Oak chair "}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "available");
    let token = body["consistency_token"].as_str().unwrap();
    let view = app.listing_after(&seller, &id, token).await;
    assert_eq!(view["title"], "Oak chair");
    assert_eq!(view["price"], 4500);
    assert_eq!(
        view["description"], "in good shape",
        "untouched fields stay"
    );
    assert_ne!(view["updated_at"], view["created_at"]);
}

#[tokio::test]
async fn edits_and_withdrawals_are_the_sellers_alone_and_only_while_available() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let buyer = app.signup("buyer").await;
    let (id, _) = app.register_listing(&seller, "Lamp", 5000).await;
    let path = format!("/listings/{id}");
    let edit = json!({"price": 1});

    let response = app.patch(&buyer, &path).json(&edit).send().await.unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "not_your_listing").await;
    let response = app.delete(&buyer, &path).send().await.unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "not_your_listing").await;

    let placed = app.place_request(&buyer, &id).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    let response = app.patch(&seller, &path).json(&edit).send().await.unwrap();
    assert_problem(response, StatusCode::CONFLICT, "listing_not_available").await;
    let response = app.delete(&seller, &path).send().await.unwrap();
    assert_problem(response, StatusCode::CONFLICT, "listing_not_available").await;

    let (other, _) = app.register_listing(&seller, "Rug", 9000).await;
    let response = app
        .delete(&seller, &format!("/listings/{other}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "withdrawn");
    let view = app
        .listing_after(&seller, &other, body["consistency_token"].as_str().unwrap())
        .await;
    assert_eq!(view["status"], "withdrawn");
    let response = app
        .delete(&seller, &format!("/listings/{other}"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::CONFLICT, "listing_not_available").await;
}

#[tokio::test]
async fn bad_edits_are_4xx_and_write_nothing() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (id, _) = app.register_listing(&seller, "Lamp", 5000).await;
    let before = app.event_count().await;
    let path = format!("/listings/{id}");
    let too_long = json!({"title": "t".repeat(101)}).to_string();
    let cases = [
        ("{}", StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        (
            "{\"price\": 0}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "{\"price\": 1000000001}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "{\"price\": \"1000\"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "{\"title\": \"   \"}",
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            too_long.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        ("{\"title\": ", StatusCode::BAD_REQUEST, "malformed_json"),
    ];
    for (body, status, code) in cases {
        let response = app
            .patch(&seller, &path)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_problem(response, status, code).await;
    }
    for id in [uuid::Uuid::new_v4().to_string(), "nope".to_owned()] {
        let response = app
            .patch(&seller, &format!("/listings/{id}"))
            .json(&json!({"price": 10}))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
        let response = app
            .delete(&seller, &format!("/listings/{id}"))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert_eq!(app.event_count().await, before);
}
