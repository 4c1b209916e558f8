use carrot_domain::{Actor, ListingId, UserId};
use carrot_projections::testing::test_database;
use carrot_projections::views::payments::{PaymentView, PaymentsProjection};

use super::support::*;

// ---------------------------------------------------------------------------------------
// 2. Payments
// ---------------------------------------------------------------------------------------

/// What the payments view shows of `deal` in `status`, changed last at minute `updated`.
fn payment_view(deal: &Deal, status: &str, updated: i64) -> PaymentView {
    PaymentView {
        payment_id: deal.payment_id.as_uuid(),
        request_id: deal.id().as_uuid(),
        listing_id: deal.trade.listing_id.as_uuid(),
        buyer_id: deal.buyer().as_uuid(),
        seller_id: deal.seller().as_uuid(),
        amount: deal.price.as_krw(),
        status: status.into(),
        reason: None,
        captured_at: None,
        settled_at: None,
        updated_at: at(updated),
    }
}

#[tokio::test]
async fn payments_appear_once_their_capture_has_an_outcome_and_follow_their_settlement() {
    let db = test_database().await;
    let pool = &db.pool;
    let mut log = EventLog::new(pool);
    let (seller, listing_id) = (UserId::new(), ListingId::new());
    let paid = Deal::new(listing_id, seller, UserId::new(), 10_000);
    let declined = Deal::new(listing_id, seller, UserId::new(), 11_000);
    let late = Deal::new(listing_id, seller, UserId::new(), 12_000);

    log.append(paid.captured(1), user(paid.buyer())).await;
    catch_up(pool, PaymentsProjection).await;
    let captured = PaymentView {
        captured_at: Some(at(1)),
        ..payment_view(&paid, "captured", 1)
    };
    assert_eq!(
        payment(pool, &paid, paid.buyer()).await,
        Some(captured.clone())
    );

    log.append(
        declined.declined("card_declined", 2),
        user(declined.buyer()),
    )
    .await;
    catch_up(pool, PaymentsProjection).await;
    let failed = PaymentView {
        reason: Some("card_declined".into()),
        ..payment_view(&declined, "failed", 2)
    };
    assert_eq!(
        payment(pool, &declined, declined.buyer()).await,
        Some(failed)
    );

    // A capture whose outcome is unknown is not shown, to anyone.
    log.append(late.timed_out(3), user(late.buyer())).await;
    catch_up(pool, PaymentsProjection).await;
    assert_eq!(payment(pool, &late, late.buyer()).await, None);
    assert_eq!(payment(pool, &late, seller).await, None);
    // Once reconciled, it is.
    log.append(late.captured(4), Actor::System).await;
    catch_up(pool, PaymentsProjection).await;
    let reconciled = PaymentView {
        captured_at: Some(at(4)),
        ..payment_view(&late, "captured", 4)
    };
    assert_eq!(
        payment(pool, &late, late.buyer()).await,
        Some(reconciled.clone())
    );

    log.append(paid.refunded(5), Actor::System).await;
    log.append(late.paid_out(6), Actor::System).await;
    catch_up(pool, PaymentsProjection).await;
    let refunded = PaymentView {
        status: "refunded".into(),
        settled_at: Some(at(5)),
        updated_at: at(5),
        ..captured
    };
    let paid_out = PaymentView {
        status: "paid_out".into(),
        settled_at: Some(at(6)),
        updated_at: at(6),
        ..reconciled
    };
    assert_eq!(
        payment(pool, &paid, paid.buyer()).await,
        Some(refunded.clone())
    );
    assert_eq!(
        payment(pool, &late, late.buyer()).await,
        Some(paid_out.clone())
    );

    // Its buyer and seller see it; nobody else does, not even another buyer of the listing.
    assert_eq!(payment(pool, &paid, seller).await, Some(refunded));
    assert_eq!(payment(pool, &late, seller).await, Some(paid_out));
    assert_eq!(payment(pool, &paid, UserId::new()).await, None);
    assert_eq!(payment(pool, &paid, declined.buyer()).await, None);
    assert_eq!(payment(pool, &declined, paid.buyer()).await, None);
}
