//! The report as Markdown: conditions, PostgreSQL's ceiling, each scenario's operations,
//! memory, replay, and the targets with their ratios.

use std::fmt::Write;

use super::{targets, Figures};

/// The whole report.
pub fn render(f: &Figures) -> String {
    let mut md = String::new();
    let m = &f.machine;
    let _ = writeln!(
        md,
        "# Benchmarks\n\n\
         Written by `carrot-bench report` (see README, \"Benchmarks\"); do not edit by hand.\n\
         What bounds each figure, with the profiles behind it: [PERFORMANCE.md](PERFORMANCE.md).\n\n\
         ## Conditions\n\n\
         | | |\n|---|---|\n\
         | date | {} |\n| commit | {} |\n| CPU | {} ({} cores usable) |\n| memory | {:.1} GiB |\n\
         | PostgreSQL | {}: a fresh embedded cluster, durable (fsync and synchronous_commit on, the server's defaults), on loopback |\n\
         | build | {} |\n\
         | load | the load generator, the service, the payment simulator and PostgreSQL share the machine |\n\
         | service | `carrot serve` defaults (pool 64), rate limits off (the load comes from one address and a few users) |\n\
         | duration | {} s per pgbench workload and per scenario unless said otherwise |\n",
        m.date, m.commit, m.cpu, m.cores, m.memory_gib, m.postgres, m.profile, f.seconds
    );

    let _ = writeln!(
        md,
        "## Targets\n\n| what | target | measured | |\n|---|---|---|---|"
    );
    for v in targets::judge(f) {
        let verdict = match v.met {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "not measured",
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {verdict} |",
            v.what, v.target, v.measured
        );
    }

    let _ = writeln!(
        md,
        "\n## PostgreSQL's ceiling\n\n\
         pgbench `-n -M prepared -j 2 -c 32`, scripts from the design measurements (the two-event script \
         writes two events of one aggregate in one transaction, one INSERT each), against a table \
         shaped like postgres-es's `events` in its own database of the same cluster.\n\n\
         | workload | tps at c=32 |\n|---|---|"
    );
    for (workload, tps) in &f.pgbench {
        let _ = writeln!(md, "| {} | {tps:.0} |", workload.name());
    }

    let _ = writeln!(
        md,
        "\n## Carrot's scenarios\n\n\
         Over real HTTP on loopback; every operation's latency from all samples (nearest rank). \
         Lags are measured from the moment the completing call returned until a poll (every 5 ms) \
         of `GET /requests/{{id}}` shows it completed (MyPage's view) and `GET /payments/{{id}}` \
         shows it paid out."
    );
    for run in &f.scenarios {
        let _ = writeln!(
            md,
            "\n### {}\n\n{:.0} iterations/s ({} in {:.1} s)\n\n\
             | operation | count | p50 ms | p99 ms | max ms | statuses |\n|---|---|---|---|---|---|",
            run.label,
            run.measured.rate(),
            run.measured.iterations,
            run.measured.seconds
        );
        for op in &run.measured.operations {
            let statuses: Vec<String> = op
                .statuses
                .iter()
                .map(|(status, n)| match status {
                    0 => format!("no answer: {n}"),
                    s => format!("{s}: {n}"),
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {} |",
                op.name,
                op.count,
                op.p50_ms,
                op.p99_ms,
                op.max_ms,
                statuses.join(", ")
            );
        }
    }

    let _ = writeln!(
        md,
        "\n## Memory\n\nThe server's peak resident set (`VmHWM`) over every scenario above, \
         the seeds' test at c=100 included: {}.\n",
        f.peak_rss.map_or("not measured".into(), |b| format!(
            "{:.1} MB",
            b as f64 / 1e6
        ))
    );

    let _ = writeln!(
        md,
        "## Replay\n\n`carrot replay` (every view rebuilt aside and swapped in, one after another), \
         the service stopped, over the largest log of the growth curve below (seeded trades, \
         `carrot-bench seed`: real domain payloads, about six events a trade): {} events.\n\n\
         | view | events | seconds | events/s |\n|---|---|---|---|",
        f.replay_log
    );
    for r in &f.replay {
        let _ = writeln!(
            md,
            "| {} | {} | {:.2} | {:.0} |",
            r.view,
            r.events,
            r.seconds,
            r.rate()
        );
    }
    md.push_str(&growth(&f.growth));
    md
}

/// The growth tables: each line's figures, with its ratio to the smallest size's.
fn growth(tables: &[super::growth::Table]) -> String {
    let mut md = String::from(
        "\n## Growth\n\nThe same operation at growing sizes; a ratio of 10 where the size \
         grew 10x means the cost grows linearly with the data, 1.0 means flat.\n",
    );
    for table in tables {
        let replay = table.points.iter().all(|p| p.p99.is_none());
        let _ = writeln!(md, "\n### {}\n\n{}\n", table.title, table.conditions);
        if replay {
            md.push_str(
                "| view | events | events/s | time per event, x smallest |\n|---|---|---|---|\n",
            );
        } else {
            md.push_str(
                "| what | size | p50 ms | p99 ms | p99, x smallest size |\n|---|---|---|---|---|\n",
            );
        }
        for p in &table.points {
            let first = table.points.iter().find(|q| q.what == p.what);
            match (p.p99, first) {
                (Some(p99), Some(first)) => {
                    let base = first.p99.unwrap_or(p99).max(1e-9);
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.2} | {p99:.2} | {:.2} |",
                        p.what,
                        p.size,
                        p.figure,
                        p99 / base
                    );
                }
                (None, Some(first)) => {
                    let _ = writeln!(
                        md,
                        "| {} | {} | {:.0} | {:.2} |",
                        p.what,
                        p.size,
                        p.figure,
                        first.figure / p.figure.max(1e-9)
                    );
                }
                _ => {}
            }
        }
    }
    md
}
