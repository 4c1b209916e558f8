//! Rate limits: per client address on every API call, and per user on every authenticated
//! one, answering 429 `rate_limited` with `Retry-After` when exceeded.
//!
//! Each key gets a generic cell rate (GCRA): a sustained rate with a burst allowance, kept
//! as one instant per key (its "theoretical arrival time"), so a limiter costs one map
//! lookup per request and no timer. The limiter is `governor`'s keyed one (a sharded map,
//! so concurrent requests of different keys do not queue on one lock). Keys that have been
//! idle long enough to have a full burst again are forgotten when the map grows, so an
//! attacker cycling through addresses cannot grow it without bound. Limits are per
//! process: with N replicas a client gets up to N times the rate, which is what a limit
//! against abuse (not a quota) needs. Probes, metrics and the documentation are never
//! limited.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use carrot_domain::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::error::ApiError;

/// A sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests allowed at once on top of nothing used.
    pub burst: u32,
}

impl Rate {
    /// `per_second` with `burst`, or none when `per_second` is 0 (no limit).
    pub fn new(per_second: f64, burst: u32) -> Option<Rate> {
        (per_second > 0.0).then_some(Rate {
            per_second,
            burst: burst.max(1),
        })
    }
}

/// Which limits apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitConfig {
    /// Per authenticated user (none: unlimited).
    pub per_user: Option<Rate>,
    /// Per client address (none: unlimited).
    pub per_address: Option<Rate>,
    /// Take the client's address from the last `X-Forwarded-For` entry (set this only
    /// behind a proxy that appends it, as deploy/nginx does).
    pub trust_forwarded_for: bool,
}

/// The limiters of one process.
#[derive(Debug, Default)]
pub struct RateLimits {
    per_user: Option<Limiter<UserId>>,
    per_address: Option<Limiter<IpAddr>>,
    trust_forwarded_for: bool,
}

impl RateLimits {
    /// Limiters for `config`.
    pub fn new(config: LimitConfig) -> Self {
        RateLimits {
            per_user: config.per_user.map(Limiter::new),
            per_address: config.per_address.map(Limiter::new),
            trust_forwarded_for: config.trust_forwarded_for,
        }
    }

    /// Counts a call by `user`; refused with the seconds to wait when over the limit.
    pub fn check_user(&self, user: UserId) -> Result<(), ApiError> {
        check(self.per_user.as_ref(), user)
    }
}

fn check<K: Eq + Hash + Clone>(limiter: Option<&Limiter<K>>, key: K) -> Result<(), ApiError> {
    match limiter.map(|l| l.take(&key)) {
        Some(Err(wait)) => Err(ApiError::RateLimited {
            retry_after: u32::try_from(wait.as_secs().saturating_add(1)).unwrap_or(u32::MAX),
        }),
        _ => Ok(()),
    }
}

/// Middleware: the per-address limit, before anything else is done for the request.
pub async fn per_address(
    State(limits): State<Arc<RateLimits>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    let exempt = path.starts_with("/health")
        || path == "/metrics"
        || path == crate::openapi::vocabulary::DOCUMENT_PATH
        || path.starts_with(crate::openapi::vocabulary::UI_PATH);
    if let (false, Some(limiter)) = (exempt, limits.per_address.as_ref()) {
        if let Some(address) = client_address(&request, limits.trust_forwarded_for) {
            if let Err(refused) = check(Some(limiter), address) {
                return refused.into_response();
            }
        }
    }
    next.run(request).await
}

fn client_address(request: &Request, trust_forwarded_for: bool) -> Option<IpAddr> {
    if trust_forwarded_for {
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .and_then(|last| last.trim().parse().ok());
        if forwarded.is_some() {
            return forwarded;
        }
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.ip())
}

/// GCRA over keys `K`.
struct Limiter<K: Eq + Hash + Clone, C: Clock = DefaultClock> {
    keys: RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<C::Instant>>,
    /// Calls so far, to look at the map's size only now and then.
    calls: AtomicU64,
}

impl<K: Eq + Hash + Clone, C: Clock> std::fmt::Debug for Limiter<K, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Keys kept before idle ones are swept.
const SWEEP_ABOVE: usize = 100_000;
/// The longest interval between two requests a rate may ask for.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
/// How often (in calls) the map's size is looked at.
const LOOK_EVERY: u64 = 1024;

impl<K: Eq + Hash + Clone> Limiter<K> {
    fn new(rate: Rate) -> Self {
        Self::with_clock(rate, DefaultClock::default())
    }
}

impl<K: Eq + Hash + Clone, C: Clock> Limiter<K, C> {
    fn with_clock(rate: Rate, clock: C) -> Self {
        // A rate too high for a nanosecond interval is one a second short of no limit; one
        // too low for a year's interval is one a year.
        let interval = Duration::try_from_secs_f64(1.0 / rate.per_second)
            .unwrap_or(YEAR)
            .min(YEAR);
        let quota = Quota::with_period(interval)
            .unwrap_or(Quota::per_second(NonZeroU32::MAX))
            .allow_burst(NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN));
        Limiter {
            keys: RateLimiter::dashmap_with_clock(quota, clock),
            calls: AtomicU64::new(0),
        }
    }

    /// Takes one request for `key` now, or says how long until one would be allowed.
    fn take(&self, key: &K) -> Result<(), Duration> {
        let calls = self.calls.fetch_add(1, Ordering::Relaxed);
        if calls.is_multiple_of(LOOK_EVERY) && self.keys.len() > SWEEP_ABOVE {
            self.keys.retain_recent();
            self.keys.shrink_to_fit();
        }
        self.keys
            .check_key(key)
            .map_err(|refused| refused.wait_time_from(self.keys.clock().now()))
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn limiter(per_second: f64, burst: u32) -> (Limiter<u8, FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let rate = Rate::new(per_second, burst).unwrap();
        (Limiter::with_clock(rate, clock.clone()), clock)
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let (l, clock) = limiter(10.0, 5);
        for _ in 0..5 {
            assert!(l.take(&1).is_ok());
        }
        let wait = l.take(&1).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_millis(100));
        // One interval later, exactly one more.
        clock.advance(Duration::from_millis(100));
        assert!(l.take(&1).is_ok());
        assert!(l.take(&1).is_err());
    }

    #[test]
    fn keys_are_limited_apart() {
        let (l, _) = limiter(1.0, 1);
        assert!(l.take(&1).is_ok());
        assert!(l.take(&1).is_err());
        assert!(l.take(&2).is_ok());
    }

    #[test]
    fn an_idle_key_gets_its_whole_burst_back() {
        let (l, clock) = limiter(2.0, 3);
        for _ in 0..3 {
            assert!(l.take(&7).is_ok());
        }
        assert!(l.take(&7).is_err());
        clock.advance(Duration::from_secs(10));
        for _ in 0..3 {
            assert!(l.take(&7).is_ok());
        }
        assert!(l.take(&7).is_err());
    }

    #[test]
    fn idle_keys_are_forgotten_once_the_map_grows() {
        let (l, clock) = limiter(1.0, 1);
        for key in 0..=u8::MAX {
            assert!(l.take(&key).is_ok());
        }
        assert_eq!(l.keys.len(), 256);
        clock.advance(Duration::from_secs(2));
        l.keys.retain_recent();
        assert_eq!(l.keys.len(), 0, "every key had its burst back");
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        assert_eq!(Rate::new(0.0, 10), None);
    }
}
