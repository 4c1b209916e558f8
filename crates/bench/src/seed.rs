//! A realistic event log, written straight into the store: for rebuild benchmarks that need
//! hundreds of thousands of events, which would take minutes to make through HTTP.
//!
//! Every payload is a real domain event serialized by serde, with the metadata the service
//! writes, so the views read it exactly as they read the service's own log. A trade is a
//! listing, its payment and its request, ending one of four ways in turn (completed and
//! paid out; rejected and refunded; accepted, cancelled and refunded; still pending): six
//! events per trade on average.

use carrot_domain::listing::fields::{Description, ListingTitle};
use carrot_domain::listing::{Change, ListingChanges, ListingEvent};
use carrot_domain::payment::PaymentEvent;
use carrot_domain::purchase_request::PurchaseRequestEvent;
use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, Money, PaymentId, Price, RequestId, Trade, UserId};
use chrono::{DateTime, Duration, Utc};
use cqrs_es::DomainEvent;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Rows written per transaction.
const CHUNK: usize = 5_000;

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// A field was refused (a bug in the generator).
    #[error("invalid generated field: {0}")]
    Field(String),
}

/// One event as the store keeps it.
struct Row {
    aggregate_type: &'static str,
    aggregate_id: String,
    sequence: i64,
    event_type: String,
    event_version: String,
    payload: Value,
    metadata: Value,
}

/// Collects one trade's events, keeping each aggregate's sequence.
struct Trader {
    rows: Vec<Row>,
    trade: Trade,
    at: DateTime<Utc>,
}

impl Trader {
    fn push<E: serde::Serialize + DomainEvent>(
        &mut self,
        aggregate_type: &'static str,
        id: String,
        sequence: i64,
        event: E,
        actor: Actor,
    ) {
        let payload = serde_json::to_value(&event).unwrap_or(Value::Null);
        self.rows.push(Row {
            aggregate_type,
            aggregate_id: id,
            sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload,
            metadata: json!({
                "actor": actor.to_string(),
                "correlation_id": self.trade.request_id.to_string(),
            }),
        });
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.at += Duration::milliseconds(250);
        self.at
    }
}

fn trade_events(
    n: usize,
    start: DateTime<Utc>,
    seller: Option<UserId>,
) -> Result<Vec<Row>, SeedError> {
    let field = |e: &dyn std::fmt::Display| SeedError::Field(e.to_string());
    let trade = Trade {
        request_id: RequestId::new(),
        listing_id: ListingId::new(),
        buyer_id: UserId::new(),
        // Not `unwrap_or_default`: an id's default is the nil id, and every trade needs a seller of its own.
        #[allow(clippy::unwrap_or_default)]
        seller_id: seller.unwrap_or_else(UserId::new),
    };
    let price = Price::parse(1_000 + (n as i64 % 100_000) * 10).map_err(|e| field(&e))?;
    let payment_id = PaymentId::new();
    let (listing, payment, request) = (
        trade.listing_id.to_string(),
        payment_id.to_string(),
        trade.request_id.to_string(),
    );
    let (seller, buyer) = (Actor::User(trade.seller_id), Actor::User(trade.buyer_id));
    let mut t = Trader {
        rows: Vec::with_capacity(8),
        trade,
        at: start,
    };
    let at = t.tick();
    t.push(
        "listing",
        listing.clone(),
        1,
        ListingEvent::ListingRegistered {
            listing_id: trade.listing_id,
            seller_id: trade.seller_id,
            title: ListingTitle::parse(&format!("Seeded item {n}")).map_err(|e| field(&e))?,
            description: Description::parse(
                "Generated for a rebuild benchmark; in good shape, barely used, original box.",
            )
            .map_err(|e| field(&e))?,
            price,
            category: None,
            registered_at: at,
        },
        seller,
    );
    let at = t.tick();
    t.push(
        "payment",
        payment.clone(),
        1,
        PaymentEvent::PaymentCaptured {
            payment_id,
            trade,
            amount: price.money(),
            reference: format!("seed-{n}"),
            captured_at: at,
        },
        buyer,
    );
    let at = t.tick();
    t.push(
        "purchase_request",
        request.clone(),
        1,
        PurchaseRequestEvent::PurchaseRequested {
            trade,
            price,
            payment_id,
            requested_at: at,
        },
        buyer,
    );
    let amount: Money = price.money();
    let settle = |t: &mut Trader, refund: bool| {
        let at = t.tick();
        let reference = format!("seed-{n}-settled");
        let event = if refund {
            PaymentEvent::PaymentRefunded {
                payment_id,
                trade,
                amount,
                reference,
                refunded_at: at,
            }
        } else {
            PaymentEvent::PaymentPaidOut {
                payment_id,
                trade,
                amount,
                reference,
                paid_out_at: at,
            }
        };
        t.push("payment", payment.clone(), 2, event, Actor::System);
    };
    let accept = |t: &mut Trader| {
        let at = t.tick();
        t.push(
            "listing",
            listing.clone(),
            2,
            ListingEvent::ListingReserved {
                listing_id: trade.listing_id,
                request_id: trade.request_id,
                reserved_at: at,
            },
            seller,
        );
        let at = t.tick();
        t.push(
            "purchase_request",
            request.clone(),
            2,
            PurchaseRequestEvent::PurchaseRequestAccepted {
                trade,
                accepted_at: at,
            },
            seller,
        );
    };
    match n % 4 {
        0 => {
            accept(&mut t);
            let at = t.tick();
            t.push(
                "purchase_request",
                request.clone(),
                3,
                PurchaseRequestEvent::PurchaseRequestCompleted {
                    trade,
                    automatic: false,
                    completed_at: at,
                },
                buyer,
            );
            let at = t.tick();
            t.push(
                "listing",
                listing.clone(),
                3,
                ListingEvent::ListingSold {
                    listing_id: trade.listing_id,
                    request_id: trade.request_id,
                    sold_at: at,
                },
                buyer,
            );
            settle(&mut t, false);
        }
        1 => {
            let at = t.tick();
            t.push(
                "purchase_request",
                request.clone(),
                2,
                PurchaseRequestEvent::PurchaseRequestRejected {
                    trade,
                    by: seller,
                    reason: Some("sold elsewhere".into()),
                    rejected_at: at,
                },
                seller,
            );
            settle(&mut t, true);
        }
        2 => {
            accept(&mut t);
            let at = t.tick();
            t.push(
                "purchase_request",
                request.clone(),
                3,
                PurchaseRequestEvent::PurchaseRequestCancelled {
                    trade,
                    by: Party::Buyer,
                    after_acceptance: true,
                    cancelled_at: at,
                },
                buyer,
            );
            let at = t.tick();
            t.push(
                "listing",
                listing.clone(),
                3,
                ListingEvent::ListingReleased {
                    listing_id: trade.listing_id,
                    request_id: trade.request_id,
                    released_at: at,
                },
                buyer,
            );
            settle(&mut t, true);
        }
        _ => {}
    }
    Ok(t.rows)
}

/// Appends about `events` events (whole trades) to the log at `pool`; returns how many.
pub async fn seed(
    pool: &PgPool,
    events: usize,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, SeedError> {
    seed_trades(pool, Until::Events(events), None, Span::Month, progress).await
}

/// When the seeded trades happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// One a second from 30 days ago: pending requests are long past their 48 hours, and
    /// a service started on the log expires them (for replay, which does not care).
    Month,
    /// Spread over the last 40 hours: no request is due to expire for 8 hours, so a
    /// service started on the log does nothing in the background but apply it.
    Recent,
}

/// When seeding stops.
#[derive(Debug, Clone, Copy)]
pub enum Until {
    /// About this many events.
    Events(usize),
    /// This many whole trades.
    Trades(usize),
}

/// Appends whole trades until `until`, each sold by `seller` (or by a seller of its own);
/// returns how many events.
pub async fn seed_trades(
    pool: &PgPool,
    until: Until,
    seller: Option<UserId>,
    span: Span,
    progress: &mut dyn FnMut(usize),
) -> Result<usize, SeedError> {
    let (start, step) = match span {
        Span::Month => (Utc::now() - Duration::days(30), Duration::seconds(1)),
        Span::Recent => {
            let trades = match until {
                Until::Events(events) => events / 6 + 1,
                Until::Trades(trades) => trades.max(1),
            };
            let within = Duration::hours(40);
            let step = within.num_milliseconds() / i64::try_from(trades).unwrap_or(i64::MAX);
            (Utc::now() - within, Duration::milliseconds(step.max(1)))
        }
    };
    let mut written = 0;
    let mut n = 0;
    let mut pending: Vec<Row> = Vec::with_capacity(CHUNK + 8);
    let more = |n: usize, events: usize| match until {
        Until::Events(want) => events < want,
        Until::Trades(want) => n < want,
    };
    while more(n, written + pending.len()) {
        pending.extend(trade_events(
            n,
            start + step * i32::try_from(n).unwrap_or(i32::MAX),
            seller,
        )?);
        n += 1;
        if pending.len() >= CHUNK {
            written += write(pool, &std::mem::take(&mut pending)).await?;
            progress(written);
        }
    }
    written += write(pool, &pending).await?;
    progress(written);
    Ok(written)
}

async fn write(pool: &PgPool, rows: &[Row]) -> Result<usize, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let types: Vec<&str> = rows.iter().map(|r| r.aggregate_type).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.aggregate_id.as_str()).collect();
    let sequences: Vec<i64> = rows.iter().map(|r| r.sequence).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.event_type.as_str()).collect();
    let versions: Vec<&str> = rows.iter().map(|r| r.event_version.as_str()).collect();
    let payloads: Vec<&Value> = rows.iter().map(|r| &r.payload).collect();
    let metadata: Vec<&Value> = rows.iter().map(|r| &r.metadata).collect();
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata)
         SELECT t, i, s, e, v, p, m
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::jsonb[], $6::jsonb[],
                       $7::text[])
             AS r(t, i, s, e, p, m, v)",
    )
    .bind(types)
    .bind(ids)
    .bind(sequences)
    .bind(names)
    .bind(payloads)
    .bind(metadata)
    .bind(versions)
    .execute(pool)
    .await?;
    Ok(rows.len())
}

/// Appends `count` edits to an existing listing's stream, as its seller would have made them.
pub async fn edits(pool: &PgPool, listing: &str, count: usize) -> Result<(), sqlx::Error> {
    let (seller, from): (Value, i64) = sqlx::query_as(
        "SELECT metadata, max(sequence) OVER () FROM events
          WHERE aggregate_type = 'listing' AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(listing)
    .fetch_one(pool)
    .await?;
    let Ok(listing_id) = listing.parse::<ListingId>() else {
        return Ok(());
    };
    let rows: Vec<Row> = (1..=count)
        .filter_map(|n| {
            let (from_price, to_price) =
                (10_000 + (n as i64 - 1) % 1_000, 10_000 + n as i64 % 1_000);
            let event = ListingEvent::ListingEdited {
                listing_id,
                changes: ListingChanges {
                    price: Some(Change {
                        from: Some(Price::parse(from_price).ok()?),
                        to: Price::parse(to_price).ok()?,
                    }),
                    ..ListingChanges::default()
                },
                edited_at: Utc::now(),
            };
            Some(Row {
                aggregate_type: "listing",
                aggregate_id: listing.to_owned(),
                sequence: from + n as i64,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event).ok()?,
                metadata: seller.clone(),
            })
        })
        .collect();
    for chunk in rows.chunks(CHUNK) {
        write(pool, chunk).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trades_end_four_ways_with_sequences_per_aggregate() {
        let start = Utc::now();
        let sizes: Vec<usize> = (0..4)
            .map(|n| trade_events(n, start, None).map(|r| r.len()).unwrap_or(0))
            .collect();
        assert_eq!(sizes, [8, 5, 8, 3]);
        let completed = trade_events(0, start, None).unwrap_or_default();
        let kinds: Vec<&str> = completed.iter().map(|r| r.event_type.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "ListingRegistered",
                "PaymentCaptured",
                "PurchaseRequested",
                "ListingReserved",
                "PurchaseRequestAccepted",
                "PurchaseRequestCompleted",
                "ListingSold",
                "PaymentPaidOut"
            ]
        );
        let listing_sequences: Vec<i64> = completed
            .iter()
            .filter(|r| r.aggregate_type == "listing")
            .map(|r| r.sequence)
            .collect();
        assert_eq!(listing_sequences, [1, 2, 3]);
    }
}
