//! Replay speed: the log topped up with seeded trades to the size asked, then `carrot
//! replay` rebuilding every view from it, its own summary lines read back.

use std::path::Path;
use std::process::Command;

use super::ReportError;

/// One view's rebuild, as `carrot replay` reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuild {
    /// The view.
    pub view: String,
    /// Events applied.
    pub events: u64,
    /// Seconds taken.
    pub seconds: f64,
}

impl Rebuild {
    /// Events per second.
    pub fn rate(&self) -> f64 {
        self.events as f64 / self.seconds.max(1e-9)
    }
}

/// Seeds whole trades until the log holds at least `events` events (recent ones: none due
/// to expire while a service runs on the log); how many it holds.
pub async fn seed_up_to(database_url: &str, events: usize) -> Result<i64, ReportError> {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await?;
    let count = || sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events").fetch_one(&pool);
    let held = count().await?;
    let missing = (events as i64 - held).max(0) as usize;
    if missing > 0 {
        let until = crate::seed::Until::Events(missing);
        let recent = crate::seed::Span::Recent;
        crate::seed::seed_trades(&pool, until, None, recent, &mut |_| {}).await?;
    }
    let held = count().await?;
    pool.close().await;
    Ok(held)
}

/// Runs `carrot replay` (every view) against `database_url`.
pub fn run(
    carrot: &Path,
    database_url: &str,
    work_dir: &Path,
) -> Result<Vec<Rebuild>, ReportError> {
    let output = Command::new(carrot)
        .arg("replay")
        .env("DATABASE_URL", database_url)
        .env("CARROT_DATA_DIR", work_dir.join("carrot"))
        .env("CARROT_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rebuilt: Vec<Rebuild> = stdout.lines().filter_map(parse).collect();
    if !output.status.success() || rebuilt.is_empty() {
        return Err(ReportError::Replay(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(rebuilt)
}

/// `mypage: 1,234,567 events in 25.10 s (49,186 events/s), rebuilt and swapped in at 42`.
fn parse(line: &str) -> Option<Rebuild> {
    let (view, rest) = line.split_once(": ")?;
    let (events, rest) = rest.split_once(" events in ")?;
    let (seconds, _) = rest.split_once(" s (")?;
    Some(Rebuild {
        view: view.to_owned(),
        events: events.replace(',', "").parse().ok()?,
        seconds: seconds.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines_are_read_and_others_skipped() {
        let line =
            "mypage: 1,234,567 events in 25.10 s (49,186 events/s), rebuilt and swapped in at 42";
        assert_eq!(
            parse(line),
            Some(Rebuild {
                view: "mypage".into(),
                events: 1_234_567,
                seconds: 25.10
            })
        );
        assert_eq!(parse("no differences"), None);
        assert_eq!(parse("carrot: embedded PostgreSQL stopped"), None);
    }
}
