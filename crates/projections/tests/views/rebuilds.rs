//! Rebuilds over more than one batch: each view's own way of filling its shadow (writes
//! aside, MyPage's totals summed at the end, keys built once filled) must give the rows the
//! live view has, when later batches change rows that earlier ones made.

use std::sync::Arc;

use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::replay;
use carrot_projections::testing::test_database;
use carrot_projections::views::catalog::CatalogProjection;
use carrot_projections::views::mypage::MyPageProjection;
use carrot_projections::views::timeline::TimelineProjection;
use carrot_projections::{RunnerConfig, Subscriber};

use super::support::*;

#[tokio::test]
async fn rebuilds_over_two_batches_give_the_live_views_rows() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    // A few sellers, so their totals move in every batch.
    let sellers: Vec<UserId> = (0..20).map(|_| UserId::new()).collect();
    let deals: Vec<Deal> = (0..2_100_i64)
        .map(|n| {
            let seller = sellers[n as usize % sellers.len()];
            Deal::new(ListingId::new(), seller, UserId::new(), 10_000 + n)
        })
        .collect();
    // Every listing first: the trades in the second batch change listings of the first.
    for deal in &deals {
        let (listing, seller) = (deal.trade.listing_id, deal.seller());
        let event = registered(listing, seller, "Desk lamp", deal.price.as_krw(), 0);
        log.append(event, Actor::System).await;
    }
    for (n, deal) in deals.iter().enumerate() {
        let ending = if n % 2 == 0 {
            [deal.completed(false, 3), deal.sold(3), deal.paid_out(4)]
        } else {
            let cancelled = deal.cancelled(Party::Buyer, true, 3);
            [cancelled, deal.released(3), deal.refunded(4)]
        };
        let events = [
            deal.captured(1),
            deal.requested(1),
            deal.accepted(2),
            deal.reserved(2),
        ];
        for event in events.into_iter().chain(ending) {
            log.append(event, Actor::System).await;
        }
    }
    assert!(log.total() > 15_000, "two batches, the second a long one");

    // MyPage writes its totals aside after every batch, not only at the end.
    rebuilt_as_live(pool, &log, MyPageProjection::keeping(1)).await;
}

/// Two accounts close in one batch, and between them a listing of the first changes (one
/// its seller registered as they closed, withdrawn after): each rebuild erases and writes in
/// log order. (The catalog's fill once erased inside its batch's transaction while the
/// listing's write aside waited for the erased rows: the next erasure's wait for that
/// write stalled the fill until the server ended the idle transaction, failing it.)
#[tokio::test]
async fn rebuilds_erasing_two_accounts_in_one_batch_give_the_live_views_rows() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (first, second) = (UserId::new(), UserId::new());
    let (lamp, desk) = (ListingId::new(), ListingId::new());
    let events = [
        (registered(lamp, first, "Desk lamp", 10_000, 0), user(first)),
        (
            registered(desk, second, "Oak desk", 90_000, 1),
            user(second),
        ),
        (closed(first, 2), user(first)),
        (withdrawn(lamp, 3), Actor::System),
        (closed(second, 4), user(second)),
    ];
    log.append_all(events.into()).await;

    rebuilt_as_live(pool, &log, MyPageProjection::default()).await;
}

/// Runs the catalog, `mypage` and the timeline over `log`, then rebuilds and verifies each:
/// the rebuilt rows must be the live ones.
async fn rebuilt_as_live(pool: &Db, log: &EventLog, mypage: MyPageProjection) {
    let views: [Arc<dyn Subscriber>; 3] = [
        Arc::new(CatalogProjection),
        Arc::new(mypage),
        Arc::new(TimelineProjection),
    ];
    for view in views {
        catch_up_with(pool, view.clone(), RunnerConfig::default()).await;
        let live = snapshot(pool, view.name()).await;
        let rebuilt = replay::rebuild(pool, view.as_ref(), &mut |_| {})
            .await
            .expect("rebuilding");
        assert_eq!(rebuilt.events, log.total() as u64);
        assert_eq!(snapshot(pool, view.name()).await, live, "{}", view.name());
        let (_, differences) = replay::verify(pool, view.as_ref(), &mut |_| {})
            .await
            .expect("verifying");
        assert!(differences.is_empty(), "{}: {differences:?}", view.name());
    }
}
