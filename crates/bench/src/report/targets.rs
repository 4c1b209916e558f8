//! The targets of issues 7 and 22, each judged from one run's figures.

use super::{Figures, ScenarioRun, Workload};
use crate::stats::Summary;

/// One target and how the run fared.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// What is measured.
    pub what: &'static str,
    /// The target, in words.
    pub target: &'static str,
    /// The figure measured.
    pub measured: String,
    /// Met, missed, or not measured.
    pub met: Option<bool>,
}

/// Every target, judged.
pub fn judge(f: &Figures) -> Vec<Verdict> {
    let pg = |w: Workload| f.pgbench.iter().find(|(x, _)| *x == w).map(|(_, tps)| *tps);
    let run = |prefix: &str| f.scenarios.iter().find(|r| r.label.starts_with(prefix));
    let op = |prefix: &str, name: &str| run(prefix).and_then(|r| r.measured.operation(name));
    let mut verdicts = Vec::new();

    for (prefix, workload, what, target, share) in [
        (
            "register c=50",
            Workload::OneEvent,
            "register, c=50",
            ">= 35% of pgbench one-event tps at c=32",
            0.35,
        ),
        (
            "request c=50",
            Workload::TwoEvents,
            "request, c=50",
            ">= 20% of pgbench two-event tps at c=32",
            0.20,
        ),
    ] {
        verdicts.push(ratio(what, target, run(prefix), pg(workload), share));
    }

    let hot = run("hot");
    let refused = op("hot", "request").map_or(0, |s| not(s, 201));
    let hot_rate = hot.map(|r| r.measured.rate());
    verdicts.push(Verdict {
        what: "hot listing, 100 buyers at once",
        target: "no conflict reaches a client; >= 300 successful requests/s",
        measured: hot_rate.map_or("not run".into(), |r| {
            format!("{r:.0} successful/s; {refused} answers other than 201")
        }),
        met: hot_rate.map(|r| r >= 300.0 && refused == 0),
    });

    let long = op("long", "edit:long").zip(op("long", "edit:fresh"));
    verdicts.push(Verdict {
        what: "long streams",
        target: "a command on a 10,000-event aggregate <= 1.5x one on a fresh one (p50)",
        measured: long.map_or("not run".into(), |(l, f)| {
            format!(
                "{:.2}x ({:.2} ms vs {:.2} ms)",
                l.p50_ms / f.p50_ms,
                l.p50_ms,
                f.p50_ms
            )
        }),
        met: long.map(|(l, f)| l.p50_ms <= 1.5 * f.p50_ms),
    });

    let by_id = run("read by id");
    let by_id_p99 = op("read by id", "read:listing").map(|s| s.p99_ms);
    let mut read = ratio(
        "read by id, c=50",
        ">= 30% of pgbench SELECT 1 tps at c=32; p99 <= 10 ms",
        by_id,
        pg(Workload::SelectOne),
        0.30,
    );
    if let Some(p99) = by_id_p99 {
        read.measured = format!("{}; p99 {p99:.1} ms", read.measured);
        read.met = read.met.map(|met| met && p99 <= 10.0);
    }
    verdicts.push(read);

    for (name, what, target, bound) in [
        (
            "lag:mypage",
            "view lag at half the max command rate",
            "p99 <= 100 ms commit to visible",
            100.0,
        ),
        (
            "lag:paid_out",
            "settlement lag (complete -> paid out)",
            "p99 <= 250 ms",
            250.0,
        ),
    ] {
        let lag = op("trade at half", name);
        verdicts.push(Verdict {
            what,
            target,
            measured: lag.map_or("not run".into(), |s| {
                format!(
                    "p99 {:.1} ms (p50 {:.1}, {} samples, {} unseen in 10 s)",
                    s.p99_ms,
                    s.p50_ms,
                    s.count,
                    not(s, 200)
                )
            }),
            met: lag.map(|s| s.p99_ms <= bound && not(s, 200) == 0),
        });
    }

    let slowest = f.replay.iter().map(|r| r.rate()).reduce(f64::min);
    verdicts.push(Verdict {
        what: "replay",
        target: ">= 100,000 events/s (every view)",
        measured: slowest.map_or("not run".into(), |r| {
            format!("slowest view {r:.0} events/s over {} events", f.replay_log)
        }),
        met: slowest.map(|r| r >= 100_000.0 && f.replay_log >= 1_000_000),
    });
    verdicts.extend(growth(f));

    let seeds = op("seeds", "request");
    verdicts.push(Verdict {
        what: "seeds' test (c=100, slow gateway)",
        target: "100% of requests answered 2xx, p99 <= 1 s",
        measured: seeds.map_or("not run".into(), |s| {
            let ok = s.count - not_2xx(s);
            format!(
                "{ok} of {} 2xx ({:.2}%), p99 {:.0} ms",
                s.count,
                100.0 * ok as f64 / s.count.max(1) as f64,
                s.p99_ms
            )
        }),
        met: seeds.map(|s| not_2xx(s) == 0 && s.p99_ms <= 1000.0),
    });

    verdicts.push(Verdict {
        what: "server memory at c=100",
        target: "<= 150 MB RSS",
        measured: f.peak_rss.map_or("not measured".into(), |b| {
            format!("peak {:.1} MB over the whole run", b as f64 / 1e6)
        }),
        met: f.peak_rss.map(|b| b <= 150_000_000),
    });
    verdicts
}

/// The growth curves' targets: search flat at a million listings, MyPage at any history.
fn growth(f: &Figures) -> Vec<Verdict> {
    let table = |title: &str| f.growth.iter().find(|t| t.title.starts_with(title));
    let mut verdicts = Vec::new();
    let search = table("Catalog search");
    let largest = search.and_then(|t| t.points.iter().map(|p| p.size).max());
    for (word, what) in [
        ("rare word", "search, a rare word"),
        ("common word (", "search, a common word"),
        ("Korean word (", "search, a Korean word"),
    ] {
        let point = search.and_then(|t| {
            t.points
                .iter()
                .find(|p| p.what.starts_with(word) && Some(p.size) == largest)
        });
        verdicts.push(Verdict {
            what,
            target: "p99 <= 20 ms at 1,000,000 available listings, c=10",
            measured: point.map_or("not run".into(), |p| {
                format!("p99 {:.1} ms at {} listings", p.p99.unwrap_or(0.0), p.size)
            }),
            met: point.map(|p| p.p99.is_some_and(|p99| p99 <= 20.0) && p.size >= 1_000_000),
        });
    }
    let mypage = table("MyPage").map(|t| &t.points);
    let worst = mypage.and_then(|points| {
        points
            .iter()
            .max_by(|a, b| a.p99.unwrap_or(0.0).total_cmp(&b.p99.unwrap_or(0.0)))
    });
    let most = mypage.and_then(|points| points.iter().map(|p| p.size).max());
    verdicts.push(Verdict {
        what: "MyPage's summary",
        target: "p99 < 5 ms whatever the seller's history (100,000 sales measured)",
        measured: worst.map_or("not run".into(), |p| {
            format!(
                "worst p99 {:.2} ms (at {} sales)",
                p.p99.unwrap_or(0.0),
                p.size
            )
        }),
        met: worst.map(|p| p.p99.is_some_and(|p99| p99 < 5.0) && most >= Some(100_000)),
    });
    verdicts
}

fn ratio(
    what: &'static str,
    target: &'static str,
    run: Option<&ScenarioRun>,
    ceiling: Option<f64>,
    at_least: f64,
) -> Verdict {
    match run.zip(ceiling) {
        Some((run, ceiling)) => {
            let share = run.measured.rate() / ceiling.max(1e-9);
            Verdict {
                what,
                target,
                measured: format!(
                    "{:.1}% ({:.0}/s vs {ceiling:.0} tps)",
                    share * 100.0,
                    run.measured.rate()
                ),
                met: Some(share >= at_least),
            }
        }
        None => Verdict {
            what,
            target,
            measured: "not run".into(),
            met: None,
        },
    }
}

/// Answers other than `status`.
fn not(summary: &Summary, status: u16) -> u64 {
    summary
        .statuses
        .iter()
        .filter(|(s, _)| **s != status)
        .map(|(_, n)| n)
        .sum()
}

fn not_2xx(summary: &Summary) -> u64 {
    summary
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum()
}
