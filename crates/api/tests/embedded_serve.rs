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

#[tokio::test]
async fn serve_runs_its_own_postgres_and_keeps_the_data_across_a_restart() {
    let data_dir =
        std::env::temp_dir().join(format!("carrot-serve-{}", uuid::Uuid::new_v4().simple()));
    let client = reqwest::Client::new();
    let port = free_port();

    let carrot = start(&data_dir, port);
    let signup: Value = client
        .post(format!("{}/auth/signup", carrot.address))
        .json(&json!({"username": "restart_test", "password": "correct horse"}))
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
        .json(&json!({"title": "Survives restarts", "description": "", "price": 1000}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listing_id = created["listing_id"].as_str().unwrap().to_owned();
    // A log position: still good after a restart, when the catalog may be catching up.
    let written = created["consistency_token"].as_str().unwrap().to_owned();
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
