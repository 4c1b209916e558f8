//! The authorization matrix: every endpoint called by the owner, the counterparty, a
//! stranger, an admin and nobody, with the status each must get. Refused calls change
//! nothing, and no answer to a stranger carries another user's data.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp, User};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Seller,
    Buyer,
    Stranger,
    Admin,
    Nobody,
}

use Caller::*;

struct Cast {
    seller: User,
    buyer: User,
    stranger: User,
    admin: User,
}

impl Cast {
    fn token(&self, caller: Caller) -> Option<&str> {
        match caller {
            Seller => Some(&self.seller.token),
            Buyer => Some(&self.buyer.token),
            Stranger => Some(&self.stranger.token),
            Admin => Some(&self.admin.token),
            Nobody => None,
        }
    }
}

async fn call(
    app: &TestApp,
    token: Option<&str>,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> (u16, String) {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn every_endpoint_answers_each_kind_of_caller_as_documented() {
    let app = spawn_app().await;
    let deal = app.pending_deal("Matrix lamp", 30_000).await;
    let stranger = app.signup("stranger").await;
    let admin = app.signup("admin").await;
    let admin = app.make_admin(&admin).await;
    let cast = Cast {
        seller: deal.seller.clone(),
        buyer: deal.buyer.clone(),
        stranger,
        admin,
    };
    let (listing, request, payment) = (
        deal.listing.clone(),
        deal.placed.request_id.clone(),
        deal.placed.payment_id.clone(),
    );
    app.settle().await;

    let get = Method::GET;
    let (post, patch, delete) = (Method::POST, Method::PATCH, Method::DELETE);
    let none: Option<Value> = None;
    // (method, path, body, [seller, buyer, stranger, admin, nobody]); 0: not called here
    // (the rightful caller's success changes the deal; other tests cover it).
    let matrix: Vec<(Method, String, Option<Value>, [u16; 5])> = vec![
        (
            get.clone(),
            "/listings".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            format!("/listings/{listing}"),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            format!("/requests/{request}"),
            none.clone(),
            [200, 200, 404, 404, 401],
        ),
        (
            get.clone(),
            format!("/payments/{payment}"),
            none.clone(),
            [200, 200, 404, 404, 401],
        ),
        (
            get.clone(),
            "/mypage".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            "/mypage/purchases".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            "/mypage/sales".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            "/notifications".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        (
            get.clone(),
            "/notifications/stream".into(),
            none.clone(),
            [0, 0, 0, 0, 401],
        ),
        (
            get.clone(),
            "/admin/subscriptions".into(),
            none.clone(),
            [403, 403, 403, 200, 401],
        ),
        (
            get.clone(),
            "/admin/dead-letters".into(),
            none.clone(),
            [403, 403, 403, 200, 401],
        ),
        (
            post.clone(),
            "/admin/dead-letters/refund:nothing/retry".into(),
            none.clone(),
            [403, 403, 403, 404, 401],
        ),
        (
            post.clone(),
            "/admin/dead-letters/complete:nothing/discard".into(),
            Some(json!({"reason": "handled by hand"})),
            [403, 403, 403, 404, 401],
        ),
        (
            patch.clone(),
            format!("/listings/{listing}"),
            Some(json!({"price": 1})),
            [0, 403, 403, 403, 401],
        ),
        (
            delete.clone(),
            format!("/listings/{listing}"),
            none.clone(),
            [0, 403, 403, 403, 401],
        ),
        (
            post.clone(),
            format!("/listings/{listing}/requests"),
            Some(json!({})),
            [422, 409, 0, 0, 401],
        ),
        (
            post.clone(),
            format!("/requests/{request}/accept"),
            none.clone(),
            [0, 403, 404, 404, 401],
        ),
        (
            post.clone(),
            format!("/requests/{request}/reject"),
            Some(json!({})),
            [0, 403, 404, 404, 401],
        ),
        (
            post.clone(),
            format!("/requests/{request}/complete"),
            none.clone(),
            [403, 409, 404, 404, 401],
        ),
        (
            post.clone(),
            format!("/requests/{request}/cancel"),
            none.clone(),
            [0, 0, 404, 404, 401],
        ),
        (
            get.clone(),
            "/me/export".into(),
            none.clone(),
            [200, 200, 200, 200, 401],
        ),
        // Closing one's own account: the signed in only, with their password (erasure.rs).
        (
            delete.clone(),
            "/me".into(),
            Some(json!({"password": "not anyone's password"})),
            [422, 422, 422, 422, 401],
        ),
        // Ending one's own sessions is for the signed in only (tested in sessions.rs).
        (
            post.clone(),
            "/auth/logout".into(),
            none.clone(),
            [0, 0, 0, 0, 401],
        ),
        (
            post.clone(),
            "/auth/logout-all".into(),
            none.clone(),
            [0, 0, 0, 0, 401],
        ),
        (
            post.clone(),
            "/auth/password".into(),
            Some(json!({})),
            [422, 422, 422, 422, 401],
        ),
    ];
    let events_before = app.event_count().await;
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (caller, want) in [Seller, Buyer, Stranger, Admin, Nobody]
            .into_iter()
            .zip(expected)
        {
            if *want == 0 {
                continue;
            }
            let (status, text) = call(&app, cast.token(caller), method, path, body).await;
            if status != *want {
                wrong.push(format!(
                    "{method} {path} as {caller:?}: {status}, expected {want}"
                ));
            }
            // Nothing of the deal reaches someone outside it.
            if matches!(caller, Stranger | Nobody)
                && path.starts_with("/mypage")
                    | path.starts_with("/notifications")
                    | (status >= 400)
            {
                for secret in [&request, &payment, &cast.buyer.id] {
                    if text.contains(secret.as_str()) {
                        wrong.push(format!("{method} {path} as {caller:?} leaked {secret}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        app.event_count().await,
        events_before,
        "refused calls appended nothing"
    );
}
