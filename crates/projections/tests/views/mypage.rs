use std::future::Future;

use carrot_domain::trade::Party;
use carrot_domain::{Actor, ListingId, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::testing::test_database;
use carrot_projections::views::mypage::{
    self, MyPageProjection, PageCursor, PaymentSummary, RequestView,
};
use carrot_projections::views::page::Page;
use serde_json::json;
use uuid::Uuid;

use super::market::*;
use super::support::*;

// ---------------------------------------------------------------------------------------
// 3. MyPage
// ---------------------------------------------------------------------------------------

/// Catches MyPage up and checks `deal` as its buyer sees it (`None`: no request yet), and
/// that its seller sees the same unless the payment failed (`check_seller: false` leaves
/// the seller's view unchecked).
async fn expect_request(
    pool: &Db,
    deal: &Deal,
    expected: Option<(&str, &str)>,
    hidden_from_seller: bool,
) {
    catch_up(pool, MyPageProjection::default()).await;
    let by_buyer = request(pool, deal, deal.buyer()).await;
    let seen = by_buyer
        .as_ref()
        .map(|r| (r.status.as_str(), r.payment.status.as_str()));
    assert_eq!(seen, expected, "the buyer's view of {:?}", deal.id());
    let by_seller = request(pool, deal, deal.seller()).await;
    match expected {
        Some(("payment_failed", _)) | None => assert_eq!(by_seller, None),
        Some(_) if hidden_from_seller => assert_eq!(by_seller, None, "never reached the seller"),
        Some(_) => assert_eq!(by_seller, by_buyer, "the seller sees what the buyer sees"),
    }
}

#[tokio::test]
async fn mypage_follows_every_request_event_and_its_payment_status() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, lamp) = (UserId::new(), ListingId::new());
    log.append(
        registered(lamp, seller, "Desk lamp", 15_000, 0),
        user(seller),
    )
    .await;
    let [done, rejected, cancelled, expired, failed, abandoned] =
        [(); 6].map(|()| Deal::new(lamp, seller, UserId::new(), 15_000));
    let c = "captured";
    let steps = [
        (done, done.captured(1), None),
        (done, done.requested(1), Some(("requested", c))),
        (done, done.accepted(2), Some(("accepted", c))),
        (done, done.completed(false, 3), Some(("completed", c))),
        (done, done.paid_out(4), Some(("completed", "paid_out"))),
        (rejected, rejected.captured(5), None),
        (rejected, rejected.requested(5), Some(("requested", c))),
        (
            rejected,
            rejected.rejected(user(seller), Some("sold elsewhere"), 6),
            Some(("rejected", c)),
        ),
        (
            rejected,
            rejected.refunded(7),
            Some(("rejected", "refunded")),
        ),
        (cancelled, cancelled.captured(8), None),
        (cancelled, cancelled.requested(8), Some(("requested", c))),
        (
            cancelled,
            cancelled.cancelled(Party::Buyer, false, 9),
            Some(("cancelled", c)),
        ),
        (
            cancelled,
            cancelled.refunded(10),
            Some(("cancelled", "refunded")),
        ),
        (expired, expired.captured(11), None),
        (expired, expired.requested(11), Some(("requested", c))),
        (expired, expired.expired(12), Some(("expired", c))),
        (expired, expired.refunded(13), Some(("expired", "refunded"))),
        (failed, failed.declined("card_declined", 14), None),
        (
            failed,
            failed.payment_failed("card_declined", 14),
            Some(("payment_failed", "failed")),
        ),
        (abandoned, abandoned.timed_out(15), None),
        (abandoned, abandoned.captured(16), None),
        (abandoned, abandoned.abandoned(17), Some(("expired", c))),
        (
            abandoned,
            abandoned.refunded(18),
            Some(("expired", "refunded")),
        ),
    ];
    for (deal, event, expected) in steps {
        log.append(event, Actor::System).await;
        // An abandoned request (the buyer was told it failed) never reached the seller.
        let hidden_from_seller = deal.id() == abandoned.id();
        expect_request(pool, &deal, expected, hidden_from_seller).await;
    }

    let done_view = request(pool, &done, done.buyer()).await.expect("visible");
    assert_eq!(
        done_view,
        RequestView {
            request_id: done.id().as_uuid(),
            listing_id: lamp.as_uuid(),
            listing_title: Some("Desk lamp".into()),
            buyer_id: done.buyer().as_uuid(),
            seller_id: seller.as_uuid(),
            price: 15_000,
            status: "completed".into(),
            reason: None,
            payment: PaymentSummary {
                amount: 15_000,
                payment_id: done.payment_id.as_uuid(),
                status: "paid_out".into(),
            },
            created_at: at(1),
            updated_at: at(4),
        }
    );
    let reason = |view: Option<RequestView>| view.and_then(|v| v.reason);
    assert_eq!(
        reason(request(pool, &rejected, rejected.buyer()).await).as_deref(),
        Some("sold elsewhere"),
        "the rejection's reason is kept through the refund"
    );
    assert_eq!(
        reason(request(pool, &failed, failed.buyer()).await).as_deref(),
        Some("card_declined")
    );
    assert_eq!(
        request(pool, &done, UserId::new()).await,
        None,
        "a stranger"
    );
    assert_eq!(
        request(pool, &done, failed.buyer()).await,
        None,
        "another buyer"
    );

    // The seller's sales list the paid requests, never the one whose payment failed.
    let sales = mypage::sales(pool, seller, None, 10).await.expect("sales");
    let listed: Vec<String> = sales.items[0]
        .requests
        .iter()
        .map(|r| r.request_id.to_string())
        .collect();
    for deal in [done, rejected, cancelled, expired] {
        assert!(listed.contains(&deal.id().to_string()), "{listed:?}");
    }
    assert!(!listed.contains(&failed.id().to_string()), "{listed:?}");
}

#[tokio::test]
async fn mypage_summary_counts_each_side_and_sums_the_money() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = market(&mut log).await;
    catch_up(pool, MyPageProjection::default()).await;

    // As clients read it: the summary's JSON.
    let summary = |who| async move {
        let summary = mypage::summary(pool, who).await.expect("a summary");
        serde_json::to_value(summary).expect("a summary serializes")
    };
    let no_sales = json!({"requested": 0, "accepted": 0, "rejected": 0, "completed": 0,
                          "cancelled": 0, "expired": 0});
    let no_listings = json!({"available": 0, "reserved": 0, "sold": 0, "withdrawn": 0});
    assert_eq!(
        summary(m.buyer).await,
        json!({
            "purchases": {"requested": 0, "accepted": 1, "rejected": 0, "completed": 1,
                          "cancelled": 1, "expired": 0, "payment_failed": 1},
            "sales": no_sales,
            "listings": no_listings,
            "money": {"held": 10_000, "refunded": 5_000, "paid_out": 20_000,
                      "earned": 0, "incoming": 0},
        })
    );
    assert_eq!(
        summary(m.other).await,
        json!({
            "purchases": {"requested": 0, "accepted": 0, "rejected": 1, "completed": 0,
                          "cancelled": 1, "expired": 1, "payment_failed": 0},
            "sales": no_sales,
            "listings": no_listings,
            "money": {"held": 0, "refunded": 25_000, "paid_out": 0, "earned": 0, "incoming": 0},
        })
    );
    assert_eq!(
        summary(m.seller).await,
        json!({
            "purchases": {"requested": 0, "accepted": 0, "rejected": 0, "completed": 0,
                          "cancelled": 0, "expired": 0, "payment_failed": 0},
            "sales": {"requested": 0, "accepted": 1, "rejected": 1, "completed": 1,
                      "cancelled": 2, "expired": 1},
            "listings": {"available": 1, "reserved": 1, "sold": 1, "withdrawn": 1},
            "money": {"held": 0, "refunded": 0, "paid_out": 0, "earned": 20_000,
                      "incoming": 10_000},
        })
    );
}

#[tokio::test]
async fn mypage_lists_purchases_and_sales_newest_first_and_pages_through_them() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let m = market(&mut log).await;
    catch_up(pool, MyPageProjection::default()).await;
    let [r1, r2, r3, r4, r5, r6, r7] = m.r.map(|d| d.id().as_uuid());
    let [l1, l2, l3, l4] = m.listings.map(|l| l.as_uuid());

    let ids = |items: &[RequestView]| items.iter().map(|r| r.request_id).collect::<Vec<_>>();
    let tied = if r1 > r2 { [r1, r2] } else { [r2, r1] };
    let by_buyer = vec![r5, r4, tied[0], tied[1]];
    for (buyer, expected) in [(m.buyer, by_buyer), (m.other, vec![r7, r6, r3])] {
        let all = mypage::purchases(pool, buyer, None, 10)
            .await
            .expect("purchases");
        assert_eq!((ids(&all.items), all.next_cursor), (expected.clone(), None));
        let paged = every_page(|after| async move {
            mypage::purchases(pool, buyer, after, 1)
                .await
                .expect("a page")
        })
        .await;
        assert_eq!(
            ids(&paged),
            expected,
            "page by page: nothing missed or repeated"
        );
    }

    // Listings newest first, each with its paid requests newest first.
    let shape = |sales: &[mypage::SaleView]| {
        sales
            .iter()
            .map(|s| {
                let requests: Vec<String> = s
                    .requests
                    .iter()
                    .map(|r| r.request_id.to_string())
                    .collect();
                (s.listing_id, requests)
            })
            .collect::<Vec<_>>()
    };
    let strings = |ids: &[Uuid]| ids.iter().map(Uuid::to_string).collect::<Vec<_>>();
    let expected = vec![
        (l4, strings(&[r7, r6])),
        (l3, strings(&[r4])),
        (l2, strings(&[r2])),
        (l1, strings(&[r3, r1])),
    ];
    let seller = m.seller;
    let all = mypage::sales(pool, seller, None, 10).await.expect("sales");
    assert_eq!(
        (shape(&all.items), all.next_cursor),
        (expected.clone(), None)
    );
    let all = all.items;
    let paged =
        every_page(
            |after| async move { mypage::sales(pool, seller, after, 1).await.expect("a page") },
        )
        .await;
    assert_eq!(
        shape(&paged),
        expected,
        "page by page: nothing missed or repeated"
    );
    assert_eq!(
        (all[0].title.as_str(), all[0].price, all[0].status.as_str()),
        ("Oak chair", 8_000, "available")
    );
}

/// Follows a cursor-paginated query page by page (through the cursor's text form, as a
/// client would) until it says there is no next page.
async fn every_page<T, F, Fut>(mut page: F) -> Vec<T>
where
    F: FnMut(Option<PageCursor>) -> Fut,
    Fut: Future<Output = Page<T>>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..50 {
        let page = page(cursor).await;
        assert!(
            page.items.len() <= 1,
            "a page of limit 1 had {}",
            page.items.len()
        );
        all.extend(page.items);
        let Some(next) = page.next_cursor else {
            return all;
        };
        cursor = Some(PageCursor::decode(&next).expect("a cursor round-trips"));
    }
    panic!("pagination never ended");
}
