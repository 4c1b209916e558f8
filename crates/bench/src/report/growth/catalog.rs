//! A catalog of a given size for the search curve: available listings written straight into
//! the catalog view (with the keys the projection would compute), Korean and English titles
//! and descriptions in which each measured word has a known share.
//!
//! Straight into the view, not through the log: a million registrations through HTTP would
//! take the run's whole budget, and search reads the view alone. The rows are not in the
//! log, so a replay drops them (the report replays another database).

use carrot_projections::views::catalog::search;
use carrot_projections::views::fold;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::report::ReportError;

/// The searches measured, as `?` query strings, with what each stands for.
pub const SEARCHES: [(&str, &str); 7] = [
    ("rare word (2 in 100k)", "q=zanzibar"),
    ("uncommon word (1%)", "q=walnut"),
    ("common word (10%)", "q=bike"),
    ("Korean word (10%)", "q=%EC%9E%90%EC%A0%84%EA%B1%B0"),
    (
        "Korean word in descriptions (56%)",
        "q=%EC%A7%81%EA%B1%B0%EB%9E%98",
    ),
    ("a word in no listing", "q=xylophone"),
    ("common word by relevance", "q=bike&sort=relevance"),
];

const ITEMS: [&str; 10] = [
    "자전거",
    "의자",
    "책상",
    "노트북",
    "유모차",
    "bike",
    "chair",
    "desk",
    "laptop",
    "lamp",
];
const STATES: [&str; 8] = [
    "중고",
    "새것 같은",
    "Vintage",
    "Used",
    "급처",
    "Almost new",
    "Solid",
    "깨끗한",
];
const PHRASES: [&str; 6] = [
    "거의 사용하지 않았습니다. 직거래 선호합니다.",
    "Pick-up only, near the station.",
    "박스 포함, 생활기스 조금 있어요.",
    "Works perfectly, selling because I moved.",
    "네고 가능합니다. 문자 주세요.",
    "Original receipt included, 직거래 or delivery.",
];

/// Listing `n` of the seeded catalog: a title and a description.
fn text(n: usize) -> (String, String) {
    let title = if n % 50_000 == 1_234 {
        format!("Zanzibar spice box {n}")
    } else if n % 100 == 37 {
        format!("{} walnut {}", STATES[n % 8], ITEMS[(n / 8) % 10])
    } else {
        format!("{} {} {}", STATES[n % 8], ITEMS[(n / 8) % 10], n % 997)
    };
    let description = format!("{} {}", PHRASES[n % 6], PHRASES[(n / 6) % 6]);
    (title, description)
}

/// Tops the catalog up to `size` seeded listings (`from` already there), registered a
/// second apart and older than anything the run registered through the service.
pub async fn seed(pool: &PgPool, from: usize, size: usize) -> Result<(), ReportError> {
    let start = Utc::now() - Duration::days(400);
    let seller = Uuid::new_v4();
    let mut n = from;
    while n < size {
        let rows: Vec<Value> = (n..size.min(n + 2_000))
            .map(|n| {
                let (title, description) = text(n);
                let at = start + Duration::seconds(n as i64);
                json!({
                    "listing_id": Uuid::new_v4(), "seller_id": seller,
                    "search_keys": search::keys(&title, &description),
                    "title": title, "description": description, "price": 10_000,
                    "category": null, "status": "available",
                    "created_at": at, "updated_at": at, "version": 1,
                })
            })
            .collect();
        n += rows.len();
        // The way the projection writes its rows (by column name, from JSON).
        let mut connection = pool.acquire().await?;
        fold::upsert(&mut connection, "catalog.listings", None, &rows)
            .await
            .map_err(super::other)?;
    }
    sqlx::query("VACUUM ANALYZE catalog.listings")
        .execute(pool)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_measured_word_has_the_share_its_label_says() {
        let holds = |word: &str| {
            (0..100_000)
                .filter(|&n| {
                    let (t, d) = text(n);
                    (t + &d).to_lowercase().contains(word)
                })
                .count()
        };
        assert_eq!(holds("zanzibar"), 2);
        assert_eq!(holds("walnut"), 1_000);
        assert_eq!(holds("bike"), 10_000);
        assert_eq!(holds("자전거"), 10_000);
        assert_eq!(holds("직거래"), 55_553);
        assert_eq!(holds("xylophone"), 0);
    }
}
