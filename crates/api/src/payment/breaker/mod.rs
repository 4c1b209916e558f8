//! A circuit breaker around the payment gateway.
//!
//! Closed: calls go through; the last `window` outcomes are kept. Once at least `min_calls`
//! are known and the share of failures (errors and timeouts; a decline is an answer, not a
//! failure) or of slow calls reaches its threshold, the breaker opens. Open: calls fail at
//! once with `CircuitOpen` and the time left, so purchase requests answer 503 in
//! milliseconds and the saga's refunds wait instead of piling up. After `open_for`, it is
//! half-open: `half_open_calls` trial calls go through (others still fail fast); any
//! failure opens it again, all of them succeeding closes it.
//!
//! A trial's slot is held by a [`Permit`] guard, not by a counter touched when the call
//! returns: a caller that stops waiting drops the call's future, and the guard's `Drop` gives
//! the slot back, so abandoned trials can never leave the breaker half-open with no slot
//! free (which failed every purchase request until a restart). Each state change starts a
//! new generation, so a permit of an earlier half-open period neither frees a slot nor
//! counts an outcome in the current one.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Movement, PaymentGateway, Receipt, TransferOrder,
};
use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// When the breaker opens and how it recovers.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// How many recent calls are judged.
    pub window: usize,
    /// How many calls must be known before the breaker judges at all.
    pub min_calls: usize,
    /// Opens when at least this share of the window failed (0 to 1).
    pub failure_rate: f64,
    /// A call taking longer than this is slow.
    pub slow_call: Duration,
    /// Opens when at least this share of the window was slow (0 to 1).
    pub slow_rate: f64,
    /// How long it stays open before trying again.
    pub open_for: Duration,
    /// How many trial calls decide, half-open.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            window: 20,
            min_calls: 10,
            failure_rate: 0.5,
            slow_call: Duration::from_millis(1500),
            slow_rate: 0.8,
            open_for: Duration::from_secs(5),
            half_open_calls: 3,
        }
    }
}

/// The payment gateway's circuit breaker state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = CircuitState)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail fast (purchase requests answer 503 `payment_unavailable`).
    Open,
    /// A few trial calls go through.
    HalfOpen,
}

impl BreakerState {
    /// The state's name, for readiness detail and metrics.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    failed: bool,
    slow: bool,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    recent: VecDeque<Outcome>,
    opened_at: Instant,
    /// Bumped on every state change: names the period a permit was issued in.
    generation: u64,
    trials_started: usize,
    trials_passed: usize,
}

/// The gateway behind a breaker.
pub struct CircuitBreaker {
    inner: Arc<dyn PaymentGateway>,
    config: BreakerConfig,
    state: Mutex<Inner>,
    transitions: AtomicU64,
}

/// How a call was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// Closed: the outcome joins the window.
    Normal,
    /// Half-open: the call holds one of the period's trial slots.
    Trial,
}

/// An admitted call. Finishing it records its outcome; dropping it unfinished (the caller's
/// future was dropped mid-call) gives a trial's slot back to the period it came from.
struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    admission: Admission,
    generation: u64,
    finished: bool,
}

impl Permit<'_> {
    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.breaker
            .record(self.admission, self.generation, outcome);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.finished && self.admission == Admission::Trial {
            self.breaker.abandon(self.generation);
        }
    }
}

impl CircuitBreaker {
    /// Wraps `inner` (put the timeout inside, so timeouts count as failures).
    pub fn new(inner: Arc<dyn PaymentGateway>, config: BreakerConfig) -> Self {
        CircuitBreaker {
            inner,
            config,
            state: Mutex::new(Inner {
                state: BreakerState::Closed,
                recent: VecDeque::new(),
                opened_at: Instant::now(),
                generation: 0,
                trials_started: 0,
                trials_passed: 0,
            }),
            transitions: AtomicU64::new(0),
        }
    }

    /// The state now (an open breaker whose wait is over reads as half-open).
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        inner.state
    }

    /// How many times the state has changed since start.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::Relaxed)
    }

    /// `Err(CircuitOpen)` when a call now would fail fast: lets a caller refuse before it
    /// does any other work.
    pub fn check(&self) -> Result<(), GatewayError> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        match inner.state {
            BreakerState::Open => Err(self.open_error(&inner)),
            BreakerState::HalfOpen if inner.trials_started >= self.config.half_open_calls => {
                Err(GatewayError::CircuitOpen {
                    retry_after: Duration::from_secs(1),
                })
            }
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, inner: &mut Inner, state: BreakerState) {
        if inner.state != state {
            tracing::warn!(
                from = inner.state.name(),
                to = state.name(),
                "payment gateway circuit breaker"
            );
            self.transitions.fetch_add(1, Ordering::Relaxed);
        }
        inner.state = state;
        inner.generation = inner.generation.wrapping_add(1);
        inner.recent.clear();
        inner.trials_started = 0;
        inner.trials_passed = 0;
        if state == BreakerState::Open {
            inner.opened_at = Instant::now();
        }
    }

    fn refresh(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open && inner.opened_at.elapsed() >= self.config.open_for {
            self.set(inner, BreakerState::HalfOpen);
        }
    }

    fn open_error(&self, inner: &Inner) -> GatewayError {
        let left = self
            .config
            .open_for
            .saturating_sub(inner.opened_at.elapsed());
        GatewayError::CircuitOpen {
            retry_after: left.max(Duration::from_secs(1)),
        }
    }

    fn admit(&self) -> Result<Permit<'_>, GatewayError> {
        let mut inner = self.lock();
        self.refresh(&mut inner);
        let admission = match inner.state {
            BreakerState::Closed => Admission::Normal,
            BreakerState::Open => return Err(self.open_error(&inner)),
            BreakerState::HalfOpen if inner.trials_started < self.config.half_open_calls => {
                inner.trials_started += 1;
                Admission::Trial
            }
            BreakerState::HalfOpen => {
                return Err(GatewayError::CircuitOpen {
                    retry_after: Duration::from_secs(1),
                })
            }
        };
        Ok(Permit {
            breaker: self,
            admission,
            generation: inner.generation,
            finished: false,
        })
    }

    /// A trial of `generation` ended without an outcome: its slot is free again, if that
    /// half-open period is still the current one.
    fn abandon(&self, generation: u64) {
        let mut inner = self.lock();
        if inner.generation == generation && inner.state == BreakerState::HalfOpen {
            inner.trials_started = inner.trials_started.saturating_sub(1);
        }
    }

    fn record(&self, admission: Admission, generation: u64, outcome: Outcome) {
        let mut inner = self.lock();
        if inner.generation != generation {
            // The state moved on while this call ran: its outcome no longer counts.
            return;
        }
        match (admission, inner.state) {
            (Admission::Trial, BreakerState::HalfOpen) => {
                if outcome.failed || outcome.slow {
                    self.set(&mut inner, BreakerState::Open);
                } else {
                    inner.trials_passed += 1;
                    if inner.trials_passed >= self.config.half_open_calls {
                        self.set(&mut inner, BreakerState::Closed);
                    }
                }
            }
            (Admission::Normal, BreakerState::Closed) => {
                inner.recent.push_back(outcome);
                while inner.recent.len() > self.config.window {
                    inner.recent.pop_front();
                }
                let known = inner.recent.len();
                if known >= self.config.min_calls {
                    let share = |f: fn(&Outcome) -> bool| {
                        inner.recent.iter().filter(|o| f(o)).count() as f64 / known as f64
                    };
                    if share(|o| o.failed) >= self.config.failure_rate
                        || share(|o| o.slow) >= self.config.slow_rate
                    {
                        self.set(&mut inner, BreakerState::Open);
                    }
                }
            }
            // Unreachable within one generation; nothing to count.
            _ => {}
        }
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let result = self.guarded(call).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(GatewayError::Declined(_)) => "declined",
            Err(GatewayError::Unavailable(_)) => "unavailable",
            Err(GatewayError::Timeout) => "timeout",
            Err(GatewayError::CircuitOpen { .. }) => "circuit_open",
        };
        carrot_projections::metrics::global().inc(
            "carrot_payment_gateway_calls_total",
            &[("operation", operation), ("outcome", outcome)],
        );
        result
    }

    async fn guarded<T>(
        &self,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let permit = self.admit()?;
        let started = Instant::now();
        let result = call.await;
        let failed = matches!(
            result,
            Err(GatewayError::Unavailable(_) | GatewayError::Timeout)
        );
        let slow = started.elapsed() > self.config.slow_call;
        permit.finish(Outcome { failed, slow });
        result
    }
}

#[async_trait]
impl PaymentGateway for CircuitBreaker {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        self.call("capture", self.inner.capture(order)).await
    }

    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.call("refund", self.inner.refund(order)).await
    }

    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.call("payout", self.inner.payout(order)).await
    }

    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        self.call("resolve_capture", self.inner.resolve_capture(key))
            .await
    }

    /// Not judged by the breaker: reconciliation reads the list whatever the state, and
    /// its slowness says nothing about payments.
    async fn movements(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Movement>, GatewayError> {
        self.inner.movements(since, limit).await
    }
}

#[cfg(test)]
mod tests;
