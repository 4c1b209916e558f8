//! Streaming replication between private clusters, for the tests that read from a replica
//! and fail a primary over: a standby made with `pg_basebackup`, promoted with
//! `pg_ctl promote`, and a cluster killed outright, every process at once, as the loss of
//! its machine would.

use std::path::Path;
use std::process::Command;

use super::binaries::run;
use super::files::{password_file, write_private};
use super::{step, ClusterOptions, EmbeddedError, EmbeddedPostgres, SUPERUSER};

impl EmbeddedPostgres {
    /// Starts a streaming standby of this cluster in `data_dir` (made with `pg_basebackup`),
    /// known to the primary as `name` (its `application_name`, which
    /// `synchronous_standby_names` refers to), with `settings`; its files go when it stops.
    pub fn start_standby(
        &self,
        data_dir: &Path,
        name: &str,
        settings: Vec<String>,
    ) -> Result<EmbeddedPostgres, EmbeddedError> {
        let conninfo = format!(
            "host=127.0.0.1 port={} user={SUPERUSER} password={} application_name={name}",
            self.port, self.password
        );
        self.run_as.make_dir(data_dir, 0o700)?;
        let mut backup = self.run_as.command(&self.bin.path("pg_basebackup"));
        backup
            .arg("-D")
            .arg(data_dir)
            .args(["-d", &conninfo])
            .args(["-X", "stream", "--checkpoint=fast", "--no-sync", "-R"]);
        run(backup, "pg_basebackup")?;
        // `-R` wrote standby.signal and a primary_conninfo; this one (later in the file, so
        // it wins) names the standby for the primary.
        let auto_conf = data_dir.join("postgresql.auto.conf");
        let mut conf = std::fs::read_to_string(&auto_conf)
            .map_err(step("reading the standby's postgresql.auto.conf"))?;
        conf.push_str(&format!("primary_conninfo = '{conninfo}'\n"));
        std::fs::write(&auto_conf, conf).map_err(step("naming the standby"))?;
        write_private(&password_file(data_dir), &self.password)
            .map_err(step("keeping the standby's password beside it"))?;
        let options = ClusterOptions {
            data_dir: data_dir.to_path_buf(),
            durable: false,
            remove_on_stop: true,
            port: None,
            settings,
        };
        Self::spawn(&self.bin, self.run_as, &options, self.password.clone())
    }

    /// Promotes this standby to a primary, and waits until it takes writes.
    pub fn promote(&self) -> Result<(), EmbeddedError> {
        let mut promote = self.run_as.command(&self.bin.path("pg_ctl"));
        promote
            .arg("promote")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-w", "-t", "60"]);
        run(promote, "pg_ctl promote")
    }

    /// Kills every process of the cluster at once with SIGKILL: nothing is shut down,
    /// flushed or told. The files stay as the kill left them.
    pub fn kill(&mut self) {
        // The watchdog leads the process group the postmaster and its backends are in.
        let group = format!("-{}", self.watchdog.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.watchdog.wait();
        self.stdin = None;
    }
}
