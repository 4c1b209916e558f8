//! Reconciliation: the gateway's own list of movements matched with the log, both ways.
//!
//! Every capture, refund and payout the gateway made is looked up by its idempotency key
//! (`capture:<payment id>`...) and compared with the payment the log holds. What is safe
//! to repair is repaired through the aggregates, always with the same keys, so a repair
//! never moves money again: a capture with no payment in the log is recorded (the saga
//! then refunds it); a started or unknown capture is resolved; a refund or payout the
//! gateway made but the log missed is recorded by asking for it again under its key.
//! Everything else (amounts that differ, money that left escrow both ways, a movement the
//! log has and the gateway does not) is a mismatch: kept in `settlement.mismatches` for
//! an operator, counted in `carrot_reconciliation_mismatches`, listed by the admin API.
//!
//! Movements younger than `grace` are left to the next pass: their own flow is still
//! recording them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use carrot_domain::payment::gateway::{capture_key, parse_key, payout_key, refund_key};
use carrot_domain::payment::{
    GatewayError, Movement, MovementKind, Payment, PaymentCommand, PaymentGateway, PaymentStatus,
};
use carrot_domain::{Clock, PaymentId};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::log::signals::Shutdown;
use crate::postgres::Db;
use crate::write_side::{BoxError, CommandError, WriteSide};

/// How reconciliation paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconcileConfig {
    /// How often the periodic pass runs.
    pub every: Duration,
    /// Movements younger than this are checked by a later pass.
    pub grace: chrono::Duration,
    /// Movements asked for per call.
    pub page: usize,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            every: Duration::from_secs(30),
            grace: chrono::Duration::seconds(30),
            page: 500,
        }
    }
}

/// What one pass found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    /// Movements the gateway listed.
    pub movements: usize,
    /// ...that the log agreed with.
    pub matched: usize,
    /// ...that were repaired (recorded, resolved, or refunded later by the saga).
    pub repaired: usize,
    /// ...whose repair must wait: the gateway is unavailable now (the next pass retries).
    pub deferred: usize,
    /// Differences left for an operator (new or already known).
    pub mismatches: usize,
}

/// A payment the log says moved money: id, status, captured at, settled at.
type LoggedMovement = (Uuid, String, Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// How far before a pass's window the gateway's list is read, so that a movement the log
/// recorded a little after the gateway made it (a reconciled capture) is still seen.
const LIST_SLACK: chrono::Duration = chrono::Duration::minutes(10);

/// Why a pass could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The gateway would not list its movements.
    #[error("the gateway's movements could not be read: {0}")]
    Gateway(#[from] GatewayError),
    /// The database failed.
    #[error("reconciliation failed: {0}")]
    Database(#[from] sqlx::Error),
    /// An aggregate could not be loaded.
    #[error("reconciliation failed: {0}")]
    Load(BoxError),
}

/// Matches the gateway with the log.
#[derive(Clone)]
pub struct Reconciler {
    pool: Db,
    write: Arc<WriteSide>,
    gateway: Arc<dyn PaymentGateway>,
    clock: Arc<dyn Clock>,
    config: ReconcileConfig,
}

/// How one movement compares with the log.
enum Verdict {
    Matched,
    Repair(PaymentId, PaymentCommand),
    Mismatch(String),
}

impl Reconciler {
    /// A reconciler of `gateway` with the log in `pool`, repairing through `write`.
    pub fn new(
        pool: Db,
        write: Arc<WriteSide>,
        gateway: Arc<dyn PaymentGateway>,
        clock: Arc<dyn Clock>,
        config: ReconcileConfig,
    ) -> Self {
        Reconciler {
            pool,
            write,
            gateway,
            clock,
            config,
        }
    }

    /// Checks every movement from `since` to `grace` ago, both ways; repairs what is safe
    /// to repair and records the rest. Says so in the log either way.
    pub async fn run_once(&self, since: DateTime<Utc>) -> Result<Report, ReconcileError> {
        let until = self.clock.now() - self.config.grace;
        let mut report = Report::default();
        let mut seen = HashSet::new();
        let mut from = since - LIST_SLACK;
        'pages: loop {
            let page = self.gateway.movements(from, self.config.page).await?;
            let full = page.len() >= self.config.page;
            let last = page.last().map(|m| m.at);
            for movement in page {
                if movement.at > until {
                    break 'pages;
                }
                if !seen.insert(movement.idempotency_key.clone()) || movement.at < since {
                    continue;
                }
                report.movements += 1;
                match self.check(&movement).await? {
                    Verdict::Matched => report.matched += 1,
                    Verdict::Repair(payment_id, command) => {
                        match self.repair(&movement, payment_id, command).await {
                            Ok(true) => report.repaired += 1,
                            Ok(false) => report.deferred += 1,
                            Err(detail) => {
                                report.mismatches += 1;
                                self.record(&movement.idempotency_key, &detail).await?;
                            }
                        }
                    }
                    Verdict::Mismatch(detail) => {
                        report.mismatches += 1;
                        self.record(&movement.idempotency_key, &detail).await?;
                    }
                }
            }
            match last {
                // A page of one instant only: step past it rather than ask for it forever.
                Some(at) if full && at == from => from = at + chrono::Duration::microseconds(1),
                Some(at) if full => from = at,
                _ => break,
            }
        }
        report.mismatches += self.unmatched_in_log(since, until, &seen).await?;
        if report.mismatches == 0 {
            tracing::info!(
                movements = report.movements,
                repaired = report.repaired,
                %since,
                %until,
                "reconciliation: the gateway and the log agree"
            );
        } else {
            tracing::warn!(?report, %since, %until, "reconciliation found mismatches");
        }
        Ok(report)
    }

    /// What the log says of one movement.
    async fn check(&self, movement: &Movement) -> Result<Verdict, ReconcileError> {
        let Some((kind, payment_id)) = parse_key(&movement.idempotency_key) else {
            return Ok(Verdict::Mismatch(
                "a movement under a key Carrot never makes".into(),
            ));
        };
        if kind != movement.kind {
            return Ok(Verdict::Mismatch(format!(
                "the key names a {} but the gateway made a {}",
                kind.name(),
                movement.kind.name()
            )));
        }
        let payment = self
            .write
            .load::<Payment>(&payment_id.to_string())
            .await
            .map_err(ReconcileError::Load)?;
        Ok(judge(movement, payment_id, &payment))
    }

    /// `Ok(false)`: not now, the gateway is unavailable.
    async fn repair(
        &self,
        movement: &Movement,
        payment_id: PaymentId,
        command: PaymentCommand,
    ) -> Result<bool, String> {
        let metadata = std::collections::HashMap::from([
            (
                carrot_domain::metadata::ACTOR.to_owned(),
                carrot_domain::Actor::System.to_string(),
            ),
            (
                carrot_domain::metadata::CAUSATION_ID.to_owned(),
                format!("reconciliation:{}", movement.idempotency_key),
            ),
        ]);
        match self
            .write
            .execute::<Payment>(&payment_id.to_string(), command, metadata)
            .await
        {
            Ok(_) => Ok(true),
            Err(CommandError::Refused(e))
                if carrot_domain::DomainError::code(&e) == "payment_unavailable" =>
            {
                Ok(false)
            }
            Err(e) => Err(format!("the repair failed: {e}")),
        }
    }

    /// Payments the log says moved money in the window that the gateway did not list
    /// (discovered captures, which come from the list, aside).
    async fn unmatched_in_log(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        seen: &HashSet<String>,
    ) -> Result<usize, ReconcileError> {
        let rows: Vec<LoggedMovement> = sqlx::query_as(
            "SELECT payment_id, status, captured_at, settled_at FROM payments.payments
                  WHERE (captured_at BETWEEN $1 AND $2 OR settled_at BETWEEN $1 AND $2)
                    AND status IN ('captured', 'refunded', 'paid_out')
                    AND request_id <> '00000000-0000-0000-0000-000000000000'",
        )
        .bind(since)
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let mut missing = 0;
        let within = |at: Option<DateTime<Utc>>| at.is_some_and(|at| at >= since && at <= until);
        for (payment, status, captured_at, settled_at) in rows {
            let id = PaymentId::from_uuid(payment);
            let mut expected = Vec::new();
            if within(captured_at) {
                expected.push(capture_key(id));
            }
            match status.as_str() {
                "refunded" if within(settled_at) => expected.push(refund_key(id)),
                "paid_out" if within(settled_at) => expected.push(payout_key(id)),
                _ => {}
            }
            for key in expected.into_iter().filter(|k| !seen.contains(k)) {
                missing += 1;
                let detail = "the log records this movement; the gateway does not list it";
                self.record(&key, detail).await?;
            }
        }
        Ok(missing)
    }

    async fn record(&self, key: &str, detail: &str) -> Result<(), ReconcileError> {
        let parsed = parse_key(key);
        let payment = parsed.map(|(_, id)| id.as_uuid());
        let kind = parsed.map_or("unknown", |(kind, _)| kind.name());
        sqlx::query(
            "INSERT INTO settlement.mismatches (idempotency_key, kind, payment_id, detail)
             VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(key)
        .bind(kind)
        .bind(payment)
        .bind(detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs a pass every `every` from where the last one stopped (a little before, as
    /// clocks differ), until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        while !shutdown.is_triggered() {
            if let Err(e) = self.periodic_pass().await {
                tracing::warn!(error = %e, "reconciliation pass failed; retrying later");
            }
            tokio::select! {
                () = tokio::time::sleep(self.config.every) => {}
                () = shutdown.wait() => {}
            }
        }
    }

    async fn periodic_pass(&self) -> Result<Report, ReconcileError> {
        let checked: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT checked_until FROM settlement.reconciliation")
                .fetch_optional(&self.pool)
                .await?;
        let first: Option<DateTime<Utc>> =
            sqlx::query_scalar("SELECT min(recorded_at) FROM events")
                .fetch_one(&self.pool)
                .await?;
        let now = self.clock.now();
        let since = checked.or(first).unwrap_or(now) - self.config.grace;
        let report = self.run_once(since).await?;
        sqlx::query(
            "INSERT INTO settlement.reconciliation (checked_until) VALUES ($1)
             ON CONFLICT (singleton) DO UPDATE SET checked_until = GREATEST(
                 settlement.reconciliation.checked_until, EXCLUDED.checked_until)",
        )
        .bind(now - self.config.grace)
        .execute(&self.pool)
        .await?;
        Ok(report)
    }
}

/// One movement against the payment its key names.
fn judge(movement: &Movement, payment_id: PaymentId, payment: &Payment) -> Verdict {
    use PaymentStatus as S;
    let status = payment.status();
    let trade = payment.trade();
    let same = |party| movement.amount == payment.amount() && movement.party == party;
    match movement.kind {
        MovementKind::Capture => match status {
            S::None => Verdict::Repair(
                payment_id,
                PaymentCommand::RecordDiscoveredCapture {
                    payment_id,
                    buyer_id: movement.party,
                    amount: movement.amount,
                    reference: movement.reference.clone(),
                },
            ),
            S::Started | S::Unknown => {
                Verdict::Repair(payment_id, PaymentCommand::ReconcileCapture)
            }
            S::Captured | S::Refunded | S::PaidOut if same(trade.buyer_id) => Verdict::Matched,
            S::Captured | S::Refunded | S::PaidOut => Verdict::Mismatch(format!(
                "captured {} KRW from {} at the gateway; the log holds {} KRW from {}",
                movement.amount.as_krw(),
                movement.party,
                payment.amount().as_krw(),
                trade.buyer_id
            )),
            S::Failed | S::Aborted => Verdict::Mismatch(format!(
                "captured at the gateway; the log says the capture {}",
                status.name()
            )),
        },
        MovementKind::Refund | MovementKind::Payout => {
            let (done, other, party, command) = if movement.kind == MovementKind::Refund {
                (
                    S::Refunded,
                    S::PaidOut,
                    trade.buyer_id,
                    PaymentCommand::RefundPayment,
                )
            } else {
                (
                    S::PaidOut,
                    S::Refunded,
                    trade.seller_id,
                    PaymentCommand::PayOutPayment,
                )
            };
            let name = movement.kind.name();
            match status {
                _ if !same(party) && status != S::None => Verdict::Mismatch(format!(
                    "{name} of {} KRW to {} at the gateway; the log holds {} KRW for {}",
                    movement.amount.as_krw(),
                    movement.party,
                    payment.amount().as_krw(),
                    party
                )),
                // An operator recorded it made outside Carrot, and the gateway made it too.
                s if s == done && payment.settled_outside().is_some() => {
                    Verdict::Mismatch(format!(
                        "a {name} at the gateway for a payment an operator settled outside \
                         Carrot ({}): the money moved twice",
                        payment.settled_outside().unwrap_or_default()
                    ))
                }
                s if s == done => Verdict::Matched,
                // The gateway moved it and the log missed the answer: asking again under
                // the same key records it and moves nothing.
                S::Captured => Verdict::Repair(payment_id, command),
                s if s == other => Verdict::Mismatch(format!(
                    "money left escrow both ways: a {name} at the gateway, {} in the log",
                    other.name()
                )),
                _ => Verdict::Mismatch(format!(
                    "a {name} at the gateway for a payment the log has as {}",
                    status.name()
                )),
            }
        }
    }
}
