//! The simulated payment gateway: configurable latency, decline and failure rates, answers
//! lost after the money moved (a proxy's 502, a dropped connection), and a ledger of every
//! key it has settled, so a retried call with the same idempotency key returns the first
//! outcome and never moves money twice. The ledger's movements are its transaction list.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use carrot_domain::payment::{
    CaptureOrder, CaptureStatus, GatewayError, Movement, MovementKind, PaymentGateway, Receipt,
    TransferOrder,
};
use carrot_domain::{Money, UserId};
use chrono::{DateTime, Utc};
use rand::Rng;

/// How the simulated gateway behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulationProfile {
    /// Each call takes a random time in this range (milliseconds).
    pub latency_ms: RangeInclusive<u64>,
    /// The share of captures declined (0.0 to 1.0).
    pub decline_rate: f64,
    /// The share of refunds and payouts declined (0.0 to 1.0): final for their key, as a
    /// real gateway answers a key with its first outcome (a closed account, say).
    pub transfer_decline_rate: f64,
    /// The share of calls answered with an error, nothing moved (0.0 to 1.0).
    pub failure_rate: f64,
    /// Down: every call fails at once, nothing moved.
    pub down: bool,
    /// The share of calls that move money and whose answer is then lost as a proxy in front
    /// would lose it: a 502 from something that is not the gateway (0.0 to 1.0).
    pub proxy_error_rate: f64,
    /// The share of calls that move money and then drop the connection before the answer
    /// is complete (0.0 to 1.0).
    pub drop_rate: f64,
}

/// How the answer to a call that moved money was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostAnswer {
    /// A proxy answered 502 in the gateway's place.
    ProxyError,
    /// The connection dropped mid-answer.
    Dropped,
}

impl Default for SimulationProfile {
    fn default() -> Self {
        SimulationProfile {
            latency_ms: 0..=0,
            decline_rate: 0.0,
            transfer_decline_rate: 0.0,
            failure_rate: 0.0,
            down: false,
            proxy_error_rate: 0.0,
            drop_rate: 0.0,
        }
    }
}

/// What the gateway did for one idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The operation (`capture`, `refund`, `payout`).
    pub operation: &'static str,
    /// Who paid (capture) or received (refund, payout).
    pub party: UserId,
    /// How much.
    pub amount: Money,
    /// The outcome: a receipt, or the decline reason.
    pub outcome: Result<Receipt, String>,
    /// How many calls carried this key.
    pub calls: u32,
    /// When the gateway settled it.
    pub at: DateTime<Utc>,
}

/// The decline reason of a key voided by `resolve_capture`.
const VOIDED: &str = "voided: the capture key was resolved before any capture arrived";

/// An in-process payment gateway.
#[derive(Debug, Default)]
pub struct SimulatedGateway {
    profile: Mutex<SimulationProfile>,
    ledger: Mutex<HashMap<String, Settlement>>,
}

impl SimulatedGateway {
    /// A gateway behaving as `profile` says.
    pub fn new(profile: SimulationProfile) -> Self {
        SimulatedGateway {
            profile: Mutex::new(profile),
            ledger: Mutex::default(),
        }
    }

    /// Changes the behaviour at run time (fault injection).
    pub fn set_profile(&self, profile: SimulationProfile) {
        *self.profile.lock().unwrap_or_else(PoisonError::into_inner) = profile;
    }

    /// How it behaves now.
    pub fn profile(&self) -> SimulationProfile {
        self.profile
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// What happened for every key so far.
    pub fn ledger(&self) -> HashMap<String, Settlement> {
        self.ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// This call's latency, and whether it fails or is declined, drawn from the profile.
    /// `transfer`: `Some(false)` a capture, `Some(true)` a refund or payout, `None` a call
    /// that is never declined.
    fn draw(&self, transfer: Option<bool>) -> (u64, bool, bool) {
        let profile = self.profile();
        if profile.down {
            return (0, true, false);
        }
        let mut rng = rand::thread_rng();
        (
            rng.gen_range(profile.latency_ms.clone()),
            rng.gen_bool(profile.failure_rate.clamp(0.0, 1.0)),
            match transfer {
                Some(false) => rng.gen_bool(profile.decline_rate.clamp(0.0, 1.0)),
                Some(true) => rng.gen_bool(profile.transfer_decline_rate.clamp(0.0, 1.0)),
                None => false,
            },
        )
    }

    /// What became of a capture key; an unseen key is voided, so a late capture with it is
    /// declined and the answer stays true.
    fn resolve(&self, key: &str) -> CaptureStatus {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = ledger.entry(key.to_owned()).or_insert_with(|| Settlement {
            operation: "void",
            party: UserId::default(),
            amount: Money::ZERO,
            outcome: Err(VOIDED.to_owned()),
            calls: 0,
            at: Utc::now(),
        });
        match &entry.outcome {
            Ok(receipt) => CaptureStatus::Captured(receipt.clone()),
            Err(reason) if reason == VOIDED => CaptureStatus::Voided,
            Err(reason) => CaptureStatus::Declined(reason.clone()),
        }
    }

    async fn settle(
        &self,
        operation: &'static str,
        key: String,
        party: UserId,
        amount: Money,
        capture: bool,
    ) -> Result<Receipt, GatewayError> {
        match self
            .settle_answering(operation, key, party, amount, capture)
            .await
        {
            (_, Some(_)) => Err(GatewayError::Timeout),
            (outcome, None) => outcome,
        }
    }

    /// Settles one call, and says whether its answer is then lost (only ever after money
    /// moved): the HTTP simulator turns a lost answer into a 502 or a dropped connection.
    pub async fn settle_answering(
        &self,
        operation: &'static str,
        key: String,
        party: UserId,
        amount: Money,
        capture: bool,
    ) -> (Result<Receipt, GatewayError>, Option<LostAnswer>) {
        let (pause, fails, declines) = self.draw(Some(!capture));
        // The gateway settles at once and answers after the latency: a caller that stops
        // waiting does not know the outcome, but the money moved (or did not) all the same.
        let outcome = self.record(operation, key, party, amount, fails, declines);
        let lost = if outcome.is_ok() {
            self.draw_loss()
        } else {
            None
        };
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        (outcome, lost)
    }

    fn draw_loss(&self) -> Option<LostAnswer> {
        let profile = self.profile();
        let mut rng = rand::thread_rng();
        if rng.gen_bool(profile.proxy_error_rate.clamp(0.0, 1.0)) {
            Some(LostAnswer::ProxyError)
        } else if rng.gen_bool(profile.drop_rate.clamp(0.0, 1.0)) {
            Some(LostAnswer::Dropped)
        } else {
            None
        }
    }

    /// Every movement of money from `since` on, oldest first, at most `limit`.
    pub fn movements_since(&self, since: DateTime<Utc>, limit: usize) -> Vec<Movement> {
        let ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let mut moved: Vec<Movement> = ledger
            .iter()
            .filter(|(_, s)| s.at >= since)
            .filter_map(|(key, s)| {
                let kind = match s.operation {
                    "capture" => MovementKind::Capture,
                    "refund" => MovementKind::Refund,
                    "payout" => MovementKind::Payout,
                    _ => return None,
                };
                let receipt = s.outcome.as_ref().ok()?;
                Some(Movement {
                    idempotency_key: key.clone(),
                    kind,
                    party: s.party,
                    amount: s.amount,
                    reference: receipt.reference.clone(),
                    at: s.at,
                })
            })
            .collect();
        moved.sort_by(|a, b| (a.at, &a.idempotency_key).cmp(&(b.at, &b.idempotency_key)));
        moved.truncate(limit);
        moved
    }

    fn record(
        &self,
        operation: &'static str,
        key: String,
        party: UserId,
        amount: Money,
        fails: bool,
        declines: bool,
    ) -> Result<Receipt, GatewayError> {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = ledger.get_mut(&key) {
            // The same key again: the first outcome, and no money moves a second time.
            done.calls += 1;
            return done.outcome.clone().map_err(GatewayError::Declined);
        }
        if fails {
            return Err(GatewayError::Unavailable(
                "simulated gateway failure".into(),
            ));
        }
        let outcome = if declines {
            Err("insufficient funds (simulated)".to_owned())
        } else {
            Ok(Receipt {
                reference: format!("sim-{}", uuid::Uuid::new_v4().simple()),
            })
        };
        ledger.insert(
            key,
            Settlement {
                operation,
                party,
                amount,
                outcome: outcome.clone(),
                calls: 1,
                at: Utc::now(),
            },
        );
        outcome.map_err(GatewayError::Declined)
    }
}

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn capture(&self, order: CaptureOrder) -> Result<Receipt, GatewayError> {
        self.settle(
            "capture",
            order.idempotency_key,
            order.buyer_id,
            order.amount,
            true,
        )
        .await
    }

    async fn refund(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.settle(
            "refund",
            order.idempotency_key,
            order.recipient,
            order.amount,
            false,
        )
        .await
    }

    async fn resolve_capture(&self, key: &str) -> Result<CaptureStatus, GatewayError> {
        let (pause, fails, _) = self.draw(None);
        let status = if fails {
            Err(GatewayError::Unavailable(
                "simulated gateway failure".into(),
            ))
        } else {
            Ok(self.resolve(key))
        };
        if pause > 0 {
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        status
    }

    async fn payout(&self, order: TransferOrder) -> Result<Receipt, GatewayError> {
        self.settle(
            "payout",
            order.idempotency_key,
            order.recipient,
            order.amount,
            false,
        )
        .await
    }

    async fn movements(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Movement>, GatewayError> {
        Ok(self.movements_since(since, limit))
    }
}

#[cfg(test)]
mod tests;
