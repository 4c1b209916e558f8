//! The OpenAPI document and the docs page: the served document is the committed one, it
//! names every endpoint of API.md, the answers of a whole trade match its schemas, and
//! `/docs` works with nothing but Carrot (no CDN).

use std::collections::BTreeSet;
use std::time::Duration;

use carrot_api::payment::SimulationProfile;
use carrot_projections::settlement::DispatcherConfig;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, spawn_app_with, test_settings, TestApp, User};

const REGENERATE: &str = "cargo run -p carrot-api --bin carrot -- openapi > docs/openapi.json";

/// Every path and method of API.md.
const CONTRACT: [(&str, &str); 27] = [
    ("post", "/auth/signup"),
    ("post", "/auth/login"),
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
    ("get", "/openapi.json"),
    ("get", "/docs"),
];

/// Open to anyone (API.md: everything else needs a bearer token).
fn is_public(path: &str) -> bool {
    path.starts_with("/auth/")
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

/// The operation of `document` for `method` and the request path `path`.
fn operation<'d>(document: &'d Value, method: &str, path: &str) -> (String, &'d Value) {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document["paths"].as_object().unwrap();
    let (template, item) = paths
        .iter()
        .filter(|(template, item)| {
            let pattern: Vec<&str> = template.split('/').collect();
            item.get(method).is_some()
                && pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        })
        // A literal segment beats a parameter.
        .min_by_key(|(template, _)| template.matches('{').count())
        .unwrap_or_else(|| panic!("{method} {path} is not in the document"));
    (template.clone(), &item[method])
}

/// Follows a `$ref` to its component.
fn resolve<'d>(document: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve")),
            )
        }
        None => value,
    }
}

/// The properties an object schema documents (through `allOf`), and whether it allows
/// others.
fn properties<'d>(
    document: &'d Value,
    schema: &'d Value,
    found: &mut Vec<(&'d String, &'d Value)>,
    required: &mut Vec<&'d str>,
) -> bool {
    let schema = resolve(document, schema);
    let mut open = schema
        .get("additionalProperties")
        .is_some_and(|a| a != &Value::Bool(false));
    if let Some(own) = schema["properties"].as_object() {
        found.extend(own.iter());
    }
    if let Some(own) = schema["required"].as_array() {
        required.extend(own.iter().filter_map(Value::as_str));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        open |= properties(document, part, found, required);
    }
    open
}

/// Checks `value` against `schema`, strictly: an object may hold only documented fields
/// (unless its schema allows more). Returns what does not match, by JSON pointer.
fn mismatches(document: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if let Some(choices) = schema["oneOf"].as_array() {
        let fits = choices.iter().any(|choice| {
            let mut errors = Vec::new();
            mismatches(document, choice, value, at, &mut errors);
            errors.is_empty()
        });
        if !fits {
            out.push(format!("{at}: {value} fits none of {}", schema["oneOf"]));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !fits {
        out.push(format!(
            "{at}: a {actual} ({value}), documented as {types:?}"
        ));
        return;
    }
    match value {
        Value::String(s) => match schema["format"].as_str() {
            Some("uuid") if uuid::Uuid::try_parse(s).is_err() => {
                out.push(format!("{at}: {s:?} is not a uuid"));
            }
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                out.push(format!("{at}: {s:?} is not an RFC 3339 time"));
            }
            _ => {}
        },
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    mismatches(document, item, v, &format!("{at}/{i}"), out);
                }
            }
        }
        Value::Object(fields) => {
            let (mut documented, mut required) = (Vec::new(), Vec::new());
            let open = properties(document, schema, &mut documented, &mut required);
            if documented.is_empty() && !types.contains(&"object") && !open {
                return; // a free-form value
            }
            for name in required {
                if !fields.contains_key(name) {
                    out.push(format!("{at}: `{name}` is required but missing"));
                }
            }
            for (name, v) in fields {
                match documented.iter().find(|(n, _)| *n == name) {
                    Some((_, field_schema)) => {
                        mismatches(document, field_schema, v, &format!("{at}/{name}"), out)
                    }
                    None if open => {}
                    None => out.push(format!("{at}/{name}: not documented")),
                }
            }
        }
        _ => {}
    }
}

/// Checks answers against the document and remembers which operations it saw.
struct Conformance {
    document: Value,
    seen: BTreeSet<(String, String)>,
}

impl Conformance {
    /// Checks one answer: its status is documented for the operation, its content type too,
    /// and its JSON body matches the schema. Returns the body.
    async fn check(&mut self, method: &str, path: &str, response: Response) -> Value {
        let (template, operation) = operation(&self.document, method, path);
        let what = format!("{} {path} ({template})", method.to_uppercase());
        let status = response.status().as_u16().to_string();
        let documented = operation["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{what} answered {status}, which is not documented"));
        let documented = resolve(&self.document, documented);
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        self.seen.insert((method.to_owned(), template));
        let Some(content) = documented["content"].as_object() else {
            assert!(
                body.is_empty(),
                "{what} {status}: a body, documented as none"
            );
            return Value::Null;
        };
        let content_type = content_type.unwrap_or_else(|| panic!("{what}: no content type"));
        let media = content
            .get(&content_type)
            .unwrap_or_else(|| panic!("{what} {status}: {content_type} is not documented"));
        if !content_type.contains("json") {
            return Value::String(String::from_utf8_lossy(&body).into_owned());
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        let mut out = Vec::new();
        mismatches(&self.document, &media["schema"], &body, "", &mut out);
        assert!(
            out.is_empty(),
            "{what} {status} does not match its schema:\n  {}\nbody: {body:#}",
            out.join("\n  ")
        );
        body
    }
}

async fn signed_up(app: &TestApp, check: &mut Conformance, prefix: &str) -> User {
    let username = format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let response = app
        .signup_response(&json!({"username": username, "password": "correct horse battery"}))
        .await;
    let body = check.check("post", "/auth/signup", response).await;
    User {
        id: body["user_id"].as_str().unwrap().to_owned(),
        username,
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// A dispatcher that polls often: a payout the gateway declines is a dead letter at once.
async fn app_with_quick_dead_letters() -> TestApp {
    let mut settings = test_settings();
    settings.workers.dispatcher = DispatcherConfig {
        retry_base: Duration::from_millis(20),
        poll_interval: Duration::from_millis(50),
        ..DispatcherConfig::default()
    };
    spawn_app_with(settings).await
}

#[tokio::test]
async fn every_answer_of_a_whole_trade_matches_the_documented_schemas() {
    let app = app_with_quick_dead_letters().await;
    let mut check = Conformance {
        document: served(&app).await,
        seen: BTreeSet::new(),
    };
    let c = &mut check;
    let seller = signed_up(&app, c, "seller").await;
    let buyer = signed_up(&app, c, "buyer").await;

    // Accounts, and their refusals.
    let login = json!({"username": seller.username, "password": "correct horse battery"});
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&login)
        .send()
        .await
        .unwrap();
    c.check("post", "/auth/login", response).await;
    let wrong = json!({"username": seller.username, "password": "wrong horse battery"});
    let response = app
        .client
        .post(app.url("/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    c.check("post", "/auth/login", response).await;
    let taken = json!({"username": seller.username, "password": "correct horse battery"});
    c.check("post", "/auth/signup", app.signup_response(&taken).await)
        .await;
    let invalid = json!({"username": "X", "password": "short"});
    let body = c
        .check("post", "/auth/signup", app.signup_response(&invalid).await)
        .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);

    // Listings.
    let lamp = json!({"title": "Desk lamp", "description": "Warm light", "price": 15000,
                      "category": "furniture"});
    let response = app
        .post(&seller, "/listings")
        .json(&lamp)
        .send()
        .await
        .unwrap();
    let body = c.check("post", "/listings", response).await;
    let listing = body["listing_id"].as_str().unwrap().to_owned();
    let token = body["consistency_token"].as_str().unwrap().to_owned();
    let path = format!("/listings/{listing}");
    let response = app
        .get(&buyer, &path)
        .header("x-consistency-token", &token)
        .send()
        .await;
    c.check("get", &path, response.unwrap()).await;
    let response = app.get(&buyer, "/listings?limit=1").send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app.get(&buyer, "/listings?limit=0").send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app.client.get(app.url("/listings")).send().await.unwrap();
    c.check("get", "/listings", response).await;
    let response = app
        .post(&seller, "/listings")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let response = app
        .post(&seller, "/listings")
        .body("title=x")
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let huge = json!({"title": "x", "description": "y".repeat(70_000), "price": 1});
    let response = app
        .post(&seller, "/listings")
        .json(&huge)
        .send()
        .await
        .unwrap();
    c.check("post", "/listings", response).await;
    let response = app
        .patch(&seller, &path)
        .json(&json!({"price": 14000}))
        .send()
        .await;
    c.check("patch", &path, response.unwrap()).await;
    let response = app
        .patch(&buyer, &path)
        .json(&json!({"price": 1}))
        .send()
        .await;
    c.check("patch", &path, response.unwrap()).await;
    let response = app.patch(&seller, &path).json(&json!({})).send().await;
    c.check("patch", &path, response.unwrap()).await;
    let unknown = format!("/listings/{}", uuid::Uuid::new_v4());
    c.check(
        "get",
        &unknown,
        app.get(&buyer, &unknown).send().await.unwrap(),
    )
    .await;

    // A trade: request (and pay), accept, complete.
    let requests = format!("{path}/requests");
    let response = app.post(&seller, &requests).send().await.unwrap();
    c.check("post", &requests, response).await; // own listing
    let response = app
        .post(&buyer, &requests)
        .json(&json!({"price": 14000}))
        .send()
        .await;
    let placed = c.check("post", &requests, response.unwrap()).await;
    let request_id = placed["request_id"].as_str().unwrap().to_owned();
    let payment_id = placed["payment_id"].as_str().unwrap().to_owned();
    let response = app.post(&buyer, &requests).send().await.unwrap();
    c.check("post", &requests, response).await; // already open
    let request = format!("/requests/{request_id}");
    let accept = format!("{request}/accept");
    c.check(
        "post",
        &accept,
        app.post(&buyer, &accept).send().await.unwrap(),
    )
    .await;
    c.check(
        "post",
        &accept,
        app.post(&seller, &accept).send().await.unwrap(),
    )
    .await;
    c.check(
        "post",
        &accept,
        app.post(&seller, &accept).send().await.unwrap(),
    )
    .await;
    let complete = format!("{request}/complete");
    let response = app
        .post(&buyer, &complete)
        .header("idempotency-key", "complete-1")
        .send()
        .await
        .unwrap();
    c.check("post", &complete, response).await;
    app.settle().await;
    c.check(
        "get",
        &request,
        app.get(&seller, &request).send().await.unwrap(),
    )
    .await;
    let payment = format!("/payments/{payment_id}");
    c.check(
        "get",
        &payment,
        app.get(&buyer, &payment).send().await.unwrap(),
    )
    .await;
    let response = app
        .get(&buyer, &format!("/payments/{}", uuid::Uuid::new_v4()))
        .send();
    c.check("get", &payment, response.await.unwrap()).await;

    // A second listing: rejected, then a third: cancelled, then withdrawn.
    let (second, _) = app.register_listing(&seller, "Chair", 30_000).await;
    let second_requests = format!("/listings/{second}/requests");
    let placed = app.place_request(&buyer, &second).await;
    let reject = format!("/requests/{}/reject", placed.request_id);
    let response = app
        .post(&seller, &reject)
        .json(&json!({"reason": "Sold elsewhere"}))
        .send();
    c.check("post", &reject, response.await.unwrap()).await;
    let response = app
        .post(&seller, &reject)
        .json(&json!({"reason": "x\u{7}"}))
        .send();
    c.check("post", &reject, response.await.unwrap()).await;
    let placed = app.place_request(&buyer, &second).await;
    let cancel = format!("/requests/{}/cancel", placed.request_id);
    c.check(
        "post",
        &cancel,
        app.post(&buyer, &cancel).send().await.unwrap(),
    )
    .await;
    let second_path = format!("/listings/{second}");
    let response = app.delete(&buyer, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.delete(&seller, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.delete(&seller, &second_path).send().await.unwrap();
    c.check("delete", &second_path, response).await;
    let response = app.post(&buyer, &second_requests).send().await.unwrap();
    c.check("post", &second_requests, response).await; // withdrawn: not available

    // The gateway declines, then is down.
    let (third, _) = app.register_listing(&seller, "Lamp", 9_000).await;
    let third_requests = format!("/listings/{third}/requests");
    app.gateway.set_profile(SimulationProfile {
        decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    let response = app.post(&buyer, &third_requests).send().await.unwrap();
    let declined = c.check("post", &third_requests, response).await;
    assert_eq!(declined["status_of_request"], "payment_failed");
    app.gateway.set_profile(SimulationProfile {
        down: true,
        ..SimulationProfile::default()
    });
    let response = app.post(&buyer, &third_requests).send().await.unwrap();
    assert!(response.headers().contains_key("retry-after"));
    c.check("post", &third_requests, response).await;

    // A payout the gateway declines becomes a dead letter.
    app.gateway.set_profile(SimulationProfile::default());
    let placed = app.place_request(&buyer, &third).await;
    app.act_ok(&seller, &placed.request_id, "accept", "accepted")
        .await;
    app.gateway.set_profile(SimulationProfile {
        transfer_decline_rate: 1.0,
        ..SimulationProfile::default()
    });
    app.act_ok(&buyer, &placed.request_id, "complete", "completed")
        .await;
    app.settle().await;

    // The reads.
    let with_token = |user: &User, path: &str| {
        app.get(user, path)
            .header("x-consistency-token", token.as_str())
    };
    for (user, path) in [
        (&buyer, "/mypage"),
        (&seller, "/mypage"),
        (&buyer, "/mypage/purchases"),
        (&seller, "/mypage/sales?limit=2"),
        (&seller, "/notifications"),
        (&buyer, "/notifications?limit=1"),
    ] {
        c.check("get", path, with_token(user, path).send().await.unwrap())
            .await;
    }
    let response = app
        .get(&buyer, "/mypage")
        .header("x-consistency-token", "nope")
        .send();
    c.check("get", "/mypage", response.await.unwrap()).await;
    let response = app
        .get(&buyer, "/mypage/sales?cursor=nope")
        .send()
        .await
        .unwrap();
    c.check("get", "/mypage/sales", response).await;
    let response = app
        .get(&buyer, "/notifications?cursor=nope")
        .send()
        .await
        .unwrap();
    c.check("get", "/notifications", response).await;
    let response = app
        .get(&buyer, "/mypage/purchases?limit=500")
        .send()
        .await
        .unwrap();
    c.check("get", "/mypage/purchases", response).await;
    // The stream: its headers (the events are tested in reads.rs).
    let response = app
        .get(&buyer, "/notifications/stream")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (template, operation) = operation(&c.document, "get", "/notifications/stream");
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(operation["responses"]["200"]["content"][content_type].is_object());
    c.seen.insert(("get".to_owned(), template));
    drop(response);
    let response = app
        .get(&buyer, "/notifications/stream")
        .header("last-event-id", "x");
    c.check(
        "get",
        "/notifications/stream",
        response.send().await.unwrap(),
    )
    .await;

    // Operators.
    let admin = app.make_admin(&signed_up(&app, c, "ops").await).await;
    let letters = eventually("the payout to be dead-lettered", || async {
        let response = app.get(&admin, "/admin/dead-letters").send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        (!body["items"].as_array()?.is_empty()).then_some(body)
    })
    .await;
    let command_id = letters["items"][0]["command_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .get(&admin, "/admin/dead-letters?limit=5")
        .send()
        .await
        .unwrap();
    c.check("get", "/admin/dead-letters", response).await;
    let response = app
        .get(&admin, "/admin/dead-letters?limit=x")
        .send()
        .await
        .unwrap();
    c.check("get", "/admin/dead-letters", response).await;
    c.check(
        "get",
        "/admin/subscriptions",
        app.get(&admin, "/admin/subscriptions")
            .send()
            .await
            .unwrap(),
    )
    .await;
    c.check(
        "get",
        "/admin/subscriptions",
        app.get(&buyer, "/admin/subscriptions")
            .send()
            .await
            .unwrap(),
    )
    .await;
    for (user, path) in [
        (&admin, "/admin/subscriptions/settlement/quarantine"),
        (
            &admin,
            "/admin/subscriptions/catalog/quarantine?limit=2&cursor=1.2",
        ),
        (
            &admin,
            "/admin/subscriptions/settlement/quarantine?cursor=x",
        ),
        (&admin, "/admin/subscriptions/nobody/quarantine"),
        (&buyer, "/admin/subscriptions/settlement/quarantine"),
    ] {
        let response = app.get(user, path).send().await.unwrap();
        c.check("get", "/admin/subscriptions/{name}/quarantine", response)
            .await;
    }
    for (user, path) in [
        (&admin, "/admin/subscriptions/settlement/quarantine/retry"),
        (&admin, "/admin/subscriptions/nobody/quarantine/retry"),
        (&buyer, "/admin/subscriptions/settlement/quarantine/retry"),
    ] {
        let response = app.post(user, path).send().await.unwrap();
        c.check(
            "post",
            "/admin/subscriptions/{name}/quarantine/retry",
            response,
        )
        .await;
    }
    for (user, path) in [
        (&admin, "/admin/reconciliation/mismatches"),
        (&admin, "/admin/reconciliation/mismatches?limit=0"),
        (&buyer, "/admin/reconciliation/mismatches"),
    ] {
        let response = app.get(user, path).send().await.unwrap();
        c.check("get", "/admin/reconciliation/mismatches", response)
            .await;
    }
    for body in [
        json!({"resolution": "checked by hand"}),
        json!({"resolution": ""}),
    ] {
        let response = app
            .post(
                &admin,
                "/admin/reconciliation/mismatches/refund:none/resolve",
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        c.check(
            "post",
            "/admin/reconciliation/mismatches/{key}/resolve",
            response,
        )
        .await;
    }
    app.gateway.set_profile(SimulationProfile::default());
    let retry = format!("/admin/dead-letters/{command_id}/retry");
    c.check(
        "post",
        &retry,
        app.post(&admin, &retry).send().await.unwrap(),
    )
    .await;
    let unknown = "/admin/dead-letters/nope/retry";
    c.check(
        "post",
        unknown,
        app.post(&admin, unknown).send().await.unwrap(),
    )
    .await;
    // The declined payout: sent again under a new attempt; then nothing is left to settle
    // outside; and the refusals.
    let payment = &placed.payment_id;
    for (template, path, body) in [
        (
            "/admin/payments/{id}/retry-transfer",
            format!("/admin/payments/{payment}/retry-transfer"),
            json!({"reason": ""}),
        ),
        (
            "/admin/payments/{id}/retry-transfer",
            format!("/admin/payments/{payment}/retry-transfer"),
            json!({"reason": "the seller fixed their bank account"}),
        ),
        (
            "/admin/payments/{id}/retry-transfer",
            "/admin/payments/nope/retry-transfer".to_owned(),
            json!({"reason": "x"}),
        ),
        (
            "/admin/payments/{id}/settle-outside",
            format!("/admin/payments/{payment}/settle-outside"),
            json!({"reference": "", "reason": "x"}),
        ),
    ] {
        let response = app.post(&admin, &path).json(&body).send().await.unwrap();
        c.check("post", template, response).await;
    }
    app.wait_payment(&buyer, payment, "paid_out").await;
    let path = format!("/admin/payments/{payment}/settle-outside");
    let body = json!({"reference": "bank-1", "reason": "paid by hand"});
    let response = app.post(&admin, &path).json(&body).send().await.unwrap();
    let refused = c
        .check("post", "/admin/payments/{id}/settle-outside", response)
        .await;
    assert_eq!(refused["code"], "payment_already_paid_out");

    // Operations and the document itself, without a token.
    for path in ["/health/live", "/health/ready", "/metrics", "/openapi.json"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        c.check("get", path, response).await;
    }

    // Every documented operation was called (the docs page has its own test).
    let mut documented = BTreeSet::new();
    for (path, item) in check.document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !path.starts_with("/docs") {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let missed: Vec<_> = documented.difference(&check.seen).collect();
    assert!(missed.is_empty(), "never called here: {missed:?}");
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
