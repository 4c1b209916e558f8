//! Trades driven through a running service, with what each call acknowledged, and the
//! checks afterwards: every acknowledged command is in the log, every trade is settled at
//! most once (exactly once when its closing was acknowledged), the gateway's ledger agrees
//! with the log, and every view equals a rebuild.

use std::time::{Duration, Instant};

use carrot_projections::postgres::Db;
use carrot_projections::replay;
use serde_json::Value;

use super::http::post;
use super::User;

/// What one trade's calls were answered.
#[derive(Debug, Clone, Default)]
pub struct Trade {
    pub listing: Option<String>,
    pub request: Option<String>,
    pub payment: Option<String>,
    /// Each acknowledged (2xx) command, as (aggregate type, id, the event it must have left).
    pub acked: Vec<(&'static str, String, &'static str)>,
    /// The settlement its acknowledged commands call for: "paid_out", "refunded", "open"
    /// (captured, nothing closed it), or "unknown" (a call went unanswered).
    pub ended: &'static str,
}

/// One trade through `base`: register, request and pay, then by `n % 4` accept and
/// complete, reject, accept and cancel, or leave it open.
pub async fn trade(
    client: &reqwest::Client,
    base: &str,
    seller: &User,
    buyer: &User,
    n: usize,
) -> Trade {
    let mut t = Trade {
        ended: "unknown",
        ..Trade::default()
    };
    let body = serde_json::json!({"title": "Lamp", "description": "", "price": 1_000 + n});
    let (status, listing) = post(client, base, seller, "/listings", Some(body)).await;
    let Some(listing) = listing["listing_id"].as_str().filter(|_| status == 201) else {
        return t;
    };
    t.listing = Some(listing.to_owned());
    t.acked
        .push(("listing", listing.to_owned(), "ListingRegistered"));
    let path = format!("/listings/{listing}/requests");
    let (status, placed) = post(client, base, buyer, &path, None).await;
    let (Some(request), Some(payment)) = (
        placed["request_id"].as_str().filter(|_| status == 201),
        placed["payment_id"].as_str(),
    ) else {
        return t;
    };
    t.request = Some(request.to_owned());
    t.payment = Some(payment.to_owned());
    t.acked
        .push(("purchase_request", request.to_owned(), "PurchaseRequested"));
    t.acked
        .push(("payment", payment.to_owned(), "PaymentCaptured"));
    let steps: &[(bool, &str, &'static str)] = match n % 4 {
        0 => &[
            (true, "accept", "PurchaseRequestAccepted"),
            (false, "complete", "PurchaseRequestCompleted"),
        ],
        1 => &[(true, "reject", "PurchaseRequestRejected")],
        2 => &[
            (true, "accept", "PurchaseRequestAccepted"),
            (false, "cancel", "PurchaseRequestCancelled"),
        ],
        _ => &[],
    };
    for (by_seller, action, event) in steps {
        let user = if *by_seller { seller } else { buyer };
        let (status, _) = post(
            client,
            base,
            user,
            &format!("/requests/{request}/{action}"),
            None,
        )
        .await;
        if status != 200 {
            return t;
        }
        t.acked
            .push(("purchase_request", request.to_owned(), event));
    }
    t.ended = match n % 4 {
        0 => "paid_out",
        1 | 2 => "refunded",
        _ => "open",
    };
    t
}

/// Waits (bounded) until every subscriber has applied the log and no saga command waits:
/// processes on their own clocks and wake-ups, so up to 90 s, and quiet for half a second.
pub async fn settled(pool: &Db) {
    settled_within(pool, Duration::from_secs(90), 5, Duration::from_millis(100)).await;
}

/// Waits until every subscriber has applied the log and no saga command waits, seen
/// `quiet` times in a row `poll` apart, failing after `within`.
pub async fn settled_within(pool: &Db, within: Duration, quiet: u32, poll: Duration) {
    let deadline = Instant::now() + within;
    let mut seen_quiet = 0;
    while seen_quiet < quiet {
        let busy: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM subscription_checkpoints c
                      WHERE EXISTS (SELECT 1 FROM events e WHERE (e.transaction_id, e.global_position)
                                                               > (c.transaction_id, c.global_position)))
                  + (SELECT count(*) FROM settlement.outbox WHERE status = 'pending')",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        seen_quiet = if busy == 0 { seen_quiet + 1 } else { 0 };
        assert!(
            Instant::now() < deadline,
            "the views and the saga did not settle within {within:?}"
        );
        tokio::time::sleep(poll).await;
    }
}

/// Every acknowledged command left its event; returns how many were checked.
pub async fn assert_acknowledged_in_log(pool: &Db, trades: &[Trade]) -> usize {
    let mut checked = 0;
    for (aggregate_type, id, event) in trades.iter().flat_map(|t| &t.acked) {
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = $3",
        )
        .bind(aggregate_type)
        .bind(id)
        .bind(event)
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            found, 1,
            "{aggregate_type} {id}: {event} acknowledged, found {found}"
        );
        checked += 1;
    }
    checked
}

/// Each trade is settled as its acknowledged commands say (at most once when unknown), and
/// the gateway moved exactly what the log says, once per key.
pub async fn assert_settled_once(pool: &Db, client: &reqwest::Client, sim: &str, trades: &[Trade]) {
    for t in trades {
        let Some(payment) = &t.payment else { continue };
        let settlements: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM events WHERE aggregate_type = 'payment' AND aggregate_id = $1
                AND event_type IN ('PaymentRefunded', 'PaymentPaidOut')",
        )
        .bind(payment)
        .fetch_all(pool)
        .await
        .unwrap();
        match t.ended {
            "paid_out" => assert_eq!(settlements, ["PaymentPaidOut"], "payment {payment}"),
            "refunded" => assert_eq!(settlements, ["PaymentRefunded"], "payment {payment}"),
            "open" => assert!(settlements.is_empty(), "payment {payment}: {settlements:?}"),
            _ => assert!(settlements.len() <= 1, "payment {payment}: {settlements:?}"),
        }
    }
    let ledger: Value = client
        .get(format!("{sim}/ledger"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = ledger["entries"].as_array().unwrap();
    let moved = |op: &str| -> i64 {
        entries
            .iter()
            .filter(|e| e["operation"] == op && e["outcome"] == "ok")
            .map(|e| e["amount"].as_i64().unwrap())
            .sum()
    };
    for (op, event) in [("refund", "PaymentRefunded"), ("payout", "PaymentPaidOut")] {
        let logged: i64 = sqlx::query_scalar(&format!(
            "SELECT coalesce(sum((payload -> '{event}' ->> 'amount')::bigint), 0)::bigint
               FROM events WHERE event_type = '{event}'"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        assert_eq!(
            moved(op),
            logged,
            "{op}s at the gateway and {event} in the log"
        );
    }
    for payment in trades.iter().filter_map(|t| t.payment.as_ref()) {
        let both_ways = ["refund", "payout"]
            .iter()
            .filter(|op| {
                entries
                    .iter()
                    .any(|e| e["idempotency_key"] == format!("{op}:{payment}"))
            })
            .count();
        assert!(both_ways <= 1, "payment {payment} moved both ways");
    }
}

/// Every view equals a rebuild from the log.
pub async fn assert_views_equal_a_rebuild(pool: &Db) {
    for view in carrot_projections::views::all() {
        let (_, differences) = replay::verify(pool, view.as_ref(), &mut |_| {})
            .await
            .unwrap();
        assert!(differences.is_empty(), "{}: {differences:?}", view.name());
    }
}
