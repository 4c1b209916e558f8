use carrot_domain::{ListingId, UserId};
use carrot_projections::testing::test_database;
use carrot_projections::views::catalog::{CatalogProjection, ListingView};

use super::support::*;

// ---------------------------------------------------------------------------------------
// 1. Catalog
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_catalog_shows_each_listing_as_its_latest_event_left_it() {
    let db = test_database().await;
    let mut log = EventLog::new(&db.pool);
    let seller = UserId::new();
    let lamp = ListingId::new();

    log.append(
        registered(lamp, seller, "Desk lamp", 15_000, 0),
        user(seller),
    )
    .await;
    catch_up(&db.pool, CatalogProjection).await;
    let fresh = ListingView {
        listing_id: lamp.as_uuid(),
        seller_id: seller.as_uuid(),
        title: "Desk lamp".into(),
        description: "Desk lamp, barely used".into(),
        price: 15_000,
        category: Some("home".into()),
        status: "available".into(),
        created_at: at(0),
        updated_at: at(0),
    };
    assert_eq!(listing(&db.pool, lamp).await, fresh);

    log.append(
        edited(lamp, "Brass desk lamp", "New bulb", 12_000, 1),
        user(seller),
    )
    .await;
    catch_up(&db.pool, CatalogProjection).await;
    let edited_view = ListingView {
        title: "Brass desk lamp".into(),
        description: "New bulb".into(),
        price: 12_000,
        updated_at: at(1),
        ..fresh
    };
    assert_eq!(listing(&db.pool, lamp).await, edited_view);

    let deal = Deal::new(lamp, seller, UserId::new(), 12_000);
    let steps = [
        (deal.reserved(2), "reserved", 2),
        (deal.released(3), "available", 3),
        (deal.reserved(4), "reserved", 4),
        (deal.sold(5), "sold", 5),
    ];
    for (event, status, minute) in steps {
        log.append(event, user(seller)).await;
        catch_up(&db.pool, CatalogProjection).await;
        let expected = ListingView {
            status: status.into(),
            updated_at: at(minute),
            ..edited_view.clone()
        };
        assert_eq!(listing(&db.pool, lamp).await, expected, "after {status}");
    }

    let chair = ListingId::new();
    log.append(registered(chair, seller, "Chair", 30_000, 6), user(seller))
        .await;
    log.append(withdrawn(chair, 7), user(seller)).await;
    catch_up(&db.pool, CatalogProjection).await;
    let chair_view = listing(&db.pool, chair).await;
    assert_eq!(
        (chair_view.status.as_str(), chair_view.created_at),
        ("withdrawn", at(6))
    );
    assert_eq!(chair_view.updated_at, at(7));
    assert_eq!(listing(&db.pool, lamp).await.status, "sold", "untouched");
}
