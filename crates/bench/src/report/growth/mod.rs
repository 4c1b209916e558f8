//! The growth tables: the same read or command at growing sizes of what it reads, each
//! figure with its ratio to the smallest size's, so a cost that grows with the data shows
//! at a glance. Run on a database of their own in the report's cluster, after the
//! scenarios: catalog search at growing catalogs, MyPage at growing histories, then a
//! command, a read and every view's replay at growing logs.

mod catalog;

use std::path::Path;
use std::time::Duration;

use carrot_domain::UserId;
use carrot_projections::postgres::ensure_database;
use sqlx::PgPool;

use super::service::Service;
use super::{replay, say, ReportError};
use crate::client::{Carrot, User};
use crate::driver::{self, Load};
use crate::scenarios::{self, Extra};
use crate::seed::{self, Span, Until};
use crate::stats::Recorder;

/// One figure of a growth table.
#[derive(Debug, Clone)]
pub struct Point {
    /// What was measured (one line of the curve).
    pub what: String,
    /// The size it was measured at.
    pub size: u64,
    /// Median latency in ms, or events per second for replay.
    pub figure: f64,
    /// 99th percentile latency in ms (none for replay).
    pub p99: Option<f64>,
}

/// A growth table: its title, what its sizes count, and its figures.
#[derive(Debug, Clone)]
pub struct Table {
    /// The heading.
    pub title: String,
    /// What a size counts, and how the figures were taken.
    pub conditions: String,
    /// Figures, in the order measured.
    pub points: Vec<Point>,
}

/// How big the curves go.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Available listings in the catalog.
    pub catalog: Vec<u64>,
    /// Sales of one seller.
    pub sales: Vec<u64>,
    /// Events in the log.
    pub log: Vec<u64>,
    /// Seconds per measured read or command.
    pub seconds: u64,
}

/// The largest log's replay: each view's rebuild, and the events the log held.
pub type Replayed = (Vec<replay::Rebuild>, i64);

/// Measures every growth table, on fresh databases of `cluster_url`'s cluster.
pub async fn measure(
    work_dir: &Path,
    cluster_url: &dyn Fn(&str) -> String,
    carrot: &Path,
    sizes: &Sizes,
) -> Result<(Vec<Table>, Replayed), ReportError> {
    ensure_database(&cluster_url("postgres"), "growth").await?;
    let url = cluster_url("growth");
    let service = Service::start(work_dir, &url, &[]).await?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await?;
    let reader = Carrot::new(&service.url, Recorder::default(), 4).map_err(other)?;
    let user = reader
        .signup()
        .await
        .ok_or_else(|| other("signup failed"))?;
    let search = search_curve(&service, &pool, &user, sizes).await?;
    let mypage = mypage_curve(&service, &pool, sizes).await?;
    service.stop(Duration::from_secs(30));
    pool.close().await;

    ensure_database(&cluster_url("postgres"), "growth_log").await?;
    let (log, replayed) = log_curve(work_dir, &cluster_url("growth_log"), carrot, sizes).await?;
    Ok((vec![search, mypage, log.0, log.1], replayed))
}

fn other(e: impl std::fmt::Display) -> ReportError {
    ReportError::Io(std::io::Error::other(e.to_string()))
}

/// `GET path` by `user` at c=10 for `seconds`: the median and p99.
async fn timed_get(
    url: &str,
    user: &User,
    path: &str,
    seconds: u64,
) -> Result<(f64, f64), ReportError> {
    let recorder = Recorder::default();
    let carrot = Carrot::new(url, recorder.clone(), 20).map_err(other)?;
    let load = Load {
        concurrency: 10,
        duration: Duration::from_secs(seconds),
        rate: None,
    };
    let (user, shared) = (user.clone(), path.to_owned());
    driver::run(
        load,
        |_| async {},
        move |_| {
            let (carrot, user, path) = (carrot.clone(), user.clone(), shared.clone());
            async move {
                carrot.get("get", &user, &path).await;
            }
        },
    )
    .await;
    let summary = recorder.summaries().into_iter().find(|s| s.name == "get");
    let summary = summary.ok_or_else(|| other("no reads were made"))?;
    if summary.statuses.keys().any(|s| *s != 200) {
        return Err(other(format!("{path}: answers {:?}", summary.statuses)));
    }
    Ok((summary.p50_ms, summary.p99_ms))
}

async fn search_curve(
    service: &Service,
    pool: &PgPool,
    user: &User,
    sizes: &Sizes,
) -> Result<Table, ReportError> {
    let mut points = Vec::new();
    let mut held = 0;
    for &size in &sizes.catalog {
        say(&format!("growth: a catalog of {size} listings"));
        catalog::seed(pool, held, size as usize).await?;
        held = size as usize;
        for (what, query) in catalog::SEARCHES {
            let path = format!("/listings?{query}");
            let (p50, p99) = timed_get(&service.url, user, &path, sizes.seconds).await?;
            let what = what.to_owned();
            points.push(Point {
                what,
                size,
                figure: p50,
                p99: Some(p99),
            });
        }
    }
    Ok(Table {
        title: "Catalog search against the catalog's size".into(),
        conditions: format!(
            "`GET /listings?q=…` (first page, 20 items, `status=available`) at c=10 for {} s \
             each; the size is available listings written straight into the catalog view \
             (Korean and English titles and descriptions, `report/growth/catalog.rs`).",
            sizes.seconds
        ),
        points,
    })
}

async fn mypage_curve(
    service: &Service,
    pool: &PgPool,
    sizes: &Sizes,
) -> Result<Table, ReportError> {
    let client = Carrot::new(&service.url, Recorder::default(), 4).map_err(other)?;
    let mut points = Vec::new();
    for &size in &sizes.sales {
        say(&format!("growth: MyPage of a seller with {size} sales"));
        let seller = client
            .signup()
            .await
            .ok_or_else(|| other("signup failed"))?;
        let id = UserId::from_uuid(seller.id);
        let until = Until::Trades(size as usize);
        seed::seed_trades(pool, until, Some(id), Span::Recent, &mut |_| {}).await?;
        caught_up(&client, &seller, size).await?;
        let (p50, p99) = timed_get(&service.url, &seller, "/mypage", sizes.seconds).await?;
        points.push(Point {
            what: "GET /mypage (the summary)".into(),
            size,
            figure: p50,
            p99: Some(p99),
        });
    }
    Ok(Table {
        title: "MyPage against the seller's history".into(),
        conditions: format!(
            "`GET /mypage` by the seller at c=10 for {} s; the size is trades on the seller's \
             listings (seeded into the log over the last 40 hours, a quarter completed, the rest \
             rejected, cancelled or pending), applied by every running view before measuring.",
            sizes.seconds
        ),
        points,
    })
}

/// Waits (up to 10 minutes) until the seller's summary counts `sales` sales: the views
/// have applied every seeded trade.
async fn caught_up(client: &Carrot, seller: &User, sales: u64) -> Result<(), ReportError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    while std::time::Instant::now() < deadline {
        let (_, body) = client.get("poll", seller, "/mypage").await;
        let counted: u64 = body["sales"]
            .as_object()
            .map(|counts| counts.values().filter_map(serde_json::Value::as_u64).sum())
            .unwrap_or(0);
        // And every other view too: one still applying the seeded trades would share the
        // two cores with the reads measured.
        if counted >= sales && all_caught_up(client).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(other(format!("MyPage never counted {sales} sales")))
}

/// Whether every subscription has applied the whole log (`/health/ready`).
async fn all_caught_up(client: &Carrot) -> bool {
    let (_, ready) = client
        .call("poll", reqwest::Method::GET, "/health/ready", None, None)
        .await;
    ready["subscriptions"]
        .as_array()
        .is_some_and(|subscriptions| {
            subscriptions
                .iter()
                .all(|s| s["lag_events"].as_i64() == Some(0))
        })
}

async fn log_curve(
    work_dir: &Path,
    url: &str,
    carrot: &Path,
    sizes: &Sizes,
) -> Result<((Table, Table), Replayed), ReportError> {
    let migrated = std::process::Command::new(carrot)
        .arg("migrate")
        .env("DATABASE_URL", url)
        .env("CARROT_LOG", "warn")
        .output()?;
    if !migrated.status.success() {
        let said = String::from_utf8_lossy(&migrated.stderr).into_owned();
        return Err(other(format!("carrot migrate failed: {said}")));
    }
    let (mut served, mut replayed, mut last) = (Vec::new(), Vec::new(), (Vec::new(), 0));
    for &size in &sizes.log {
        say(&format!("growth: a log of {size} events, replayed"));
        let held = replay::seed_up_to(url, size as usize).await? as u64;
        let rebuilt = replay::run(carrot, url, work_dir)?;
        for r in &rebuilt {
            replayed.push(Point {
                what: r.view.clone(),
                size: held,
                figure: r.rate(),
                p99: None,
            });
        }
        last = (rebuilt, held as i64);
        // The views are caught up by the replay: the service starts at the log's head.
        let service = Service::start(work_dir, url, &[]).await?;
        for (scenario, what, concurrency) in [
            ("register", "register a listing", 50),
            ("read-by-id", "read a listing by id", 50),
        ] {
            let load = Load {
                concurrency,
                duration: Duration::from_secs(sizes.seconds),
                rate: None,
            };
            let measured = scenarios::run(scenario, &service.url, load, &Extra::default())
                .await
                .map_err(|e| ReportError::Scenario(what.into(), e))?;
            let op = if scenario == "register" {
                "register"
            } else {
                "read:listing"
            };
            if let Some(s) = measured.operation(op) {
                served.push(Point {
                    what: format!("{what} (c={concurrency})"),
                    size: held,
                    figure: s.p50_ms,
                    p99: Some(s.p99_ms),
                });
            }
        }
        service.stop(Duration::from_secs(30));
    }
    let commands = Table {
        title: "A command and a read against the log's size".into(),
        conditions: format!(
            "`carrot-bench run register` and `read-by-id` at c=50 for {} s each, on a log of \
             seeded trades (about six events each, over the last 40 hours, so none expires \
             meanwhile) plus what earlier sizes' runs wrote.",
            sizes.seconds
        ),
        points: served,
    };
    let replay = Table {
        title: "Replay against the log's size".into(),
        conditions: "`carrot replay` (every view, one after another) over the same logs; the \
                     figure is events per second, and its ratio is the smallest log's rate over \
                     this one's (time per event, relative)."
            .into(),
        points: replayed,
    };
    Ok(((commands, replay), last))
}
