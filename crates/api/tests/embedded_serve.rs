//! `carrot serve` with no DATABASE_URL: an embedded PostgreSQL in the data directory,
//! stopped with carrot, and the data (and tokens) still there after a restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Carrot {
    child: Child,
    address: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(data_dir: &Path, port: u16) -> Carrot {
    let mut child = Command::new(env!("CARGO_BIN_EXE_carrot"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env_remove("CARROT_JWT_SECRET")
        .env("CARROT_DATA_DIR", data_dir)
        .env("CARROT_BIND", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) for the "listening" line; keep what it printed for the assertions.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut printed = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let listening = line.contains("listening on");
            printed.push(line);
            if listening {
                break;
            }
        }
    }
    let said = printed.join("\n");
    assert!(
        said.contains("listening on"),
        "carrot did not start:\n{said}"
    );
    assert!(
        said.contains(&data_dir.join("pg").display().to_string()),
        "carrot should say where its data lives:\n{said}"
    );
    Carrot {
        child,
        address: format!("http://127.0.0.1:{port}"),
    }
}

fn stop(mut carrot: Carrot) {
    let pid = carrot.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = carrot.child.try_wait() {
            assert!(status.success(), "carrot exited with {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = carrot.child.kill();
    panic!("carrot did not stop within 30 s of SIGTERM");
}

fn postmaster_running(data_dir: &Path) -> bool {
    let Ok(pid_file) = std::fs::read_to_string(data_dir.join("pg").join("postmaster.pid")) else {
        return false;
    };
    let pid = pid_file
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    !pid.is_empty() && Path::new(&format!("/proc/{pid}")).exists()
}

/// Signs `username` up on `carrot` and registers a listing titled `title`; the token, the
/// listing's id and the registration's consistency token.
async fn signup_and_list(
    client: &reqwest::Client,
    carrot: &Carrot,
    username: &str,
    title: &str,
) -> (String, String, String) {
    let signup: Value = client
        .post(format!("{}/auth/signup", carrot.address))
        .json(&json!({"username": username, "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signup["token"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(format!("{}/listings", carrot.address))
        .bearer_auth(&token)
        .json(&json!({"title": title, "description": "", "price": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listing = created["listing_id"].as_str().unwrap().to_owned();
    let written = created["consistency_token"].as_str().unwrap().to_owned();
    (token, listing, written)
}

#[tokio::test]
async fn serve_runs_its_own_postgres_and_keeps_the_data_across_a_restart() {
    let data_dir =
        std::env::temp_dir().join(format!("carrot-serve-{}", uuid::Uuid::new_v4().simple()));
    let client = reqwest::Client::new();
    let port = free_port();

    let carrot = start(&data_dir, port);
    // A log position: still good after a restart, when the catalog may be catching up.
    let (token, listing_id, written) =
        signup_and_list(&client, &carrot, "restart_test", "Survives restarts").await;
    stop(carrot);
    assert!(
        !postmaster_running(&data_dir),
        "PostgreSQL must stop with carrot"
    );

    // Same data directory, a new process: the token (same kept secret) and data are still good.
    let carrot = start(&data_dir, port);
    // A new client: the old one's keep-alive connections died with the first process.
    let client = reqwest::Client::new();
    let read = client
        .get(format!("{}/listings/{listing_id}", carrot.address))
        .bearer_auth(&token)
        .header("x-consistency-token", written)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), reqwest::StatusCode::OK);
    let listing: Value = read.json().await.unwrap();
    assert_eq!(listing["title"], "Survives restarts");
    stop(carrot);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// `carrot <args>` beside a running `carrot serve` on the same data directory.
fn beside(data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_carrot"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("CARROT_DATA_DIR", data_dir)
        .env("CARROT_LOG", "error")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_operator_commands_use_the_running_embedded_server() {
    let data_dir =
        std::env::temp_dir().join(format!("carrot-beside-{}", uuid::Uuid::new_v4().simple()));
    let client = reqwest::Client::new();
    let carrot = start(&data_dir, free_port());
    let (_, listing, _) =
        signup_and_list(&client, &carrot, "operator_beside", "Seen by the CLI").await;

    let aggregate = format!("listing/{listing}");
    for args in [
        vec!["admin", "grant", "operator_beside"],
        vec!["replay", "catalog"],
        vec!["replay", "--verify"],
        vec!["events", "--aggregate", aggregate.as_str()],
        vec!["saga", "dead-letters"],
        vec!["quarantine", "settlement"],
    ] {
        let out = beside(&data_dir, &args);
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "carrot {args:?}:\n{said}");
        assert!(
            !said.contains("postmaster.pid") && !said.contains("embedded PostgreSQL on"),
            "carrot {args:?} started a server of its own:\n{said}"
        );
        if args[0] == "events" {
            assert!(said.contains("ListingRegistered"), "{said}");
        }
    }
    // The grant took: the role rides in the next login's token.
    let login: Value = client
        .post(format!("{}/auth/login", carrot.address))
        .json(&json!({"username": "operator_beside", "password": "correct horse"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["token"].as_str().unwrap();
    let subscriptions = client
        .get(format!("{}/admin/subscriptions", carrot.address))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(subscriptions.status(), reqwest::StatusCode::OK);
    stop(carrot);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn two_first_starts_on_one_data_directory_cannot_race_and_the_loser_says_why() {
    let data_dir =
        std::env::temp_dir().join(format!("carrot-race-{}", uuid::Uuid::new_v4().simple()));
    let spawn = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_carrot"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env_remove("CARROT_JWT_SECRET")
            .env("CARROT_DATA_DIR", &data_dir)
            .env("CARROT_BIND", format!("127.0.0.1:{}", free_port()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let said = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut said = sink.lock().unwrap();
                said.push_str(&line);
                said.push('\n');
            }
        });
        (child, said)
    };
    let mut both = [spawn(), spawn()];
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut winner, mut loser) = (None, None);
    while (winner.is_none() || loser.is_none()) && Instant::now() < deadline {
        for (i, (child, said)) in both.iter_mut().enumerate() {
            if winner.is_none() && said.lock().unwrap().contains("listening on") {
                winner = Some(i);
            }
            if loser.is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    assert!(!status.success(), "{}", said.lock().unwrap());
                    loser = Some(i);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (winner, loser) = (
        winner.expect("one comes up"),
        loser.expect("the other stops"),
    );
    assert_ne!(winner, loser);
    let said = both[loser].1.lock().unwrap().clone();
    assert!(
        said.contains("another carrot serve runs the embedded PostgreSQL"),
        "{said}"
    );
    assert!(!said.contains("postmaster.pid"), "{said}");
    let (mut child, _) = std::mem::replace(&mut both[winner], spawn_noop());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(!postmaster_running(&data_dir));
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// A finished child, to take another's place in an array.
fn spawn_noop() -> (Child, std::sync::Arc<std::sync::Mutex<String>>) {
    let mut child = Command::new("true").spawn().unwrap();
    let _ = child.wait();
    (child, Default::default())
}
