//! A private PostgreSQL cluster run from the machine's own server binaries.
//!
//! Used by `carrot serve` when no `DATABASE_URL` is set and by the test support. The
//! postmaster runs under a small shell watchdog whose stdin is a pipe from this process:
//! when this process ends, however it ends (even SIGKILL), the pipe closes and the watchdog
//! stops the postmaster with a fast shutdown. So the database never outlives carrot.

mod binaries;
mod files;
mod replication;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Stdio};
use std::time::{Duration, Instant};

pub use binaries::Binaries;
pub use files::random_hex;

use binaries::{run, RunAs};
use files::{free_port, password_file, retrying, tail, write_private, PidFile};

/// Why the embedded cluster could not be prepared or started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No server binaries on this machine.
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb` and `postgres` on PATH and in \
         /usr/lib/postgresql/*/bin). Either set DATABASE_URL to a running PostgreSQL, install the \
         server package (Debian/Ubuntu: `apt-get install postgresql`), or start one with \
         `docker compose up -d postgres`"
    )]
    NoBinaries,
    /// Running as root with no unprivileged user to run the server as.
    #[error(
        "carrot runs as root, and PostgreSQL refuses to; a `postgres` system user is needed to \
         run the embedded database (or set DATABASE_URL)"
    )]
    NoServiceUser,
    /// The server user cannot reach the data directory.
    #[error(
        "the `postgres` user cannot write to {0}; choose a CARROT_DATA_DIR it can reach \
         (for example under /var/lib or /tmp)"
    )]
    Unreachable(PathBuf),
    /// A step failed.
    #[error("{step}: {detail}")]
    Step {
        /// What was being done.
        step: &'static str,
        /// What went wrong (a command's output, an I/O error).
        detail: String,
    },
}

fn step(step: &'static str) -> impl FnOnce(std::io::Error) -> EmbeddedError {
    move |e| EmbeddedError::Step {
        step,
        detail: e.to_string(),
    }
}

/// How the cluster is set up and run.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The cluster's data directory (`PGDATA`).
    pub data_dir: PathBuf,
    /// Durable (fsync on, the server's defaults) or fast and disposable (tests).
    pub durable: bool,
    /// Delete the data directory when the cluster stops (throwaway test clusters).
    pub remove_on_stop: bool,
    /// Listen on this port (to come back where clients expect it after a stop), or on a
    /// free one.
    pub port: Option<u16>,
    /// Server settings (`name=value`) after Carrot's own, which they override: a replication
    /// test's `wal_level=logical` or `synchronous_commit=on`.
    pub settings: Vec<String>,
}

/// A running private cluster; stopping it (or dropping it, or this process ending) shuts it down.
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    port: u16,
    password: String,
    watchdog: Child,
    stdin: Option<ChildStdin>,
    bin: Binaries,
    run_as: RunAs,
}

const SUPERUSER: &str = "postgres";
const PASSWORD_FILE: &str = "carrot-superuser-password";

impl EmbeddedPostgres {
    /// Creates the cluster on first use (initdb), then starts it on a free loopback port.
    pub fn start(bin: &Binaries, options: &ClusterOptions) -> Result<Self, EmbeddedError> {
        let run_as = RunAs::detect()?;
        // Inside the retry: a failed start of a cluster removed on stop removes its files.
        retrying(|| {
            let password = Self::init_with(bin, run_as, &options.data_dir, options.durable)?;
            Self::spawn(bin, run_as, options, password)
        })
    }

    /// Starts a disposable cluster under `base`: a copy of a template made once (under a
    /// file lock, shared by every process using `base`), fast and non-durable, deleted when
    /// it stops. Each test process gets its own, so the log horizon of one (cluster-wide)
    /// is never held back by another's open transactions.
    pub fn start_throwaway(bin: &Binaries, base: &Path) -> Result<Self, EmbeddedError> {
        let run_as = RunAs::detect()?;
        run_as.make_dir(base, 0o755)?;
        let template = base.join("template");
        {
            let lock = fs::File::create(base.join("template.lock"))
                .map_err(step("creating the template lock"))?;
            lock.lock().map_err(step("locking the template"))?;
            Self::init_with(bin, run_as, &template, false)?;
        }
        // A failed start removes its copy (it is a throwaway cluster): retry from a new one.
        retrying(|| {
            let data_dir = base.join(format!(
                "run-{}-{}",
                std::process::id(),
                random_hex(4).map_err(step("naming a throwaway cluster"))?
            ));
            let mut cp = run_as.command(Path::new("cp"));
            cp.arg("-a").arg(&template).arg(&data_dir);
            run(cp, "copying the template cluster")?;
            let options = ClusterOptions {
                data_dir,
                durable: false,
                remove_on_stop: true,
                port: None,
                settings: Vec::new(),
            };
            let password = Self::init_with(bin, run_as, &options.data_dir, false)?;
            Self::spawn(bin, run_as, &options, password)
        })
    }

    /// Prepares a data directory with initdb unless it holds a cluster already; returns the
    /// superuser password kept beside the data directory.
    pub fn init_if_needed(bin: &Binaries, data_dir: &Path) -> Result<String, EmbeddedError> {
        Self::init_with(bin, RunAs::detect()?, data_dir, true)
    }

    /// initdb into `data_dir` unless a cluster is there. `durable`: every file synced
    /// before the cluster is moved into place (`--no-sync` only for throwaway clusters).
    fn init_with(
        bin: &Binaries,
        run_as: RunAs,
        data_dir: &Path,
        durable: bool,
    ) -> Result<String, EmbeddedError> {
        let password_file = password_file(data_dir);
        if data_dir.join("PG_VERSION").is_file() {
            return fs::read_to_string(&password_file)
                .map(|s| s.trim().to_owned())
                .map_err(step(
                    "reading the superuser password kept beside the data directory",
                ));
        }
        let password = random_hex(32).map_err(step("generating a database password"))?;
        // initdb wants the directory empty (or absent) and owned by the server user; the
        // password goes through a file only that user can read, removed right after.
        run_as.make_dir(data_dir, 0o700)?;
        let pwfile = data_dir.join("initdb.pw");
        write_private(&pwfile, &password).map_err(step("writing the initdb password file"))?;
        if let RunAs::ServiceUser { uid, gid } = run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(step("handing the password file to the postgres user"))?;
        }
        let scratch = data_dir.with_extension("initdb");
        let _ = fs::remove_dir_all(&scratch);
        run_as.make_dir(&scratch, 0o700)?;
        let mut initdb = run_as.command(&bin.path("initdb"));
        initdb
            .arg("-D")
            .arg(&scratch)
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("--no-instructions");
        if !durable {
            initdb.arg("--no-sync");
        }
        let result = run(initdb, "initdb");
        let _ = fs::remove_file(&pwfile);
        result?;
        // The password first, synced: a cluster in place always has its password beside it
        // (a crash before the move below only makes the next start run initdb again).
        write_private(&password_file, &password).map_err(step(
            "keeping the superuser password beside the data directory",
        ))?;
        // Move the fresh cluster into place only once it is complete, so a crash during
        // initdb never leaves a half-made data directory that looks usable; then sync the
        // directory holding it, so the move survives a crash too.
        let _ = fs::remove_dir(data_dir);
        fs::rename(&scratch, data_dir).map_err(step("moving the new cluster into place"))?;
        if let Some(parent) = data_dir.parent() {
            fs::File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(step("syncing the data directory's parent"))?;
        }
        Ok(password)
    }

    fn spawn(
        bin: &Binaries,
        run_as: RunAs,
        options: &ClusterOptions,
        password: String,
    ) -> Result<Self, EmbeddedError> {
        let port = match options.port {
            Some(port) => port,
            None => free_port().map_err(step("finding a free port"))?,
        };
        let log = options.data_dir.join("carrot-postgres.log");
        // The watchdog: start the postmaster, report its pid, wait for our pipe to close,
        // then fast-shutdown the postmaster and, for throwaway clusters, remove the files.
        const WATCHDOG: &str = r#"pgdata=$1; log=$2; cleanup=$3; shift 3
"$@" >>"$log" 2>&1 &
pid=$!
echo "$pid"
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid"
if [ "$cleanup" = 1 ]; then rm -rf "$pgdata"; fi"#;
        let mut cmd = run_as.command(Path::new("sh"));
        cmd.args(["-c", WATCHDOG, "carrot-pg-watchdog"])
            .arg(&options.data_dir)
            .arg(&log)
            .arg(if options.remove_on_stop { "1" } else { "0" })
            .arg(bin.path("postgres"))
            .arg("-D")
            .arg(&options.data_dir)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "max_connections=200"]);
        if !options.durable {
            for setting in [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ] {
                cmd.args(["-c", setting]);
            }
        }
        for setting in &options.settings {
            cmd.arg("-c").arg(setting);
        }
        // Own process group: a Ctrl-C on carrot's terminal must not reach the postmaster
        // before carrot has drained; carrot stops it itself.
        cmd.process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut watchdog = cmd
            .spawn()
            .map_err(step("starting the PostgreSQL watchdog"))?;
        let stdin = watchdog.stdin.take();
        let pid = match watchdog.stdout.take() {
            Some(out) => {
                let mut line = String::new();
                BufReader::new(out)
                    .read_line(&mut line)
                    .map_err(step("reading the postmaster's pid"))?;
                line.trim().parse::<u32>().ok()
            }
            None => None,
        };
        let cluster = EmbeddedPostgres {
            data_dir: options.data_dir.clone(),
            port,
            password,
            watchdog,
            stdin,
            bin: bin.clone(),
            run_as,
        };
        cluster.wait_until_accepting(pid, &log)?;
        Ok(cluster)
    }

    /// The URL of `database` on a cluster another process (a `carrot serve`) runs on
    /// `data_dir`, if one is up: its `postmaster.pid` names a live process, says "ready",
    /// and gives the port; the superuser password is kept beside the data directory. The
    /// CLI uses it instead of starting a second server on the same files.
    pub fn running(data_dir: &Path, database: &str) -> Option<String> {
        let server = PidFile::read(data_dir)?;
        // A pid left behind by a crash may name another process now (or a thread): only a
        // live postgres counts.
        let alive = fs::read_to_string(format!("/proc/{}/comm", server.pid))
            .is_ok_and(|comm| matches!(comm.trim(), "postgres" | "postmaster"));
        if !alive || !server.ready {
            return None;
        }
        let password = fs::read_to_string(password_file(data_dir)).ok()?;
        Some(format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            password.trim(),
            server.port
        ))
    }

    fn wait_until_accepting(&self, pid: Option<u32>, log: &Path) -> Result<(), EmbeddedError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = PidFile::read(&self.data_dir).is_some_and(|server| server.ready);
            if ready && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
            if !alive || Instant::now() > deadline {
                return Err(EmbeddedError::Step {
                    step: "starting PostgreSQL",
                    detail: format!(
                        "the server did not come up; the end of {}:\n{}",
                        log.display(),
                        tail(log, 20)
                    ),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The TCP port the cluster listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the cluster's files live.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection URL for `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// Stops the cluster (fast shutdown) and waits for it, at most `timeout`.
    pub fn stop(&mut self, timeout: Duration) {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.watchdog.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(30));
    }
}
