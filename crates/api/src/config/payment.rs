//! The payment gateway's configuration: which gateway (the built-in simulation or an HTTP
//! one, with its CA), the simulation's behaviour, and the circuit breaker around it.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use carrot_domain::payment::PaymentGateway;
use clap::Args;

use crate::payment::{BreakerConfig, HttpGateway, SimulatedGateway, SimulationProfile};

/// The circuit breaker around the payment gateway.
#[derive(Debug, Clone, Args)]
pub struct BreakerArgs {
    /// How many recent gateway calls the breaker judges.
    #[arg(long, env = "CARROT_BREAKER_WINDOW", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub breaker_window: u32,
    /// How many calls must be known before it judges at all.
    #[arg(long, env = "CARROT_BREAKER_MIN_CALLS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub breaker_min_calls: u32,
    /// It opens when this share of the window failed (errors, timeouts), 0 to 1.
    #[arg(long, env = "CARROT_BREAKER_FAILURE_RATE", default_value_t = 0.5, value_parser = parse_rate)]
    pub breaker_failure_rate: f64,
    /// A call slower than this (ms) is slow.
    #[arg(long, env = "CARROT_BREAKER_SLOW_CALL_MS", default_value_t = 1500)]
    pub breaker_slow_call_ms: u64,
    /// It opens when this share of the window was slow, 0 to 1.
    #[arg(long, env = "CARROT_BREAKER_SLOW_RATE", default_value_t = 0.8, value_parser = parse_rate)]
    pub breaker_slow_rate: f64,
    /// How long it stays open before trial calls (ms).
    #[arg(long, env = "CARROT_BREAKER_OPEN_MS", default_value_t = 5000)]
    pub breaker_open_ms: u64,
    /// How many trial calls, half-open, must succeed to close it.
    #[arg(long, env = "CARROT_BREAKER_HALF_OPEN_CALLS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub breaker_half_open_calls: u32,
}

impl BreakerArgs {
    /// The breaker's configuration.
    pub fn config(&self) -> BreakerConfig {
        BreakerConfig {
            window: self.breaker_window as usize,
            min_calls: self.breaker_min_calls as usize,
            failure_rate: self.breaker_failure_rate,
            slow_call: Duration::from_millis(self.breaker_slow_call_ms),
            slow_rate: self.breaker_slow_rate,
            open_for: Duration::from_millis(self.breaker_open_ms),
            half_open_calls: self.breaker_half_open_calls as usize,
        }
    }
}

/// The payment gateway: an external one over HTTP, or the in-process simulated one; and
/// the limits around it.
#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// An HTTP payment gateway (`carrot payment-sim` speaks its protocol). Unset: the
    /// in-process simulated gateway.
    #[arg(long, env = "CARROT_PAYMENT_URL")]
    pub payment_url: Option<String>,
    /// For an `https://` gateway whose certificate a private CA signed: that CA's
    /// certificate(s), PEM. The system's roots are trusted either way.
    #[arg(long, env = "CARROT_PAYMENT_CA_FILE")]
    pub payment_ca_file: Option<PathBuf>,
    /// How long a gateway call may take before its outcome counts as unknown, in ms.
    #[arg(long, env = "CARROT_PAYMENT_TIMEOUT_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub payment_timeout_ms: u64,
    /// Simulated gateway: the latency of each call in ms, `N` or a range `MIN-MAX`.
    #[arg(long, env = "CARROT_PAYMENT_LATENCY_MS", default_value = "0", value_parser = parse_latency)]
    pub payment_latency_ms: RangeInclusive<u64>,
    /// Simulated gateway: the share of captures declined, 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_DECLINE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_decline_rate: f64,
    /// Simulated gateway: the share of calls failing with nothing moved, 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_failure_rate: f64,
    /// Simulated gateway: the share of calls that move money and then lose their answer to
    /// a proxy's 502 (over HTTP; in process, an unknown outcome), 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_PROXY_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_proxy_error_rate: f64,
    /// Simulated gateway: the share of calls that move money and then drop the connection
    /// mid-answer, 0 to 1.
    #[arg(long, env = "CARROT_PAYMENT_DROP_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub payment_drop_rate: f64,
}

impl PaymentArgs {
    /// The simulated gateway's behaviour.
    pub fn profile(&self) -> SimulationProfile {
        SimulationProfile {
            latency_ms: self.payment_latency_ms.clone(),
            decline_rate: self.payment_decline_rate,
            transfer_decline_rate: 0.0,
            failure_rate: self.payment_failure_rate,
            down: false,
            proxy_error_rate: self.payment_proxy_error_rate,
            drop_rate: self.payment_drop_rate,
        }
    }

    /// The adapter: HTTP when a URL is given, else the in-process simulation.
    pub fn gateway(&self) -> Result<Arc<dyn PaymentGateway>, String> {
        match &self.payment_url {
            Some(url) => {
                let ca =
                    match &self.payment_ca_file {
                        Some(path) => Some(std::fs::read(path).map_err(|e| {
                            format!("CARROT_PAYMENT_CA_FILE {}: {e}", path.display())
                        })?),
                        None => None,
                    };
                HttpGateway::trusting(url, ca.as_deref())
                    .map(|g| Arc::new(g) as Arc<dyn PaymentGateway>)
                    .map_err(|e| format!("CARROT_PAYMENT_URL: {e}"))
            }
            None => Ok(Arc::new(SimulatedGateway::new(self.profile()))),
        }
    }
}

/// `carrot payment-sim`.
#[derive(Debug, Clone, Args)]
pub struct PaymentSimArgs {
    /// Where to listen.
    #[arg(
        long,
        env = "CARROT_PAYMENT_SIM_BIND",
        default_value = "127.0.0.1:9090"
    )]
    pub bind: SocketAddr,
    /// Its initial behaviour (change it at run time with `PUT /faults`).
    #[command(flatten)]
    pub payment: PaymentArgs,
}

pub(crate) fn parse_latency(raw: &str) -> Result<RangeInclusive<u64>, String> {
    let bad = || format!("expected milliseconds as `N` or `MIN-MAX`, got {raw:?}");
    let (min, max) = match raw.split_once('-') {
        Some((min, max)) => (min.trim(), max.trim()),
        None => (raw.trim(), raw.trim()),
    };
    let (min, max) = (
        min.parse::<u64>().map_err(|_| bad())?,
        max.parse::<u64>().map_err(|_| bad())?,
    );
    if min > max || max > 600_000 {
        return Err(bad());
    }
    Ok(min..=max)
}

fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("expected a share from 0 to 1, got {raw:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_is_one_number_or_a_range() {
        assert_eq!(parse_latency("0"), Ok(0..=0));
        assert_eq!(parse_latency("400-620"), Ok(400..=620));
        for bad in ["", "-5", "9-3", "a-b", "1-2-3"] {
            assert!(parse_latency(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rates_are_shares() {
        assert_eq!(parse_rate("0.25"), Ok(0.25));
        for bad in ["-0.1", "1.5", "NaN", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
