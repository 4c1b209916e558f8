//! The conditions of a run: the machine, PostgreSQL's version, the code's commit, the build.

use std::path::Path;
use std::process::Command;

use carrot_projections::postgres::embedded::Binaries;

/// What a figure was measured on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// When (UTC).
    pub date: String,
    /// The code: commit, and whether the tree had changes.
    pub commit: String,
    /// The CPU model.
    pub cpu: String,
    /// Cores usable by this process.
    pub cores: usize,
    /// Memory, in GiB.
    pub memory_gib: f64,
    /// `postgres --version`.
    pub postgres: String,
    /// Release or debug build.
    pub profile: &'static str,
}

impl Machine {
    /// This machine, now, running the code checked out around `checkout`.
    pub fn describe(bin: &Binaries, checkout: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            commit: commit(checkout),
            cpu: field(&cpuinfo, "model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: field(&meminfo, "MemTotal")
                .and_then(|kb| kb.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0 / 1024.0),
            postgres: output(Command::new(bin.path("postgres")).arg("--version"))
                .unwrap_or_else(|| "unknown".into()),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }
}

/// The value of the first `name: value` line.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .find(|line| line.starts_with(name))?
        .split_once(':')
        .map(|(_, value)| value.trim().to_owned())
}

fn commit(checkout: &Path) -> String {
    let git = |args: &[&str]| output(Command::new("git").arg("-C").arg(checkout).args(args));
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout)".into();
    };
    match git(&["status", "--porcelain", "--untracked-files=no"]) {
        Some(changes) if !changes.is_empty() => format!("{head} with uncommitted changes"),
        _ => head,
    }
}

fn output(command: &mut Command) -> Option<String> {
    let out = command.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_proc_files() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(
            field(cpuinfo, "model name").as_deref(),
            Some("AMD EPYC 7B13")
        );
        assert_eq!(
            field("MemTotal:       24576000 kB\n", "MemTotal").as_deref(),
            Some("24576000 kB")
        );
        assert_eq!(field("", "MemTotal"), None);
    }
}
