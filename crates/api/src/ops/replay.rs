//! `carrot replay [VIEW...] [--verify]`: rebuilds views from the log while the service
//! runs, or rebuilds them aside and reports every difference. A progress bar with events
//! per second on a terminal; plain lines every few seconds otherwise; a summary at the end.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use carrot_projections::replay::{self, Progress, Rebuilt};
use carrot_projections::Subscriber;

use super::OpsError;

/// The views by name: all of them when `names` is empty. The saga (`settlement`) can be
/// named, for the engine to say plainly why it does not rebuild it.
pub fn select(names: &[String]) -> Result<Vec<Arc<dyn Subscriber>>, OpsError> {
    let mut views = carrot_projections::views::all();
    if names.is_empty() {
        return Ok(views);
    }
    views.push(Arc::new(
        carrot_projections::settlement::SettlementSaga::default(),
    ));
    names
        .iter()
        .map(|name| {
            views
                .iter()
                .find(|v| v.name() == name)
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<&str> = views.iter().map(|v| v.name()).collect();
                    OpsError::NotFound(format!(
                        "no view {name:?}; the views are {}",
                        known.join(", ")
                    ))
                })
        })
        .collect()
}

/// Rebuilds (or, with `verify`, checks) each view in turn.
pub async fn run(pool: &Db, views: &[Arc<dyn Subscriber>], verify: bool) -> Result<(), OpsError> {
    let mut report = Reporter::new();
    let mut differences = 0;
    for view in views {
        let progress = &mut |p: Progress| report.progress(p);
        if verify {
            let (rebuilt, found) = replay::verify(pool, view.as_ref(), progress).await?;
            report.done(&rebuilt, "verified");
            for difference in &found {
                let side = match difference.side {
                    replay::Side::LiveOnly => "only in the live view:  ",
                    replay::Side::RebuiltOnly => "only in the rebuild:    ",
                };
                println!("  {} {side}{}", difference.table, difference.row);
            }
            differences += found.len();
        } else {
            let rebuilt = replay::rebuild(pool, view.as_ref(), progress).await?;
            report.done(&rebuilt, "rebuilt and swapped in");
        }
    }
    if differences > 0 {
        return Err(OpsError::Differences(differences));
    }
    if verify {
        println!("no differences");
    }
    Ok(())
}

/// Progress on stderr, summaries on stdout.
pub(crate) struct Reporter {
    terminal: bool,
    last: Instant,
}

impl Reporter {
    pub(crate) fn new() -> Self {
        Reporter {
            terminal: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }

    pub(crate) fn progress(&mut self, p: Progress) {
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(2)
        };
        if self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let rate = p.applied as f64 / p.elapsed.as_secs_f64().max(1e-3);
        let share = if p.total == 0 {
            1.0
        } else {
            (p.applied as f64 / p.total as f64).min(1.0)
        };
        let mut err = std::io::stderr();
        if self.terminal {
            let filled = (share * 30.0) as usize;
            let _ = write!(
                err,
                "\r{:<14} [{}{}] {:>3.0}%  {} / {} events  {} ev/s ",
                p.view,
                "#".repeat(filled),
                "-".repeat(30 - filled),
                share * 100.0,
                thousands(p.applied),
                thousands(p.total),
                thousands(rate as u64),
            );
        } else {
            let _ = writeln!(
                err,
                "{}: {} / {} events, {} ev/s",
                p.view,
                thousands(p.applied),
                thousands(p.total),
                thousands(rate as u64)
            );
        }
        let _ = err.flush();
    }

    fn done(&mut self, rebuilt: &Rebuilt, what: &str) {
        if self.terminal {
            eprint!("\r{:80}\r", "");
        }
        println!(
            "{}: {} events in {:.2} s ({} events/s), {what} at {}",
            rebuilt.view,
            thousands(rebuilt.events),
            rebuilt.elapsed.as_secs_f64(),
            thousands(rebuilt.rate() as u64),
            rebuilt.checkpoint,
        );
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn views_are_chosen_by_name() {
        assert_eq!(select(&[]).map(|v| v.len()).ok(), Some(5));
        let one = select(&["mypage".to_owned()]).ok();
        assert_eq!(one.map(|v| v[0].name()), Some("mypage"));
        assert!(select(&["nope".to_owned()]).is_err());
    }
}
