//! Running the `carrot` binary as a real process: start it, wait (bounded) for the line
//! that says it listens, read what it printed, stop it with SIGTERM or kill it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `carrot`.
pub struct Process {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT`, from the line it printed.
    pub address: String,
}

impl Process {
    /// `carrot payment-sim` on a free port: a gateway whose ledger counts every movement.
    pub fn payment_sim() -> Process {
        Process::start(
            &["payment-sim"],
            &[
                ("CARROT_PAYMENT_SIM_BIND", "127.0.0.1:0".to_owned()),
                ("CARROT_LOG", "warn".to_owned()),
            ],
            "payment simulator on",
        )
    }

    /// Starts `carrot ARGS` with `env` added, and waits for a line containing `marker` and
    /// an `http://` address. Rate limits are off (the tests call fast from one address)
    /// unless `env` sets them.
    pub fn start(args: &[&str], env: &[(&str, String)], marker: &str) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_carrot"));
        command
            .env("CARROT_RATE_LIMIT_USER_PER_SECOND", "0")
            .env("CARROT_RATE_LIMIT_ADDRESS_PER_SECOND", "0")
            .args(args)
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(marker))
                .and_then(|l| l.split_whitespace().find(|w| w.starts_with("http://")))
                .map(str::to_owned);
            if let Some(address) = found {
                return Process {
                    child,
                    lines,
                    address,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "carrot {args:?} exited with {status}:\n{}",
                    lines.lock().unwrap().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "carrot {args:?} did not start:\n{}",
                lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it printed on stderr so far.
    pub fn output(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no cleanup of any kind.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (and returns at once).
    pub fn terminate(&self) {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
    }

    /// Waits (bounded) for it to exit.
    pub fn wait(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "carrot did not exit within {bound:?}:\n{}",
                    self.output().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod forwarder;
pub mod load;
pub mod trades;

/// The environment of a `carrot serve` on `database_url`, paying through the simulator at
/// `payment_url`, on any free port, with a secret its replicas share; `extra` adds or
/// overrides (a later entry wins, as with `Command::env`).
pub fn service_env(
    database_url: &str,
    payment_url: &str,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DATABASE_URL", database_url.to_owned()),
        (
            "CARROT_JWT_SECRET",
            "the process tests' shared signing secret".to_owned(),
        ),
        ("CARROT_PAYMENT_URL", payment_url.to_owned()),
        ("CARROT_BIND", "127.0.0.1:0".to_owned()),
        ("CARROT_POLL_INTERVAL_MS", "100".to_owned()),
        ("CARROT_LOG", "warn".to_owned()),
        // One machine's deployment: the service migrates its own database.
        ("CARROT_MIGRATE", "true".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    env
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A signed-up user (of a running service, or of a test's spawned app).
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub token: String,
}

/// Minimal calls against a running `carrot` at `base`.
pub mod http {
    use serde_json::{json, Value};

    use super::User;

    pub fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// `(status, body)`; status 0 when there was no answer (a process down).
    pub async fn call(
        client: &reqwest::Client,
        method: reqwest::Method,
        url: String,
        user: Option<&User>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = client.request(method, url);
        if let Some(user) = user {
            request = request.bearer_auth(&user.token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    pub async fn signup(client: &reqwest::Client, base: &str) -> User {
        let name = format!("p_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let body = json!({"username": name, "password": "correct horse battery"});
        let (status, answer) = call(
            client,
            reqwest::Method::POST,
            format!("{base}/auth/signup"),
            None,
            Some(body),
        )
        .await;
        assert_eq!(status, 201, "signup: {answer}");
        User {
            id: answer["user_id"].as_str().unwrap().to_owned(),
            username: name,
            token: answer["token"].as_str().unwrap().to_owned(),
        }
    }

    pub async fn post(
        client: &reqwest::Client,
        base: &str,
        user: &User,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        call(
            client,
            reqwest::Method::POST,
            format!("{base}{path}"),
            Some(user),
            body,
        )
        .await
    }
}
