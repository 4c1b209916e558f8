use carrot_domain::{Actor, ListingId, UserId};
use carrot_projections::testing::test_database;
use carrot_projections::views::timeline::{self, TimelineProjection};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::support::*;

// ---------------------------------------------------------------------------------------
// 4. Timeline
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_trades_timeline_lists_its_own_events_in_log_order_with_time_and_actor() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    let mine = Deal::new(lamp, seller, UserId::new(), 15_000);
    let other = Deal::new(lamp, seller, UserId::new(), 15_000);
    let (s, b, o, system) = (
        user(seller),
        user(mine.buyer()),
        user(other.buyer()),
        Actor::System,
    );
    // (whether it is of `mine`, who, when, what)
    let steps = [
        (
            false,
            s,
            0,
            registered(lamp, seller, "Desk lamp", 15_000, 0),
        ),
        (true, b, 1, mine.captured(1)),
        (true, b, 2, mine.requested(2)),
        (false, o, 3, other.captured(3)),
        (false, o, 4, other.requested(4)),
        (false, s, 5, edited(lamp, "Desk lamp", "Brass", 15_000, 5)),
        (true, s, 6, mine.reserved(6)),
        (true, s, 7, mine.accepted(7)),
        (
            false,
            system,
            8,
            other.rejected(system, Some("listing_reserved"), 8),
        ),
        (false, system, 9, other.refunded(9)),
        (true, b, 10, mine.completed(false, 10)),
        (true, b, 11, mine.sold(11)),
        (true, system, 12, mine.paid_out(12)),
    ];
    let mut expected = Vec::new();
    for (of_mine, by, minute, event) in steps {
        let name = event.stored_form().1;
        log.append(event, by).await;
        if of_mine {
            expected.push((name, at(minute), by.to_string()));
        }
    }
    catch_up(pool, TimelineProjection).await;

    // As clients read it: the entries' JSON.
    let entries: Vec<Value> = timeline::timeline(pool, mine.id())
        .await
        .expect("a timeline")
        .iter()
        .map(|e| serde_json::to_value(e).expect("an entry serializes"))
        .collect();
    let seen: Vec<(String, DateTime<Utc>, String)> = entries
        .iter()
        .map(|e| {
            let when = e["at"].as_str().expect("an `at`");
            let when = DateTime::parse_from_rfc3339(when).expect("RFC 3339");
            (
                e["event"].as_str().unwrap_or_default().to_owned(),
                when.with_timezone(&Utc),
                e["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(seen, expected);
    for entry in &entries {
        let keys: Vec<&String> = entry.as_object().expect("an object").keys().collect();
        assert!(!keys.iter().any(|k| *k == "trade"), "{entry}");
        assert!(!keys.iter().any(|k| k.ends_with("_at")), "{entry}");
    }
    let detail = |i: usize, key: &str| entries[i][key].clone();
    assert_eq!(detail(1, "price"), json!(15_000));
    assert_eq!(detail(1, "payment_id"), json!(mine.payment_id));
    assert_eq!(detail(2, "request_id"), json!(mine.id()));
    assert_eq!(detail(2, "listing_id"), json!(lamp));
    assert_eq!(detail(4, "automatic"), json!(false));
    assert_eq!(detail(6, "amount"), json!(15_000));

    let others: Vec<String> = timeline::timeline(pool, other.id())
        .await
        .expect("a timeline")
        .into_iter()
        .map(|e| e.event)
        .collect();
    let others_expected = [
        "PaymentCaptured",
        "PurchaseRequested",
        "PurchaseRequestRejected",
        "PaymentRefunded",
    ];
    assert_eq!(others, others_expected, "only the other trade's own events");
}
