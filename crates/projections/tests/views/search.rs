//! Catalog search against a real catalog: every plan (the walk alone, the walk then the
//! keys' index) finds exactly what a case-insensitive substring test finds, page by page,
//! in Korean and English; relevance ranks the newest matches; edits change the keys.

use carrot_domain::listing::fields::{Category, Description, ListingTitle};
use carrot_domain::listing::ListingEvent;
use carrot_domain::{ListingId, Price, UserId};
use carrot_projections::postgres::Db;
use carrot_projections::testing::test_database;
use carrot_projections::views::catalog::search::{rank, Plan};
use carrot_projections::views::catalog::{self, CatalogProjection, CatalogQuery, ListingView};
use carrot_projections::views::catalog::{search::RankedCursor, Search};
use carrot_projections::views::page::PageCursor;

use super::support::*;

const TITLES: [&str; 6] = [
    "Trek 산악자전거",
    "자전거 팝니다",
    "Desk lamp",
    "IKEA 의자",
    "Bike pump",
    "책상과 의자 세트",
];
const DESCRIPTIONS: [&str; 4] = [
    "거의 새것, 직거래만",
    "Pick-up near 역삼역\nweekends only",
    "Barely used BIKE parts",
    "100% 정품 (50_50 split)",
];

fn listing_event(id: ListingId, seller: UserId, title: &str, text: &str, minute: i64) -> Event {
    Event::Listing(ListingEvent::ListingRegistered {
        listing_id: id,
        seller_id: seller,
        title: ListingTitle::parse(title).expect("a title"),
        description: Description::parse(text).expect("a text"),
        price: Price::parse(10_000).expect("a price"),
        category: Some(Category::parse("home").expect("a category")),
        registered_at: at(minute),
    })
}

/// Every page of a newest-first search, walked by its cursors.
async fn all_pages(pool: &Db, status: &str, q: &str, plan: Plan) -> Vec<ListingView> {
    let (mut found, mut after) = (Vec::new(), None::<PageCursor>);
    loop {
        let query = CatalogQuery {
            status: status.into(),
            search: Search::Newest {
                text: Some(q.into()),
                after,
            },
            limit: 4,
        };
        let page = catalog::list_with(pool, &query, plan)
            .await
            .expect("a page");
        found.extend(page.items);
        match page.next_cursor {
            Some(next) => after = Some(PageCursor::decode(&next).expect("our cursor")),
            None => return found,
        }
    }
}

async fn every_listing(pool: &Db, status: &str) -> Vec<ListingView> {
    let query = CatalogQuery {
        status: status.into(),
        search: Search::Newest {
            text: None,
            after: None,
        },
        limit: 100,
    };
    catalog::list(pool, &query)
        .await
        .expect("the catalog")
        .items
}

fn holds(listing: &ListingView, q: &str) -> bool {
    let q = q.to_lowercase();
    listing.title.to_lowercase().contains(&q) || listing.description.to_lowercase().contains(&q)
}

#[tokio::test]
async fn every_plan_finds_what_a_substring_test_finds_in_korean_and_english() {
    let db = test_database().await;
    let mut log = EventLog::new(&db.pool);
    let seller = UserId::new();
    let mut ids = Vec::new();
    for n in 0..48 {
        let id = ListingId::new();
        let (title, text) = (
            TITLES[n % TITLES.len()],
            DESCRIPTIONS[n % DESCRIPTIONS.len()],
        );
        // One rare word, in the oldest listing only, and once in a withdrawn one.
        let title = if n == 0 || n == 30 {
            format!("{title} from Zanzibar")
        } else {
            title.to_owned()
        };
        log.append(
            listing_event(id, seller, &title, text, n as i64),
            user(seller),
        )
        .await;
        ids.push(id);
    }
    log.append(withdrawn(ids[30], 60), user(seller)).await;
    catch_up(&db.pool, CatalogProjection).await;

    let plans = [
        Plan::DEFAULT,
        Plan {
            walk: 3,
            ..Plan::DEFAULT
        },
        Plan {
            walk: 1,
            ..Plan::DEFAULT
        },
    ];
    let queries = [
        "zanzibar",
        "ZANZIBAR",
        "자전거",
        "산악자전거",
        "의자",
        "bike",
        "e",
        "tv",
        "역삼역\nweek",
        "k 산",
        "100%",
        "50_50",
        "_",
        "nothing like this",
        "직거래",
    ];
    for status in ["available", "withdrawn"] {
        let everything = every_listing(&db.pool, status).await;
        for q in queries {
            let expected: Vec<_> = everything.iter().filter(|l| holds(l, q)).cloned().collect();
            for plan in plans {
                let found = all_pages(&db.pool, status, q, plan).await;
                assert_eq!(found, expected, "{status} {q:?} walking {}", plan.walk);
            }
        }
    }
    let rare = all_pages(&db.pool, "available", "zanzibar", plans[2]).await;
    assert_eq!(rare.len(), 1, "the withdrawn one is not available");

    // An edit changes what a listing is found by.
    log.append(
        edited(ids[5], "Vintage radio", "Works", 9_000, 70),
        user(seller),
    )
    .await;
    catch_up(&db.pool, CatalogProjection).await;
    let radio = all_pages(&db.pool, "available", "RADIO", plans[2]).await;
    assert_eq!(
        radio.iter().map(|l| l.listing_id).collect::<Vec<_>>(),
        vec![ids[5].as_uuid()]
    );
    let lamps = all_pages(&db.pool, "available", "desk lamp", plans[2]).await;
    assert!(lamps.iter().all(|l| l.listing_id != ids[5].as_uuid()));
}

#[tokio::test]
async fn relevance_ranks_the_newest_matches_title_first_and_pages_through_them() {
    let db = test_database().await;
    let mut log = EventLog::new(&db.pool);
    let seller = UserId::new();
    for n in 0..30 {
        let (title, text) = (
            TITLES[n % TITLES.len()],
            DESCRIPTIONS[n % DESCRIPTIONS.len()],
        );
        let event = listing_event(ListingId::new(), seller, title, text, n as i64);
        log.append(event, user(seller)).await;
    }
    catch_up(&db.pool, CatalogProjection).await;
    let plan = Plan {
        walk: 2,
        rank_walk: 5,
        ranked: 12,
    };
    let q = "bike";
    let mut window: Vec<ListingView> = every_listing(&db.pool, "available")
        .await
        .into_iter()
        .filter(|l| holds(l, q))
        .take(12)
        .collect();
    let (mut found, mut after) = (Vec::new(), None::<RankedCursor>);
    loop {
        let query = CatalogQuery {
            status: "available".into(),
            search: Search::Relevance {
                text: q.into(),
                after,
            },
            limit: 5,
        };
        let page = catalog::list_with(&db.pool, &query, plan)
            .await
            .expect("a page");
        found.extend(page.items);
        match page.next_cursor {
            Some(next) => after = Some(RankedCursor::decode(&next).expect("our cursor")),
            None => break,
        }
    }
    // The window's listings, each once, most relevant first, newest first among equals.
    window.sort_by_key(|l| std::cmp::Reverse((rank(l, q), l.created_at, l.listing_id)));
    assert_eq!(found, window);
    let ranks: Vec<i16> = found.iter().map(|l| rank(l, q)).collect();
    assert!(ranks.first() > ranks.last(), "titles first: {ranks:?}");
    // "Bike pump": a whole word in the title (with "BIKE parts" in the description, 7);
    // a description's "BIKE parts" alone, 1.
    assert_eq!(rank(&found[0], q), 7);
    assert_eq!(ranks.last(), Some(&1));
}
