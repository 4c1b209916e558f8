//! The service under test: `carrot payment-sim` and `carrot serve`, started from the binary
//! beside this one, on free loopback ports, with their output kept in the work directory.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::ReportError;

/// A running service and its payment simulator; both stopped when dropped.
pub struct Service {
    /// Where the API listens.
    pub url: String,
    /// Where the payment simulator listens.
    pub payment_sim: String,
    server: Child,
    simulator: Child,
}

impl Service {
    /// Starts both against `database_url`, with `env` added to the server's environment,
    /// and waits until the server is ready.
    pub async fn start(
        work_dir: &Path,
        database_url: &str,
        env: &[(&str, &str)],
    ) -> Result<Self, ReportError> {
        let carrot = carrot_binary()?;
        let sim_port = free_port()?;
        let api_port = free_port()?;
        let payment_sim = format!("http://127.0.0.1:{sim_port}");
        let simulator = Command::new(&carrot)
            .arg("payment-sim")
            .env("CARROT_PAYMENT_SIM_BIND", format!("127.0.0.1:{sim_port}"))
            .env("CARROT_LOG", "warn")
            .stdout(log(work_dir, "payment-sim.log")?)
            .stderr(log(work_dir, "payment-sim.err")?)
            .spawn()?;
        let server = Command::new(&carrot)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("CARROT_DATA_DIR", work_dir.join("carrot"))
            .env("CARROT_BIND", format!("127.0.0.1:{api_port}"))
            .env("CARROT_PAYMENT_URL", &payment_sim)
            .env("CARROT_LOG", "warn")
            // A fresh cluster of its own: the service migrates it.
            .env("CARROT_MIGRATE", "true")
            // The load comes from one address and a few users, far over any sane limit.
            .env("CARROT_RATE_LIMIT_USER_PER_SECOND", "0")
            .env("CARROT_RATE_LIMIT_ADDRESS_PER_SECOND", "0")
            .envs(env.iter().copied())
            .stdout(log(work_dir, "serve.log")?)
            .stderr(log(work_dir, "serve.err")?)
            .spawn()?;
        let service = Service {
            url: format!("http://127.0.0.1:{api_port}"),
            payment_sim,
            server,
            simulator,
        };
        service.ready(Duration::from_secs(60)).await?;
        Ok(service)
    }

    async fn ready(&self, within: Duration) -> Result<(), ReportError> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + within;
        let ready = format!("{}/health/ready", self.url);
        let sim = self.payment_sim.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            let api = client.get(&ready).send().await;
            let sim_up = tokio::net::TcpStream::connect(&sim).await.is_ok();
            if sim_up && api.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(ReportError::NotReady(within))
    }

    /// The server's peak resident memory so far, in bytes (`VmHWM`).
    pub fn peak_rss(&self) -> Option<u64> {
        peak_rss(self.server.id())
    }

    /// Stops both: SIGTERM, then SIGKILL after `grace`.
    pub fn stop(mut self, grace: Duration) {
        for child in [&mut self.server, &mut self.simulator] {
            terminate(child, grace);
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        for child in [&mut self.server, &mut self.simulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `carrot`, beside the running `carrot-bench`.
pub fn carrot_binary() -> Result<PathBuf, ReportError> {
    let beside = std::env::current_exe()?.with_file_name("carrot");
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(ReportError::NoCarrot(beside))
    }
}

/// `VmHWM` of process `pid`, in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm(&status)
}

/// The `VmHWM:  123 kB` line of a `/proc/PID/status`, in bytes.
pub fn vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn terminate(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn log(work_dir: &Path, name: &str) -> Result<File, ReportError> {
    Ok(File::create(work_dir.join(name))?)
}

fn free_port() -> Result<u16, ReportError> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_read_from_proc_status() {
        let status =
            "Name:\tcarrot\nVmPeak:\t  900000 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   50000 kB\n";
        assert_eq!(vm_hwm(status), Some(61440 * 1024));
        assert_eq!(vm_hwm("Name:\tcarrot\n"), None);
    }

    #[test]
    fn this_process_has_a_peak() {
        assert!(peak_rss(std::process::id()).is_some_and(|bytes| bytes > 0));
    }
}
