//! The OpenAPI document and the docs page: the served document is the committed one, it
//! names every endpoint of API.md, the answers of a whole trade match its schemas, and
//! `/docs` works with nothing but Carrot (no CDN).

mod conformance;
mod operators;
mod whole_trade;

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

use self::conformance::resolve;

const REGENERATE: &str = "cargo run -p carrot-api --bin carrot -- openapi > docs/openapi.json";

/// Every path and method of API.md.
const CONTRACT: [(&str, &str); 32] = [
    ("post", "/auth/signup"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("post", "/auth/logout-all"),
    ("delete", "/me"),
    ("get", "/me/export"),
    ("get", "/listings"),
    ("post", "/listings"),
    ("get", "/listings/{id}"),
    ("patch", "/listings/{id}"),
    ("delete", "/listings/{id}"),
    ("post", "/listings/{id}/requests"),
    ("get", "/requests/{id}"),
    ("post", "/requests/{id}/accept"),
    ("post", "/requests/{id}/reject"),
    ("post", "/requests/{id}/complete"),
    ("post", "/requests/{id}/cancel"),
    ("get", "/mypage"),
    ("get", "/mypage/purchases"),
    ("get", "/mypage/sales"),
    ("get", "/payments/{id}"),
    ("get", "/notifications"),
    ("get", "/notifications/stream"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/admin/subscriptions"),
    ("get", "/admin/dead-letters"),
    ("post", "/admin/dead-letters/{id}/retry"),
    ("post", "/admin/dead-letters/{id}/discard"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

/// Open to anyone (API.md: everything else needs a bearer token). Of `/auth/*`, signing up
/// and logging in: logging out and changing the password name their session by its token.
fn is_public(path: &str) -> bool {
    path == "/auth/signup"
        || path == "/auth/login"
        || path.starts_with("/health/")
        || path == "/metrics"
        || path == "/openapi.json"
        || path.starts_with("/docs")
}

fn committed() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}; generate it with `{REGENERATE}`"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} is not JSON ({e}); regenerate it with `{REGENERATE}`"))
}

async fn served(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "no token is needed");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// The first difference between two JSON values, as a JSON pointer and both sides.
fn first_difference(at: &str, left: &Value, right: &Value) -> Option<String> {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            keys.into_iter().find_map(|k| {
                let at = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                let show = |v: Option<&Value>| v.map_or("(absent)".to_owned(), Value::to_string);
                match (l.get(k), r.get(k)) {
                    (Some(l), Some(r)) => first_difference(&at, l, r),
                    (l, r) => Some(format!("{at}: {} != {}", show(l), show(r))),
                }
            })
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => l
            .iter()
            .zip(r)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(&format!("{at}/{i}"), l, r)),
        (l, r) if l == r => None,
        (l, r) => Some(format!("{at}: {l} != {r}")),
    }
}

#[tokio::test]
async fn the_served_document_is_the_committed_docs_openapi_json() {
    let app = spawn_app().await;
    let served = served(&app).await;
    let committed = committed();
    if let Some(difference) = first_difference("", &served, &committed) {
        panic!(
            "docs/openapi.json is not the document the server serves (first difference, served \
             != committed: {difference}). Regenerate it with `{REGENERATE}` and commit it."
        );
    }
}

#[tokio::test]
async fn carrot_openapi_prints_the_served_document() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carrot"))
        .arg("openapi")
        .env("CARROT_LOG", "error")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let app = spawn_app().await;
    assert_eq!(printed, served(&app).await);
}

#[tokio::test]
async fn the_document_describes_every_endpoint_of_the_contract() {
    let document = committed();
    assert_eq!(document["info"]["title"], "Carrot");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document.get("servers").is_none(), "no servers: same origin");
    assert_eq!(
        document["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "The `token` of `POST /auth/signup` or `POST /auth/login`."})
    );
    let mut operation_ids = BTreeSet::new();
    for (method, path) in CONTRACT {
        let operation = &document["paths"][path][method];
        assert!(
            operation.is_object(),
            "{} {path} is not documented",
            method.to_uppercase()
        );
        let what = format!("{} {path}", method.to_uppercase());
        assert!(
            operation_ids.insert(operation["operationId"].as_str().unwrap().to_owned()),
            "{what}: its operationId is taken"
        );
        assert!(operation["tags"][0].is_string(), "{what} has no tag");
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s.starts_with('3')),
            "{what} documents no success"
        );
        let parameters: Vec<&str> = operation["parameters"]
            .as_array()
            .map(|p| p.iter().map(|p| p["name"].as_str().unwrap()).collect())
            .unwrap_or_default();
        if path.contains("{id}") {
            assert!(parameters.contains(&"id"), "{what}: the id parameter");
        }
        if method == "post" {
            assert!(
                parameters.contains(&"Idempotency-Key"),
                "{what}: the Idempotency-Key header"
            );
        }
        if is_public(path) {
            assert!(operation.get("security").is_none(), "{what} needs no token");
            assert_ne!(
                responses.get("401").map(|r| &r["$ref"]),
                Some(&json!("#/components/responses/Unauthenticated")),
                "{what} needs no token"
            );
        } else {
            assert_eq!(operation["security"], json!([{"bearer": []}]), "{what}");
            assert!(responses.contains_key("401"), "{what}: 401 without a token");
        }
        // Every error is problem+json with the Problem schema (but readiness: its detail).
        for (status, response) in responses {
            let failure = status.starts_with('4') || status.starts_with('5');
            if !failure || path == "/health/ready" {
                continue;
            }
            let response = resolve(&document, response);
            assert_eq!(
                response["content"]["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{what} {status}"
            );
        }
    }
    let problem = &document["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "detail", "code"] {
        assert!(problem["required"]
            .as_array()
            .unwrap()
            .contains(&json!(field)));
    }
    // Reads of the views take the consistency token.
    for path in [
        "/listings",
        "/listings/{id}",
        "/requests/{id}",
        "/mypage",
        "/mypage/purchases",
        "/mypage/sales",
        "/payments/{id}",
        "/notifications",
    ] {
        let parameters = document["paths"][path]["get"]["parameters"].to_string();
        assert!(parameters.contains("X-Consistency-Token"), "GET {path}");
    }
    let content = |path: &str| -> Vec<String> {
        document["paths"][path]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(content("/notifications/stream"), ["text/event-stream"]);
    assert_eq!(
        content("/metrics"),
        ["text/plain; version=0.0.4; charset=utf-8"]
    );
    assert_eq!(
        document["paths"]["/listings/{id}/requests"]["post"]["responses"]["503"]["headers"]
            ["Retry-After"]["schema"]["type"],
        "integer"
    );
}

/// The relative URLs of a page's `<script src>` and `<link href>`.
fn assets(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (tag, attribute) in [("<script", "src=\""), ("<link", "href=\"")] {
        for piece in html.split(tag).skip(1) {
            let element = piece.split('>').next().unwrap_or_default();
            if let Some(value) = element.split(attribute).nth(1) {
                found.push(value.split('"').next().unwrap_or_default().to_owned());
            }
        }
    }
    found
}

/// The document says which reads take `X-Consistency-Token` by a rule (`modifiers.rs`,
/// `Consistency`); each of them must really read it: a malformed token is 422 on every one.
#[tokio::test]
async fn every_read_documented_with_the_consistency_header_honours_it() {
    let app = spawn_app().await;
    let user = app.signup("reader").await;
    let document = served(&app).await;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let takes_token = item["get"]["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["name"] == "X-Consistency-Token"));
        if !takes_token {
            continue;
        }
        let concrete = path.replace("{id}", &uuid::Uuid::new_v4().to_string());
        let response = app
            .get(&user, &concrete)
            .header("X-Consistency-Token", "not-a-token")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "GET {path}"
        );
        checked += 1;
    }
    assert!(checked >= 9, "only {checked} reads take the header");
}

#[tokio::test]
async fn the_docs_page_is_served_whole_by_carrot_without_a_token() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page_url = response.url().clone();
    assert_eq!(page_url.host_str(), Some("127.0.0.1"));
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = response.text().await.unwrap();
    let assets = assets(&html);
    assert!(
        assets.iter().filter(|a| a.ends_with(".js")).count() >= 2,
        "the page's scripts: {assets:?}"
    );
    for asset in &assets {
        assert!(
            !asset.contains("//"),
            "{asset} names a host: the page must work offline"
        );
        let url = page_url.join(asset).unwrap();
        assert_eq!(url.origin(), page_url.origin(), "{asset}");
        let response = app.client.get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{url}");
    }
    // The page loads our document, and nothing asks validator.swagger.io about it.
    let initializer = app
        .client
        .get(page_url.join("swagger-initializer.js").unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
}

#[test]
fn no_description_carries_a_stray_line_continuation() {
    fn walk(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::String(s) if s.contains("\\\n") => found.push(at.to_owned()),
            Value::Object(map) => map
                .iter()
                .for_each(|(k, v)| walk(v, &format!("{at}/{k}"), found)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{at}/{i}"), found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&committed(), "", &mut found);
    assert!(found.is_empty(), "a `\\\\` then a newline in: {found:?}");
}
