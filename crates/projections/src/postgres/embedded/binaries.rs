//! Where the server comes from and who runs it: the installed PostgreSQL binaries (the
//! newest version wins), and the user the server runs as (ourselves, or `postgres` when
//! this process is root, which PostgreSQL refuses to run as).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{step, EmbeddedError};

/// The directory holding `initdb`, `postgres` and `pg_ctl`.
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the server binaries: PATH first, then the newest `/usr/lib/postgresql/*/bin`.
    pub fn locate() -> Result<Self, EmbeddedError> {
        Self::locate_in(std::env::var_os("PATH"), Path::new("/usr/lib/postgresql"))
    }

    /// Finds the server binaries on `path` (a PATH-style list), then under `versions_root`.
    pub fn locate_in(
        path: Option<std::ffi::OsString>,
        versions_root: &Path,
    ) -> Result<Self, EmbeddedError> {
        let has_server =
            |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
        if let Some(path) = path {
            if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
                // A directory of links to the server (`/usr/local/bin/initdb` ->
                // `/usr/lib/postgresql/15/bin/initdb`) may lack the other programs.
                let dir = fs::canonicalize(dir.join("initdb"))
                    .ok()
                    .and_then(|initdb| initdb.parent().map(Path::to_path_buf))
                    .unwrap_or(dir);
                return Ok(Self { dir });
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(versions_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                has_server(&bin).then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions
            .pop()
            .map(|(_, dir)| Self { dir })
            .ok_or(EmbeddedError::NoBinaries)
    }

    /// One of the installation's programs (`pgbench`, `psql`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A short name for this installation, to key caches on.
    pub fn fingerprint(&self) -> String {
        self.dir
            .to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    }
}

/// Who runs the server: ourselves, or the `postgres` user when we are root.
#[derive(Debug, Clone, Copy)]
pub(super) enum RunAs {
    Myself,
    ServiceUser { uid: u32, gid: u32 },
}

impl RunAs {
    pub(super) fn detect() -> Result<Self, EmbeddedError> {
        if effective_uid() != Some(0) {
            return Ok(RunAs::Myself);
        }
        let passwd = fs::read_to_string("/etc/passwd").map_err(step("reading /etc/passwd"))?;
        passwd
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                match fields.as_slice() {
                    ["postgres", _, uid, gid, ..] => Some(RunAs::ServiceUser {
                        uid: uid.parse().ok()?,
                        gid: gid.parse().ok()?,
                    }),
                    _ => None,
                }
            })
            .ok_or(EmbeddedError::NoServiceUser)
    }

    pub(super) fn command(self, program: &Path) -> Command {
        match self {
            RunAs::Myself => Command::new(program),
            RunAs::ServiceUser { .. } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        }
    }

    /// Creates `dir` (and parents) owned by the server user.
    pub(super) fn make_dir(self, dir: &Path, mode: u32) -> Result<(), EmbeddedError> {
        fs::create_dir_all(dir).map_err(step("creating a directory for PostgreSQL"))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(mode))
            .map_err(step("setting directory permissions"))?;
        if let RunAs::ServiceUser { uid, gid } = self {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .map_err(step("handing a directory to the postgres user"))?;
            let writable = self
                .command(Path::new("test"))
                .arg("-w")
                .arg(dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if !writable {
                return Err(EmbeddedError::Unreachable(dir.to_path_buf()));
            }
        }
        Ok(())
    }
}

fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub(super) fn run(mut cmd: Command, what: &'static str) -> Result<(), EmbeddedError> {
    let output = cmd.output().map_err(step(what))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(EmbeddedError::Step {
            step: what,
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_no_server_binaries_the_error_names_every_way_out() {
        let empty = std::env::temp_dir().join(format!("carrot-no-pg-{}", std::process::id()));
        let _ = fs::create_dir_all(&empty);
        let found = Binaries::locate_in(Some(empty.clone().into_os_string()), &empty);
        let message = match found {
            Err(e @ EmbeddedError::NoBinaries) => e.to_string(),
            other => panic!("expected NoBinaries, got {:?}", other.map(|b| b.dir)),
        };
        for needle in [
            "DATABASE_URL",
            "apt-get install postgresql",
            "docker compose up",
        ] {
            assert!(
                message.contains(needle),
                "{needle:?} missing from: {message}"
            );
        }
        let _ = fs::remove_dir_all(&empty);
    }

    #[test]
    fn the_newest_installed_version_wins() {
        let root = std::env::temp_dir().join(format!("carrot-pg-versions-{}", std::process::id()));
        for version in ["13", "15", "9"] {
            let bin = root.join(version).join("bin");
            fs::create_dir_all(&bin).unwrap();
            fs::write(bin.join("initdb"), "").unwrap();
            fs::write(bin.join("postgres"), "").unwrap();
        }
        let found = Binaries::locate_in(None, &root).unwrap();
        assert!(found.dir.ends_with("15/bin"), "{:?}", found.dir);
        let _ = fs::remove_dir_all(&root);
    }
}
