//! PostgreSQL's own ceiling on this machine: pgbench's one-event, two-event and `SELECT 1`
//! workloads (scripts from the design measurements), against a table shaped like the event
//! store of the stock stack, on the same cluster Carrot then runs on.

use std::path::{Path, PathBuf};
use std::process::Command;

use carrot_projections::postgres::embedded::{Binaries, EmbeddedPostgres};
use sqlx::Connection;

use super::ReportError;

/// The table the scripts insert into.
const SCHEMA: &str = "CREATE TABLE events (
    aggregate_type text NOT NULL,
    aggregate_id text NOT NULL,
    sequence bigint CHECK (sequence >= 0) NOT NULL,
    event_type text NOT NULL,
    event_version text NOT NULL,
    payload json NOT NULL,
    metadata json NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
)";

const ONE_EVENT_VALUES: &str =
    "json_build_object('ListingRegistered', json_build_object('seller_id', md5(random()::text),
    'title', 'Vintage mechanical keyboard, barely used, original box',
    'description', 'Cherry MX brown switches, PBT keycaps, USB-C, full size',
    'price', (:amt)::int, 'category', 'electronics')),
  '{\"time\":\"2025-01-01T00:00:00Z\"}'";

/// A pgbench workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// One INSERT of one event per transaction.
    OneEvent,
    /// Two events of one aggregate per transaction, one INSERT each.
    TwoEvents,
    /// `SELECT 1`.
    SelectOne,
}

impl Workload {
    /// Every workload, in the order run.
    pub const ALL: [Workload; 3] = [Workload::OneEvent, Workload::TwoEvents, Workload::SelectOne];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Workload::OneEvent => "one-event",
            Workload::TwoEvents => "two-event",
            Workload::SelectOne => "SELECT 1",
        }
    }

    /// Its pgbench script.
    pub fn script(self) -> String {
        let insert = |id: &str, sequence: u8, event: &str| {
            format!(
                "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)\n\
                 VALUES ('listing', {id}, {sequence}, '{event}', '1.0',\n  {ONE_EVENT_VALUES});\n"
            )
        };
        match self {
            Workload::OneEvent => format!(
                "\\set amt random(1, 100000)\n{}",
                insert("md5(random()::text)", 1, "ListingRegistered")
            ),
            Workload::TwoEvents => format!(
                "\\set amt random(1, 100000)\n\\set id random(1, 9000000000000000000)\nBEGIN;\n{}{}END;\n",
                insert("'a' || :id", 1, "ListingRegistered"),
                insert("'a' || :id", 2, "ListingEdited"),
            ),
            Workload::SelectOne => "SELECT 1;\n".to_owned(),
        }
    }
}

/// Makes the `pgbench` database with its `events` table.
pub async fn prepare(cluster: &EmbeddedPostgres) -> Result<(), ReportError> {
    let mut admin = sqlx::PgConnection::connect(&cluster.url("postgres")).await?;
    sqlx::query("CREATE DATABASE pgbench")
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let mut db = sqlx::PgConnection::connect(&cluster.url("pgbench")).await?;
    sqlx::query(SCHEMA).execute(&mut db).await?;
    db.close().await?;
    Ok(())
}

/// Runs `workload` for `seconds` with `clients` clients; its transactions per second.
pub fn run(
    bin: &Binaries,
    cluster: &EmbeddedPostgres,
    work_dir: &Path,
    workload: Workload,
    clients: u32,
    seconds: u64,
) -> Result<f64, ReportError> {
    let script = work_dir.join(format!("pgbench-{}.sql", workload.name().replace(' ', "-")));
    std::fs::write(&script, workload.script())?;
    let output = Command::new(program(bin, "pgbench"))
        .env("PGPASSWORD", cluster.password())
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-n",
            "-M",
            "prepared",
            "-j",
            "2",
        ])
        .arg("-p")
        .arg(cluster.port().to_string())
        .arg("-T")
        .arg(seconds.to_string())
        .arg("-c")
        .arg(clients.to_string())
        .arg("-f")
        .arg(&script)
        .arg("pgbench")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    tps(&stdout).ok_or_else(|| ReportError::Pgbench {
        workload: workload.name(),
        output: format!("{stdout}{}", String::from_utf8_lossy(&output.stderr)),
    })
}

/// A client program of the installation: beside the server, beside the file the server's
/// path links to (`/usr/local/bin/postgres` -> `/usr/lib/postgresql/15/bin/postgres`), or
/// on PATH.
fn program(bin: &Binaries, name: &str) -> PathBuf {
    let beside = bin.path(name);
    if beside.is_file() {
        return beside;
    }
    std::fs::canonicalize(bin.path("postgres"))
        .ok()
        .and_then(|server| Some(server.parent()?.join(name)))
        .filter(|linked| linked.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The `tps = N (without initial connection time)` figure of pgbench's output.
pub fn tps(output: &str) -> Option<f64> {
    output
        .lines()
        .find(|line| line.starts_with("tps = "))?
        .trim_start_matches("tps = ")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tps_is_read_from_pgbench_output() {
        let output = "number of failed transactions: 0 (0.000%)\n\
                      latency average = 1.663 ms\n\
                      initial connection time = 21.517 ms\n\
                      tps = 19245.112233 (without initial connection time)\n";
        assert_eq!(tps(output), Some(19245.112233));
        assert_eq!(tps("pgbench: error: connection refused"), None);
    }

    #[test]
    fn the_two_event_script_writes_two_events_of_one_aggregate_in_one_transaction() {
        let script = Workload::TwoEvents.script();
        assert_eq!(script.matches("INSERT INTO events").count(), 2);
        assert_eq!(script.matches("'a' || :id").count(), 2);
        assert!(script.contains("BEGIN;") && script.ends_with("END;\n"));
    }
}
