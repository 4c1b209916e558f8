//! The access log: one structured line per request under the target `carrot::access`, at
//! INFO, for the requests `CARROT_ACCESS_LOG` asks for. `errors` (the default): every 5xx
//! and every request slower than a second. `all`: every request. `off`. Or a share, `0.01`:
//! one request in a hundred, and every error and slow one. A line per request was what
//! every request paid before (tower-http's response line at INFO): at ten thousand reads a
//! second, megabytes a second of stderr (docs/PERFORMANCE.md). tower-http's own lines are
//! at DEBUG, as that crate has them.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Slower than this, a request is logged whatever the policy (but `off`).
const SLOW: Duration = Duration::from_secs(1);

/// Which requests the access log writes a line for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessLog {
    /// None.
    Off,
    /// 5xx answers and slow requests.
    Errors,
    /// One request in `every`, with errors and slow ones.
    Sampled {
        /// One in how many.
        every: u64,
    },
    /// Every request.
    All,
}

impl FromStr for AccessLog {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(AccessLog::Off),
            "errors" => Ok(AccessLog::Errors),
            "all" => Ok(AccessLog::All),
            share => match share.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => Ok(AccessLog::Sampled {
                    every: (1.0 / f).round().max(1.0) as u64,
                }),
                _ => Err(format!(
                    "CARROT_ACCESS_LOG must be off, errors, all, or a share in (0, 1]; got {s:?}"
                )),
            },
        }
    }
}

/// The policy and a counter for sampling, shared by every request.
#[derive(Debug, Clone)]
pub struct Policy {
    log: AccessLog,
    seen: Arc<AtomicU64>,
}

impl Policy {
    /// The access log as `log` says.
    pub fn new(log: AccessLog) -> Self {
        Policy {
            log,
            seen: Arc::default(),
        }
    }

    fn wants(&self, status: u16, took: Duration) -> bool {
        let notable = status >= 500 || took >= SLOW;
        match self.log {
            AccessLog::Off => false,
            AccessLog::All => true,
            AccessLog::Errors => notable,
            AccessLog::Sampled { every } => {
                notable
                    || self
                        .seen
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(every)
            }
        }
    }
}

/// The middleware: times the request, then writes its line if the policy wants it (inside
/// the request's span, which carries its `x-request-id`).
pub async fn layer(State(policy): State<Policy>, request: Request, next: Next) -> Response {
    if policy.log == AccessLog::Off {
        return next.run(request).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    if policy.wants(status, took) {
        let latency_ms = took.as_secs_f64() * 1000.0;
        tracing::info!(target: "carrot::access", %method, path, status, latency_ms, "request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_parses_and_samples() {
        assert_eq!("off".parse(), Ok(AccessLog::Off));
        assert_eq!("0.01".parse(), Ok(AccessLog::Sampled { every: 100 }));
        assert!("2".parse::<AccessLog>().is_err() && "some".parse::<AccessLog>().is_err());
        let sampled = Policy::new(AccessLog::Sampled { every: 10 });
        let fast = Duration::from_millis(1);
        let logged = (0..100).filter(|_| sampled.wants(200, fast)).count();
        assert_eq!(logged, 10);
        let errors = Policy::new(AccessLog::Errors);
        assert!(!errors.wants(404, fast) && errors.wants(503, fast));
        assert!(errors.wants(200, SLOW));
        assert!(!Policy::new(AccessLog::Off).wants(500, SLOW));
    }
}
