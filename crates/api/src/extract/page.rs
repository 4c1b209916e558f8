//! The page a list is asked for, `?cursor=&limit=`, parsed the same way for every list: a
//! limit from 1 to 100 (20 when left out) and a cursor only the list itself can have
//! written (an empty one is the first page). Each list names its cursor's type.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use carrot_projections::views::page::PageCursor;
use carrot_projections::Checkpoint;
use serde::Deserialize;

use crate::error::{ApiError, FieldError};

/// `?cursor=&limit=` of a list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// How many (1 to 100, default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
}

/// What a list's cursor is, read back from the text a page gave out.
pub trait Cursor: Sized {
    /// The cursor `raw` names, or `None` if no page of this list can have written it.
    fn parse(raw: &str) -> Option<Self>;

    /// What the 422 says of a cursor that does not parse.
    const REFUSAL: &'static str = "is not a cursor this endpoint returned";
}

/// The newest-first lists' cursor (the catalog, MyPage).
impl Cursor for PageCursor {
    fn parse(raw: &str) -> Option<Self> {
        PageCursor::decode(raw)
    }
}

/// The catalog's cursor when it is ordered by relevance (`sort=relevance`).
impl Cursor for carrot_projections::views::catalog::search::RankedCursor {
    fn parse(raw: &str) -> Option<Self> {
        Self::decode(raw)
    }
}

/// The log's lists' cursor (a subscriber's held events): a position in the log.
impl Cursor for Checkpoint {
    fn parse(raw: &str) -> Option<Self> {
        raw.parse().ok()
    }
}

/// The page asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging<C> {
    /// Where the previous page ended; `None` for the first page.
    pub cursor: Option<C>,
    /// How many items.
    pub limit: i64,
}

/// The default and the bounds of `?limit=`.
const LIMITS: (i64, std::ops::RangeInclusive<i64>) = (20, 1..=100);

/// `?limit=`, its mistake added to `errors` (the default stands in for it).
pub fn limit(raw: Option<&str>, errors: &mut Vec<FieldError>) -> i64 {
    let (default, range) = LIMITS;
    match raw.map(str::parse::<i64>) {
        None => default,
        Some(Ok(n)) if range.contains(&n) => n,
        Some(_) => {
            errors.push(FieldError::new(
                "limit",
                "must be a whole number from 1 to 100",
            ));
            default
        }
    }
}

impl PageParams {
    /// The page asked for, each mistake added to `errors`.
    pub fn parse<C: Cursor>(&self, errors: &mut Vec<FieldError>) -> Paging<C> {
        let limit = limit(self.limit.as_deref(), errors);
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => {
                let cursor = C::parse(raw);
                if cursor.is_none() {
                    errors.push(FieldError::new("cursor", C::REFUSAL));
                }
                cursor
            }
        };
        Paging { cursor, limit }
    }
}

/// Fails on anything `?cursor=&limit=` cannot be, with 422 and every mistake.
pub fn refuse(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

impl<C: Cursor, S: Send + Sync> FromRequestParts<S> for Paging<C> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(params) = Query::<PageParams>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid("query", e.body_text()))?;
        let mut errors = Vec::new();
        let paging = params.parse(&mut errors);
        refuse(errors)?;
        Ok(paging)
    }
}
