//! The small pieces around a cluster's files: its `postmaster.pid`, the superuser's password
//! file beside the data directory, private writes, a free port, random names, a log's tail,
//! and the retry of a start whose probed port was taken.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{EmbeddedError, PASSWORD_FILE};

/// Runs `attempt` up to three times: a freshly probed free port can be taken before the
/// postmaster binds it (other test processes probe too).
pub(super) fn retrying<T>(
    mut attempt: impl FnMut() -> Result<T, EmbeddedError>,
) -> Result<T, EmbeddedError> {
    let mut last_error = None;
    for _ in 0..3 {
        match attempt() {
            Ok(done) => return Ok(done),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or(EmbeddedError::Step {
        step: "starting PostgreSQL",
        detail: "no attempt made".into(),
    }))
}

/// What a server's `postmaster.pid` says: its pid, its port, and whether it accepts
/// connections (the 8th line, its status, reads "ready").
pub(super) struct PidFile {
    pub(super) pid: u32,
    pub(super) port: u16,
    pub(super) ready: bool,
}

impl PidFile {
    pub(super) fn read(data_dir: &Path) -> Option<PidFile> {
        let text = fs::read_to_string(data_dir.join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        Some(PidFile {
            pid: lines.first()?.parse().ok()?,
            port: lines.get(3)?.parse().ok()?,
            ready: lines.get(7) == Some(&"ready"),
        })
    }
}

pub(super) fn password_file(data_dir: &Path) -> PathBuf {
    data_dir.with_file_name(PASSWORD_FILE)
}

pub(super) fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

pub(super) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Hex of `bytes` random bytes from the kernel.
pub fn random_hex(bytes: usize) -> std::io::Result<String> {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

pub(super) fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
