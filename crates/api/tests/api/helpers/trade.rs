//! A trade through the API: listings, purchase requests and their answers, the waits for
//! what the views and the saga do after them, and a ready-made pending deal.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};

use super::{eventually, TestApp, User};

/// A purchase request placed through the API.
#[derive(Debug, Clone)]
pub struct Placed {
    pub request_id: String,
    pub payment_id: String,
    pub token: String,
}

impl TestApp {
    pub fn patch(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.patch(self.url(path)).bearer_auth(&user.token)
    }

    pub fn delete(&self, user: &User, path: &str) -> RequestBuilder {
        self.client.delete(self.url(path)).bearer_auth(&user.token)
    }

    /// `POST /listings/{id}/requests` with an optional body.
    pub async fn request_listing(
        &self,
        buyer: &User,
        listing_id: &str,
        body: Option<Value>,
    ) -> Response {
        let call = self.post(buyer, &format!("/listings/{listing_id}/requests"));
        let call = match body {
            Some(body) => call.json(&body),
            None => call,
        };
        call.send().await.unwrap()
    }

    /// Places a request at the asking price and expects 201.
    pub async fn place_request(&self, buyer: &User, listing_id: &str) -> Placed {
        let response = self.request_listing(buyer, listing_id, None).await;
        assert_eq!(response.status(), StatusCode::CREATED, "placing a request");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "requested");
        Placed {
            request_id: body["request_id"].as_str().unwrap().to_owned(),
            payment_id: body["payment_id"].as_str().unwrap().to_owned(),
            token: body["consistency_token"].as_str().unwrap().to_owned(),
        }
    }

    /// `POST /requests/{id}/{action}` (accept, reject, complete, cancel) as `user`.
    pub async fn act(&self, user: &User, request_id: &str, action: &str) -> Response {
        self.post(user, &format!("/requests/{request_id}/{action}"))
            .send()
            .await
            .unwrap()
    }

    /// Acts and expects 200 with `status`; returns the consistency token.
    pub async fn act_ok(
        &self,
        user: &User,
        request_id: &str,
        action: &str,
        status: &str,
    ) -> String {
        let response = self.act(user, request_id, action).await;
        assert_eq!(response.status(), StatusCode::OK, "{action} {request_id}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], status);
        assert_eq!(body["request_id"], request_id);
        body["consistency_token"].as_str().unwrap().to_owned()
    }

    /// The catalog's view of a listing once it has reached `token`.
    pub async fn listing_after(&self, user: &User, listing_id: &str, token: &str) -> Value {
        let response = self
            .get(user, &format!("/listings/{listing_id}"))
            .header("x-consistency-token", token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-consistency"], "consistent");
        response.json().await.unwrap()
    }

    /// The event types of one aggregate, in order, straight from the log.
    pub async fn events_of(&self, aggregate_type: &str, aggregate_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_type = $1 AND aggregate_id = $2
              ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(&self.db.pool)
        .await
        .unwrap()
    }

    /// How many gateway calls of `operation` moved money, in all.
    pub fn gateway_calls(&self, operation: &str) -> Vec<(String, u32)> {
        let mut calls: Vec<(String, u32)> = self
            .gateway
            .ledger()
            .into_iter()
            .filter(|(_, s)| s.operation == operation)
            .map(|(key, s)| (key, s.calls))
            .collect();
        calls.sort();
        calls
    }
}

impl TestApp {
    /// `GET /payments/{id}` as `user`.
    pub async fn payment(&self, user: &User, payment_id: &str) -> Response {
        self.get(user, &format!("/payments/{payment_id}"))
            .send()
            .await
            .unwrap()
    }

    /// Waits until the payments view shows `status` for the payment; returns it.
    pub async fn wait_payment(&self, user: &User, payment_id: &str, status: &str) -> Value {
        eventually(&format!("payment {payment_id} to be {status}"), || async {
            let response = self.payment(user, payment_id).await;
            if response.status() != StatusCode::OK {
                return None;
            }
            let body: Value = response.json().await.ok()?;
            (body["status"] == status).then_some(body)
        })
        .await
    }

    /// Waits until an aggregate has recorded `event_type`; returns its events.
    pub async fn wait_event(
        &self,
        aggregate_type: &str,
        id: &str,
        event_type: &str,
    ) -> Vec<String> {
        eventually(
            &format!("{event_type} on {aggregate_type} {id}"),
            || async {
                let events = self.events_of(aggregate_type, id).await;
                events.iter().any(|e| e == event_type).then_some(events)
            },
        )
        .await
    }

    /// One event's payload (its inner object), the first of its type on the aggregate.
    pub async fn event_payload(&self, aggregate_type: &str, id: &str, event_type: &str) -> Value {
        let payload: Value = sqlx::query_scalar(
            "SELECT payload FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = $3
              ORDER BY sequence LIMIT 1",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(event_type)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        payload[event_type].clone()
    }

    /// Makes `user` an admin and returns them signed in again (roles ride in the token).
    pub async fn make_admin(&self, user: &User) -> User {
        sqlx::query("UPDATE users SET role = 'admin' WHERE user_id = $1::uuid")
            .bind(&user.id)
            .execute(&self.db.pool)
            .await
            .unwrap();
        self.log_in(user).await
    }

    /// Logs `user` in again; the user with the new token.
    pub async fn log_in(&self, user: &User) -> User {
        let response = self
            .client
            .post(self.url("/auth/login"))
            .json(&json!({"username": user.username, "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        User {
            token: body["token"].as_str().unwrap().to_owned(),
            ..user.clone()
        }
    }
}

/// A seller, a buyer, the seller's listing and the buyer's pending request on it.
pub struct Deal {
    pub seller: User,
    pub buyer: User,
    pub listing: String,
    pub placed: Placed,
}

impl TestApp {
    /// A fresh deal: a listing at `price` and a paid, pending request for it.
    pub async fn pending_deal(&self, title: &str, price: i64) -> Deal {
        let seller = self.signup("seller").await;
        let buyer = self.signup("buyer").await;
        let (listing, _) = self.register_listing(&seller, title, price).await;
        let placed = self.place_request(&buyer, &listing).await;
        Deal {
            seller,
            buyer,
            listing,
            placed,
        }
    }

    /// Waits until the request is rejected; returns the rejection's payload.
    pub async fn wait_rejection(&self, request_id: &str) -> Value {
        self.wait_event("purchase_request", request_id, "PurchaseRequestRejected")
            .await;
        self.event_payload("purchase_request", request_id, "PurchaseRequestRejected")
            .await
    }
}

impl TestApp {
    /// Waits until every subscriber has applied the whole log and the saga's outbox is
    /// empty, three times in a row (settling appends events the views then apply).
    pub async fn settle(&self) {
        let (within, poll) = (Duration::from_secs(15), Duration::from_millis(20));
        crate::common::trades::settled_within(&self.db.pool, within, 3, poll).await;
    }

    /// `GET path` as `user`, expecting 200; the body.
    pub async fn read(&self, user: &User, path: &str) -> Value {
        let response = self.get(user, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }
}
