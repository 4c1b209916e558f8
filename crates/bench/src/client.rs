//! Typed calls to a running Carrot, each timed and recorded under its operation's name.

use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

use crate::stats::Recorder;

/// How often [`Carrot::until`] looks again.
const POLL_EVERY: Duration = Duration::from_millis(5);

/// A signed-up user of the run.
#[derive(Debug, Clone)]
pub struct User {
    /// Their bearer token.
    pub token: String,
    /// Their id (nil if the answer had none).
    pub id: uuid::Uuid,
}

/// One HTTP client (a connection pool) and where to record.
#[derive(Clone)]
pub struct Carrot {
    client: Client,
    base: String,
    /// Where every call's latency and status go.
    pub recorder: Recorder,
}

/// A call's status and body (`Null` when there was no answer).
pub type Answer = (u16, Value);

impl Carrot {
    /// A client of the service at `base` (`http://127.0.0.1:8080`).
    pub fn new(base: &str, recorder: Recorder, connections: usize) -> Result<Self, reqwest::Error> {
        Ok(Carrot {
            client: Client::builder()
                .pool_max_idle_per_host(connections)
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            recorder,
        })
    }

    /// Calls `method path` with `body`, as `user`; records it as `op`.
    pub async fn call(
        &self,
        op: &str,
        method: Method,
        path: &str,
        user: Option<&User>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = Instant::now();
        let answer = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        };
        self.recorder.record(op, started.elapsed(), answer.0);
        answer
    }

    /// Signs a fresh user up.
    pub async fn signup(&self) -> Option<User> {
        let name = format!("b_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = json!({"username": name, "password": "benchmark password"});
        let (status, answer) = self
            .call("signup", Method::POST, "/auth/signup", None, Some(&body))
            .await;
        (status == StatusCode::CREATED.as_u16()).then(|| User {
            token: answer["token"].as_str().unwrap_or_default().to_owned(),
            id: answer["user_id"]
                .as_str()
                .and_then(|id| uuid::Uuid::try_parse(id).ok())
                .unwrap_or_default(),
        })
    }

    /// Registers a listing; its id.
    pub async fn register(&self, seller: &User, price: i64) -> Option<String> {
        let body = json!({"title": "Benchmark bicycle", "description": "Steel frame, 56 cm, new chain", "price": price});
        let (status, answer) = self
            .call(
                "register",
                Method::POST,
                "/listings",
                Some(seller),
                Some(&body),
            )
            .await;
        (status == 201).then(|| answer["listing_id"].as_str().unwrap_or_default().to_owned())
    }

    /// Requests (and pays for) a listing; the answer.
    pub async fn request(&self, buyer: &User, listing: &str) -> Answer {
        self.call(
            "request",
            Method::POST,
            &format!("/listings/{listing}/requests"),
            Some(buyer),
            None,
        )
        .await
    }

    /// `POST /requests/{id}/{action}`.
    pub async fn act(&self, user: &User, request: &str, action: &str) -> Answer {
        self.call(
            action,
            Method::POST,
            &format!("/requests/{request}/{action}"),
            Some(user),
            None,
        )
        .await
    }

    /// `GET path` as `user`, recorded as `op`.
    pub async fn get(&self, op: &str, user: &User, path: &str) -> Answer {
        self.call(op, Method::GET, path, Some(user), None).await
    }

    /// Polls `path` until `done` holds for its body (at most 10 s); how long it took after
    /// `since`. Polls are not recorded: they are the measuring instrument.
    pub async fn until(
        &self,
        user: &User,
        path: &str,
        since: Instant,
        done: impl Fn(&Value) -> bool,
    ) -> Option<Duration> {
        let deadline = since + Duration::from_secs(10);
        while Instant::now() < deadline {
            let response = self
                .client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&user.token)
                .send()
                .await
                .ok()?;
            if let Ok(body) = response.json::<Value>().await {
                if done(&body) {
                    return Some(since.elapsed());
                }
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
        None
    }
}
