//! TLS to PostgreSQL and to the payment gateway (issue 16): a cluster that serves TLS with a
//! certificate a private CA signed, reached with `sslmode=require` and with
//! `sslmode=verify-full` (refused against the wrong CA); Carrot settling a trade over it;
//! and an `https://` gateway trusted through `CARROT_PAYMENT_CA_FILE`'s CA, refused without.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use carrot_api::payment::{HttpGateway, SimulatedGateway, SimulationProfile};
use carrot_domain::payment::{GatewayError, PaymentGateway};
use carrot_projections::postgres::embedded::EmbeddedPostgres;
use carrot_projections::postgres::{connect, ensure_database, prepare, Schema};
use carrot_projections::testing::TestDatabase;

use crate::helpers::{spawn_app_on, test_settings, throwaway_cluster};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1, in a new directory;
/// `other-ca.crt` is a CA that signed nothing here.
fn certificates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("carrot-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    for ca in ["ca", "other-ca"] {
        openssl(
            &dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=carrot test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
        );
    }
    openssl(
        &dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ],
    );
    dir
}

/// A cluster of its own serving TLS with `dir`'s server certificate.
async fn tls_cluster(dir: &Path) -> EmbeddedPostgres {
    let cluster = throwaway_cluster().await;
    // The server reads its key as the cluster's owner, and only from a private file.
    let owner = std::fs::metadata(cluster.data_dir()).unwrap();
    for file in ["server.crt", "server.key"] {
        let path = dir.join(file);
        std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    std::os::unix::fs::chown(dir, Some(owner.uid()), Some(owner.gid())).unwrap();
    let admin = connect(&cluster.url("postgres"), 1).await.unwrap();
    for statement in [
        format!(
            "ALTER SYSTEM SET ssl_cert_file = '{}'",
            dir.join("server.crt").display()
        ),
        format!(
            "ALTER SYSTEM SET ssl_key_file = '{}'",
            dir.join("server.key").display()
        ),
        "ALTER SYSTEM SET ssl = on".to_owned(),
    ] {
        sqlx::query(&statement).execute(&admin).await.unwrap();
    }
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure_database(&cluster.url("postgres"), "carrot")
        .await
        .unwrap();
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrot_reaches_postgres_over_tls_and_verifies_its_certificate() {
    let dir = certificates();
    let cluster = tls_cluster(&dir).await;
    let base = cluster.url("carrot");
    let ca = dir.join("ca.crt");
    let other = dir.join("other-ca.crt");

    // Encrypted, certificate not checked (what `sslmode=require` promises).
    let required = connect(&format!("{base}?sslmode=require"), 1)
        .await
        .unwrap();
    let encrypted: bool =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&required)
            .await
            .unwrap();
    assert!(encrypted);
    required.close().await;

    // Verified against the wrong CA: refused before any query.
    let wrong = connect(
        &format!("{base}?sslmode=verify-full&sslrootcert={}", other.display()),
        1,
    )
    .await;
    assert!(
        wrong.is_err(),
        "a certificate the CA did not sign is refused"
    );

    // Verified against the right one: Carrot runs a trade over it, settlement included.
    let url = format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display());
    let pool = connect(&url, 20).await.unwrap();
    prepare(&pool, Schema::Migrate).await.unwrap();
    let gateway = Arc::new(SimulatedGateway::new(SimulationProfile::default()));
    let mut settings = test_settings();
    settings.gateway = gateway.clone();
    let db = TestDatabase {
        pool,
        name: "carrot".into(),
        url,
    };
    let app = spawn_app_on(settings, gateway, db).await;
    let deal = app.pending_deal("Tent", 80_000).await;
    app.act_ok(&deal.seller, &deal.placed.request_id, "reject", "rejected")
        .await;
    app.wait_payment(&deal.buyer, &deal.placed.payment_id, "refunded")
        .await;
    let all_encrypted: bool = sqlx::query_scalar(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
          WHERE a.datname = 'carrot' AND a.backend_type = 'client backend'",
    )
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert!(all_encrypted, "every connection of the app is encrypted");
}

/// `openssl s_server` answering HTTPS with `dir`'s certificate (any path: a status page).
struct HttpsServer(Child, u16);

impl HttpsServer {
    fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(dir.join("server.crt"))
            .arg("-key")
            .arg(dir.join("server.key"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpsServer(child, port)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn an_https_gateway_is_trusted_through_its_ca_and_refused_without_it() {
    let dir = certificates();
    let server = HttpsServer::start(&dir);
    let base = format!("https://localhost:{}", server.1);
    let since = chrono::Utc::now();

    // Without the CA: the handshake fails; nothing was sent.
    let untrusted = HttpGateway::new(&base).unwrap();
    let refused = untrusted.movements(since, 10).await;
    assert!(
        matches!(&refused, Err(GatewayError::Unavailable(e)) if e.contains("error sending request")),
        "{refused:?}"
    );
    // With it: the request reaches the server (whose status page is not the gateway's
    // JSON, which is this test's only way to see that it got through).
    let ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let trusted = HttpGateway::trusting(&base, Some(&ca)).unwrap();
    let reached = trusted.movements(since, 10).await;
    assert!(
        matches!(&reached, Err(GatewayError::Unavailable(e)) if e.contains("decoding")),
        "{reached:?}"
    );
}
