//! The catalog, browsed and searched: `GET /listings` (the catalog view; how a search
//! finds its matches is the projections' `views/catalog/search.rs`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use carrot_domain::listing::ListingStatus as DomainStatus;
use carrot_projections::views::catalog::search::RankedCursor;
use carrot_projections::views::catalog::{self, CatalogQuery, ListingView, Search, CATALOG};
use carrot_projections::views::page::{Page, PageCursor};
use serde::Deserialize;

use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{await_views, ConsistencyToken, Freshness, PageParams, Paging};
use crate::openapi::vocabulary::{ListingStatus, Unauthenticated};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct BrowseParams {
    /// Only listings in this status (default `available`).
    #[param(value_type = Option<ListingStatus>)]
    status: Option<String>,
    /// Text to look for in titles and descriptions, case-insensitively (at most 200
    /// characters).
    #[param(max_length = 200)]
    q: Option<String>,
    /// `newest` (the default): newest first. `relevance` (needs `q`): the 200 newest
    /// matches, those holding `q` in the title first (as a whole word before within a
    /// word), then in the description, newest first among equals.
    #[param(inline)]
    sort: Option<CatalogSort>,
}

/// The orders the catalog is listed in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum CatalogSort {
    #[default]
    Newest,
    Relevance,
}

impl BrowseParams {
    /// The catalog query asked for, with every mistake in the filter and the page at once.
    fn into_query(self, page: &PageParams) -> Result<CatalogQuery, ApiError> {
        let mut errors = Vec::new();
        let available = DomainStatus::Available.name();
        let status = self.status.unwrap_or_else(|| available.into());
        let statuses = DomainStatus::SHOWN.map(|s| s.name());
        if !statuses.contains(&status.as_str()) {
            errors.push(FieldError::new(
                "status",
                format!("must be one of {}", statuses.join(", ")),
            ));
        }
        let text = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > 200) {
            errors.push(FieldError::new("q", "must be at most 200 characters"));
        }
        // PostgreSQL text cannot hold a NUL byte: refused here, not a 500 there.
        if text.as_ref().is_some_and(|q| q.contains('\0')) {
            errors.push(FieldError::new("q", "must not contain NUL characters"));
        }
        let relevance = self.sort.unwrap_or_default() == CatalogSort::Relevance;
        let (search, limit) = match (relevance, text) {
            (true, None) => {
                errors.push(FieldError::new("sort", "relevance needs q"));
                (
                    Search::Newest {
                        text: None,
                        after: None,
                    },
                    0,
                )
            }
            (true, Some(text)) => {
                let Paging { cursor, limit } = page.parse::<RankedCursor>(&mut errors);
                (
                    Search::Relevance {
                        text,
                        after: cursor,
                    },
                    limit,
                )
            }
            (false, text) => {
                let Paging { cursor, limit } = page.parse::<PageCursor>(&mut errors);
                (
                    Search::Newest {
                        text,
                        after: cursor,
                    },
                    limit,
                )
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(CatalogQuery {
            status,
            search,
            limit,
        })
    }
}

/// The catalog, newest first or by relevance to a search.
#[utoipa::path(
    get,
    path = "/listings",
    tag = "listings",
    operation_id = "browse_listings",
    params(BrowseParams, PageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of listings, newest first (or by relevance, \
         `sort=relevance`).", body = Page<ListingView>),
        (status = 401, response = Unauthenticated),
        (status = 422, description = "`validation_failed` (with `errors`: status, q, sort, \
         cursor, limit, query, or a malformed `X-Consistency-Token`).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all)]
pub(super) async fn browse(
    State(state): State<AppState>,
    _user: crate::extract::AuthUser,
    token: ConsistencyToken,
    filter: Result<Query<BrowseParams>, QueryRejection>,
    page: Result<Query<PageParams>, QueryRejection>,
) -> Result<(Freshness, axum::Json<Page<ListingView>>), ApiError> {
    let refused = |e: QueryRejection| ApiError::invalid("query", e.body_text());
    let (Query(filter), Query(page)) = (filter.map_err(refused)?, page.map_err(refused)?);
    let query = filter.into_query(&page)?;
    let (freshness, views) = await_views(&state, &[CATALOG], token).await?;
    Ok((freshness, axum::Json(catalog::list(views, &query).await?)))
}
