//! Catalog search: the keys a listing is found by, the two plans that find a page of
//! matches, and the order `sort=relevance` ranks them in.
//!
//! `q` matches a listing whose title or description holds it, case folded (`ILIKE`).
//! PostgreSQL's own splitters (pg_trgm, text search) follow the cluster's locale, and under
//! the C locale Hangul is no word character, so the keys are made here, in Rust: every run
//! of three characters of the case-folded title and description, and every pair of
//! non-ASCII characters (two Hangul syllables are a whole word; two Latin letters select
//! nothing). A listing that holds `q` holds every key of `q`, so keys only narrow; `ILIKE`
//! still decides what matches.
//!
//! Neither plan is flat alone: the newest-first walk stops at a page for a common word but
//! reads the whole catalog for a word nobody wrote, and the keys' GIN bitmap is small for a
//! rare word but fetches every match of a common one. So a search walks a bounded number of
//! the newest listings first and asks the index only for what lies older, when the walk
//! left the page short (docs/PERFORMANCE.md, "Catalog search").

use std::cmp::Reverse;
use std::collections::BTreeSet;

use super::{ListingView, VIEW_COLUMNS};
use crate::postgres::Db;
use crate::views::page::{Page, PageCursor};

/// The keys of a listing's text, sorted, each once (the `search_keys` column).
pub fn keys(title: &str, description: &str) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for text in [title, description] {
        let chars = fold(text);
        for gram in chars.windows(3) {
            keys.insert(gram.iter().collect::<String>());
        }
        for pair in chars.windows(2).filter(|p| p.iter().all(|c| !c.is_ascii())) {
            keys.insert(pair.iter().collect::<String>());
        }
    }
    keys.into_iter().collect()
}

/// Keys every listing holding `q` has, enough to cover `q`; empty when `q` is too short to have any (one
/// character, or two where one is ASCII): then only the walk can find it.
pub(crate) fn query_keys(q: &str) -> Vec<String> {
    let chars = fold(q);
    let keys: BTreeSet<String> = match chars.len() {
        0 | 1 => BTreeSet::new(),
        2 if chars.iter().any(char::is_ascii) => BTreeSet::new(),
        2 => BTreeSet::from([chars.iter().collect()]),
        // Runs that cover `q` without overlap (and the last one): any subset of a text's
        // keys only narrows, and each key more is a posting list more for the index to read.
        n => (0..n - 2)
            .filter(|&at| at % 3 == 0 || at == n - 3)
            .map(|at| chars[at..at + 3].iter().collect())
            .collect(),
    };
    keys.into_iter().collect()
}

/// Lower case, one character at a time. Per character, not `str::to_lowercase`: that one
/// lowers a final sigma by its context, and a key must not depend on what follows it.
/// Every character `ILIKE` folds together (ASCII under the C locale) folds together here.
fn fold(text: &str) -> Vec<char> {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// How relevant a listing is to `q`, higher first: the title holding it counts most, as a
/// whole word more, then the description holding it.
pub fn rank(listing: &ListingView, q: &str) -> i16 {
    rank_folded(listing, &fold(q).into_iter().collect::<String>())
}

/// [`rank`] for a query already folded (once per page, not once per listing).
fn rank_folded(listing: &ListingView, q: &str) -> i16 {
    let title: String = fold(&listing.title).into_iter().collect();
    let description: String = fold(&listing.description).into_iter().collect();
    let in_title = title.contains(q);
    let word = title.match_indices(q).any(|(at, _)| {
        let before = title[..at].chars().next_back();
        let after = title[at + q.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    });
    4 * i16::from(in_title) + 2 * i16::from(word) + i16::from(description.contains(q))
}

/// Where a page of a relevance-ordered search ends: the last item's rank and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankedCursor {
    rank: i16,
    at: PageCursor,
}

impl RankedCursor {
    /// The cursor's text form, opaque to clients (`r<rank>_<newest-first cursor>`).
    pub fn encode(&self) -> String {
        format!("r{}_{}", self.rank, self.at.encode())
    }

    /// Parses what [`RankedCursor::encode`] wrote; `None` for anything else.
    pub fn decode(raw: &str) -> Option<Self> {
        let (rank, at) = raw.strip_prefix('r')?.split_once('_')?;
        let rank: i16 = rank.parse().ok().filter(|r| (0..=7).contains(r))?;
        Some(RankedCursor {
            rank,
            at: PageCursor::decode(at)?,
        })
    }

    /// Whether `(rank, listing)` comes after this cursor in relevance order.
    fn precedes(&self, rank: i16, listing: &ListingView) -> bool {
        let at = (listing.created_at, listing.listing_id);
        rank < self.rank || (rank == self.rank && at < (self.at.created_at, self.at.id))
    }
}

/// How many of the newest listings a search reads before it asks the index, and how many
/// matches a relevance order ranks.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Listings walked newest first for a page before the index is asked.
    pub walk: i64,
    /// Listings walked newest first for the relevance window.
    pub rank_walk: i64,
    /// The newest matches a relevance order ranks (its pages are cut from these).
    pub ranked: i64,
}

impl Plan {
    /// The longest second walk, for a word the first walk met at least twice.
    const WALKED_AT_MOST: i64 = 20_000;

    /// Measured at 1,000,000 listings (docs/PERFORMANCE.md, "Catalog search"): the walk
    /// is what every search that ends in the index pays first, so it is short; a word in
    /// more than 1 listing in 25 fills a page of 20 within it.
    pub const DEFAULT: Plan = Plan {
        walk: 500,
        rank_walk: 4_000,
        ranked: 200,
    };
}

/// The newest `want` listings in `status`, older than `after`, holding `text` (escaped for
/// `LIKE` as `pattern`).
pub(crate) async fn newest_matches(
    pool: &Db,
    status: &str,
    text: &str,
    pattern: &str,
    after: Option<PageCursor>,
    want: i64,
    walk: i64,
) -> Result<Vec<ListingView>, sqlx::Error> {
    let keys = query_keys(text);
    // Only available listings are in the keys' index (what buyers search).
    if status != "available" || keys.is_empty() {
        return walk_newest(pool, status, pattern, after, (0, None), want).await;
    }
    let mut found = walk_newest(pool, status, pattern, after, (0, Some(walk)), want).await?;
    let mut walked = walk;
    let mut short = want - i64::try_from(found.len()).unwrap_or(want);
    // A word the walk met more than once is common enough that walking on, as far as its
    // frequency says the page needs, reads fewer rows than the index would fetch.
    if short > 0 && found.len() >= 2 {
        let density = found.len() as f64 / walk as f64;
        let more = ((short as f64 / density) * 1.5).min(Plan::WALKED_AT_MOST as f64) as i64;
        let next = walk_newest(pool, status, pattern, after, (walked, Some(more)), short).await?;
        found.extend(next);
        walked += more;
        short = want - i64::try_from(found.len()).unwrap_or(want);
    }
    if short <= 0 {
        return Ok(found);
    }
    // The walk's last row bounds what the index is asked for; none: the walk read it all.
    let older: Vec<ListingView> = sqlx::query_as(&format!(
        "WITH boundary AS MATERIALIZED (
              SELECT created_at, listing_id FROM catalog.listings
               WHERE status = 'available'
                 AND ($2::timestamptz IS NULL OR (created_at, listing_id) < ($2, $3))
               ORDER BY created_at DESC, listing_id DESC
              OFFSET $4 - 1 LIMIT 1),
              keyed AS MATERIALIZED (
              SELECT {VIEW_COLUMNS} FROM catalog.listings
               WHERE status = 'available' AND search_keys @> $5::text[])
         SELECT k.* FROM keyed k, boundary b
          WHERE (k.created_at, k.listing_id) < (b.created_at, b.listing_id)
            AND (k.title ILIKE $1 OR k.description ILIKE $1)
          ORDER BY k.created_at DESC, k.listing_id DESC
          LIMIT $6"
    ))
    .bind(pattern)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(walked)
    .bind(&keys)
    .bind(short)
    .fetch_all(pool)
    .await?;
    found.extend(older);
    Ok(found)
}

/// Up to `want` listings in `status` holding `pattern`, among the `rows` newest after
/// `after` once `skip` are passed (`None`: all of them), newest first.
async fn walk_newest(
    pool: &Db,
    status: &str,
    pattern: &str,
    after: Option<PageCursor>,
    (skip, rows): (i64, Option<i64>),
    want: i64,
) -> Result<Vec<ListingView>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {VIEW_COLUMNS} FROM (
             SELECT {VIEW_COLUMNS} FROM catalog.listings
              WHERE status = $1
                AND ($3::timestamptz IS NULL OR (created_at, listing_id) < ($3, $4))
              ORDER BY created_at DESC, listing_id DESC
             OFFSET $5 LIMIT $6) walked
          WHERE title ILIKE $2 OR description ILIKE $2
          ORDER BY created_at DESC, listing_id DESC
          LIMIT $7"
    ))
    .bind(status)
    .bind(pattern)
    .bind(after.map(|c| c.created_at))
    .bind(after.map(|c| c.id))
    .bind(skip)
    .bind(rows)
    .bind(want)
    .fetch_all(pool)
    .await
}

/// One page of the newest [`Plan::ranked`] matches of `text`, most relevant first (newest
/// first among equals), after `after`.
pub(crate) async fn ranked_page(
    pool: &Db,
    status: &str,
    text: &str,
    pattern: &str,
    after: Option<RankedCursor>,
    limit: i64,
    plan: Plan,
) -> Result<Page<ListingView>, sqlx::Error> {
    let (want, walk) = (plan.ranked, plan.rank_walk);
    let matches = newest_matches(pool, status, text, pattern, None, want, walk).await?;
    let q: String = fold(text).into_iter().collect();
    let mut ranked: Vec<(i16, ListingView)> = matches
        .into_iter()
        .map(|l| (rank_folded(&l, &q), l))
        .filter(|(rank, l)| after.is_none_or(|c| c.precedes(*rank, l)))
        .collect();
    ranked.sort_by_key(|(rank, l)| Reverse((*rank, l.created_at, l.listing_id)));
    let page = Page::cut(ranked, limit, |(rank, l)| {
        let at = PageCursor::after(l.created_at, l.listing_id);
        RankedCursor { rank: *rank, at }.encode()
    });
    Ok(Page {
        items: page.items.into_iter().map(|(_, l)| l).collect(),
        next_cursor: page.next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holds_all(listing: &[String], query: &[String]) -> bool {
        query.iter().all(|k| listing.binary_search(k).is_ok())
    }

    #[test]
    fn a_listing_holds_every_key_of_any_text_it_holds_in_any_case() {
        let title = "Trek 산악자전거 MTB, ΑΣ";
        let description = "거의 새것. Pick-up near 역삼역\nONLY";
        let listing = keys(title, description);
        for q in [
            "trek",
            "TREK",
            "자전거",
            "산악",
            "악자전",
            "mtb,",
            "σ",
            "ασ",
            "새것",
            "pick-up",
            "역삼역\nonly",
            "k 산",
        ] {
            assert!(holds_all(&listing, &query_keys(q)), "{q}");
        }
        assert!(!holds_all(&listing, &query_keys("zanzibar")));
        assert!(!holds_all(&listing, &query_keys("자동차")));
    }

    #[test]
    fn short_queries_have_no_keys_but_two_syllables_do() {
        assert!(query_keys("a").is_empty());
        assert!(query_keys("tv").is_empty());
        assert!(query_keys("가").is_empty());
        assert_eq!(query_keys("의자"), vec!["의자".to_owned()]);
        assert_eq!(query_keys("Bike"), vec!["bik".to_owned(), "ike".to_owned()]);
        let cover = query_keys("zanzibar");
        assert_eq!(cover, ["bar", "zan", "zib"].map(String::from));
    }

    #[test]
    fn a_ranked_cursor_round_trips_and_nothing_else_parses() {
        let at = PageCursor::decode("1700000000000000_0123456789abcdef0123456789abcdef");
        let cursor = RankedCursor {
            rank: 6,
            at: at.expect("a cursor"),
        };
        assert_eq!(RankedCursor::decode(&cursor.encode()), Some(cursor));
        for raw in ["r9_1_x", "6_1700000000000000_0123", "r-1_1_1", "r", ""] {
            assert_eq!(RankedCursor::decode(raw), None, "{raw}");
        }
    }
}
