//! What the saga knows, as one batch sees it: the rows its events touch, loaded together
//! before the first event is read, changed in memory as the events are read in log order,
//! and written back together with the deadlines and commands the batch decided on. About
//! ten statements a batch, whatever its size, instead of a dozen per trade.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::commands::SagaCommand;
use super::outbox;
use crate::log::subscriber::ApplyError;
use crate::views::fold::{Fold, KeyedRow};

/// What the saga knows of a recorded purchase request (`settlement.trades`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct TradeRow {
    pub request_id: Uuid,
    pub listing_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub payment_id: Uuid,
    pub amount: i64,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

impl KeyedRow for TradeRow {
    const TABLE: &'static str = "trades";
    const KEY: &'static str = "request_id";
    fn key(&self) -> Uuid {
        self.request_id
    }
}

/// A listing's availability as far as the saga has read (`settlement.listings`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ListingRow {
    pub listing_id: Uuid,
    pub status: String,
    /// The request it is reserved for or sold through.
    pub holder: Option<Uuid>,
}

impl KeyedRow for ListingRow {
    const TABLE: &'static str = "listings";
    const KEY: &'static str = "listing_id";
    fn key(&self) -> Uuid {
        self.listing_id
    }
}

/// A payment, recorded request or not (`settlement.payments`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub request_id: Uuid,
    pub listing_id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub amount: i64,
    pub status: String,
    pub reason: Option<String>,
}

impl KeyedRow for PaymentRow {
    const TABLE: &'static str = "payments";
    const KEY: &'static str = "payment_id";
    fn key(&self) -> Uuid {
        self.payment_id
    }
}

/// The rows a batch needs, by key.
#[derive(Debug, Default)]
pub struct Keys {
    /// Listings its events name.
    pub listings: Vec<Uuid>,
    /// Requests its events name.
    pub trades: Vec<Uuid>,
    /// Listings whose pending requests it may reject (accepted for one, withdrawn).
    pub pending_on: Vec<Uuid>,
    /// Payments its events name.
    pub payments: Vec<Uuid>,
}

/// The saga's state within one batch.
pub struct State {
    /// Listings.
    pub listings: Fold<ListingRow>,
    /// Recorded requests.
    pub trades: Fold<TradeRow>,
    /// Payments.
    pub payments: Fold<PaymentRow>,
    /// The last word on each deadline: set to a time, or cleared.
    deadlines: BTreeMap<(Uuid, &'static str), Option<DateTime<Utc>>>,
    /// Commands decided, in order.
    commands: Vec<SagaCommand>,
    /// Dead commands to run again (an operator retried their transfer under a new attempt).
    revived: Vec<String>,
    /// Commands settled by other means, with why (an operator settled the money outside).
    closed: Vec<(String, String)>,
}

impl State {
    /// Loads the rows `keys` name (and the pending requests of `keys.pending_on`).
    pub async fn load(tx: &mut PgConnection, keys: Keys) -> Result<Self, sqlx::Error> {
        let mut trades = Fold::load(&mut *tx, keys.trades).await?;
        trades
            .also_load(
                &mut *tx,
                "listing_id = ANY($1) AND status = 'requested'",
                &keys.pending_on,
            )
            .await?;
        Ok(State {
            listings: Fold::load(&mut *tx, keys.listings).await?,
            trades,
            payments: Fold::load(&mut *tx, keys.payments).await?,
            deadlines: BTreeMap::new(),
            commands: Vec::new(),
            revived: Vec::new(),
            closed: Vec::new(),
        })
    }

    /// Sets a deadline (replacing one of the same kind).
    pub fn set_deadline(&mut self, request_id: Uuid, kind: &'static str, due_at: DateTime<Utc>) {
        self.deadlines.insert((request_id, kind), Some(due_at));
    }

    /// Clears a deadline, if set.
    pub fn clear_deadline(&mut self, request_id: Uuid, kind: &'static str) {
        self.deadlines.insert((request_id, kind), None);
    }

    /// Decides on a command (the outbox ignores one decided before).
    pub fn decide(&mut self, command: SagaCommand) {
        self.commands.push(command);
    }

    /// Runs a dead command again (a no-op unless it is dead).
    pub fn revive(&mut self, command_id: String) {
        self.revived.push(command_id);
    }

    /// Marks a command done without running it (a no-op once it is done).
    pub fn close(&mut self, command_id: String, outcome: String) {
        self.closed.push((command_id, outcome));
    }

    /// Writes every change back: rows, deadlines, commands.
    pub async fn store(self, tx: &mut PgConnection) -> Result<(), ApplyError> {
        self.listings.store(&mut *tx).await?;
        self.trades.store(&mut *tx).await?;
        self.payments.store(&mut *tx).await?;
        let (set, cleared): (Vec<_>, Vec<_>) = self
            .deadlines
            .into_iter()
            .partition(|(_, due)| due.is_some());
        if !cleared.is_empty() {
            let (requests, kinds): (Vec<Uuid>, Vec<&str>) =
                cleared.iter().map(|((r, k), _)| (*r, *k)).unzip();
            sqlx::query(
                "DELETE FROM deadlines d
                  USING unnest($1::uuid[], $2::text[]) AS x(request_id, kind)
                  WHERE d.request_id = x.request_id AND d.kind = x.kind",
            )
            .bind(requests)
            .bind(kinds)
            .execute(&mut *tx)
            .await?;
        }
        if !set.is_empty() {
            let mut requests = Vec::with_capacity(set.len());
            let mut kinds = Vec::with_capacity(set.len());
            let mut due = Vec::with_capacity(set.len());
            for ((request, kind), at) in set.into_iter() {
                if let Some(at) = at {
                    requests.push(request);
                    kinds.push(kind);
                    due.push(at);
                }
            }
            sqlx::query(
                "INSERT INTO deadlines (request_id, kind, due_at)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])
                 ON CONFLICT (request_id, kind) DO UPDATE SET due_at = EXCLUDED.due_at",
            )
            .bind(requests)
            .bind(kinds)
            .bind(due)
            .execute(&mut *tx)
            .await?;
        }
        outbox::enqueue_all(tx, &self.commands).await?;
        outbox::revive_all(tx, &self.revived).await?;
        outbox::close_all(tx, &self.closed).await?;
        Ok(())
    }
}
