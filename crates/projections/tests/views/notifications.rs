use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::testing::test_database;
use carrot_projections::views::notifications::{self, NotificationsProjection};
use carrot_projections::Checkpoint;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::support::*;

// ---------------------------------------------------------------------------------------
// 5. Notifications
// ---------------------------------------------------------------------------------------

/// A notification as compared here: id, trade, kind, status, when.
type Told = (String, Uuid, String, String, DateTime<Utc>);

async fn told(pool: &Db, who: UserId, after: Option<Checkpoint>) -> Vec<Told> {
    notifications::since(pool, who, after, 100)
        .await
        .expect("notifications")
        .into_iter()
        .map(|n| (n.id, n.request_id, n.kind, n.status, n.at))
        .collect()
}

#[tokio::test]
async fn notifications_tell_each_party_what_concerns_them() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    let deals = [(); 8].map(|()| Deal::new(lamp, seller, UserId::new(), 9_000));
    let [d1, d2, d3, d4, d5, d6, d7, d8] = deals;
    let s = vec![seller];
    let both = |d: Deal| vec![d.buyer(), seller];
    let nobody = Vec::<UserId>::new;
    let received = ("request_received", "requested");
    let accepted = ("request_accepted", "accepted");
    let completed = ("request_completed", "completed");
    let cancelled = ("request_cancelled", "cancelled");
    let expired = ("request_expired", "expired");
    let refunded = ("payment_refunded", "refunded");
    let none = ("", "");
    // (trade, when, what, told whom, kind and status)
    let steps = [
        (d1, 1, d1.captured(1), nobody(), none),
        (d1, 1, d1.requested(1), s.clone(), received),
        (d1, 2, d1.accepted(2), vec![d1.buyer()], accepted),
        (d1, 3, d1.completed(false, 3), s.clone(), completed),
        (
            d1,
            4,
            d1.paid_out(4),
            s.clone(),
            ("payment_paid_out", "paid_out"),
        ),
        (d2, 5, d2.captured(5), nobody(), none),
        (d2, 5, d2.requested(5), s.clone(), received),
        (
            d2,
            6,
            d2.rejected(user(seller), None, 6),
            vec![d2.buyer()],
            ("request_rejected", "rejected"),
        ),
        (d2, 7, d2.refunded(7), vec![d2.buyer()], refunded),
        (d3, 8, d3.captured(8), nobody(), none),
        (d3, 8, d3.requested(8), s.clone(), received),
        (d3, 9, d3.accepted(9), vec![d3.buyer()], accepted),
        (d3, 10, d3.completed(true, 10), both(d3), completed),
        (d4, 11, d4.captured(11), nobody(), none),
        (d4, 11, d4.requested(11), s.clone(), received),
        (
            d4,
            12,
            d4.cancelled(Party::Buyer, false, 12),
            s.clone(),
            cancelled,
        ),
        (d5, 13, d5.captured(13), nobody(), none),
        (d5, 13, d5.requested(13), s.clone(), received),
        (d5, 14, d5.accepted(14), vec![d5.buyer()], accepted),
        (
            d5,
            15,
            d5.cancelled(Party::Seller, true, 15),
            vec![d5.buyer()],
            cancelled,
        ),
        (d6, 16, d6.captured(16), nobody(), none),
        (d6, 16, d6.requested(16), s.clone(), received),
        (d6, 17, d6.expired(17), both(d6), expired),
        (d7, 18, d7.declined("card_declined", 18), nobody(), none),
        (
            d7,
            18,
            d7.payment_failed("card_declined", 18),
            vec![d7.buyer()],
            ("payment_failed", "payment_failed"),
        ),
        (d8, 19, d8.timed_out(19), nobody(), none),
        (d8, 20, d8.captured(20), nobody(), none),
        (d8, 21, d8.abandoned(21), vec![d8.buyer()], expired),
        (d8, 22, d8.refunded(22), vec![d8.buyer()], refunded),
    ];
    let mut expected: Vec<(UserId, Told)> = Vec::new();
    for (deal, minute, event, to, (kind, status)) in steps {
        let place = log.append(event, Actor::System).await;
        for who in to {
            let id = place.to_string();
            let notice = (
                id,
                deal.id().as_uuid(),
                kind.into(),
                status.into(),
                at(minute),
            );
            expected.push((who, notice));
        }
    }
    catch_up(pool, NotificationsProjection).await;

    let expected_for = |who: UserId| -> Vec<Told> {
        expected
            .iter()
            .filter(|(to, _)| *to == who)
            .map(|(_, n)| n.clone())
            .collect()
    };
    for who in std::iter::once(seller).chain(deals.iter().map(Deal::buyer)) {
        assert_eq!(told(pool, who, None).await, expected_for(who), "told {who}");
    }
    assert_eq!(told(pool, UserId::new(), None).await, vec![], "a stranger");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications.notifications")
        .fetch_one(pool)
        .await
        .expect("a count");
    assert_eq!(rows, expected.len() as i64, "no one else was told anything");

    // The seller's: newest first two at a time, and what came after a given one.
    let seller_told = expected_for(seller);
    let mut newest_first = Vec::new();
    let mut before = None;
    loop {
        let page = notifications::newest(pool, seller, before, 2)
            .await
            .expect("a page");
        let Some(last) = page.last() else { break };
        before = Some(
            last.id
                .parse::<Checkpoint>()
                .expect("an id is a checkpoint"),
        );
        assert!(page.len() <= 2 && newest_first.len() < seller_told.len());
        newest_first.extend(page.into_iter().map(|n| n.id));
    }
    let ids: Vec<String> = seller_told.iter().rev().map(|n| n.0.clone()).collect();
    assert_eq!(newest_first, ids);
    let second = seller_told[1].0.parse().ok();
    assert_eq!(told(pool, seller, second).await, seller_told[2..].to_vec());
    assert_eq!(
        notifications::latest_id(pool, seller)
            .await
            .expect("latest"),
        seller_told.last().and_then(|n| n.0.parse().ok())
    );
}
