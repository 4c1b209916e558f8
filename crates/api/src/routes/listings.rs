//! Listings: register one (a command), read one or browse the catalog (the catalog view).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use carrot_domain::listing::fields::{Category, Description, InvalidField, ListingTitle};
use carrot_domain::listing::{Listing, ListingCommand};
use carrot_domain::{ListingId, Price};
use carrot_projections::catalog::{self, CatalogCursor, CatalogQuery, ListingView, CATALOG};
use carrot_projections::Checkpoint;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ApiError, FieldError};
use crate::extract::{CommandContext, ConsistencyToken, Json, PathId};
use crate::routes::{await_views, Freshness};
use crate::state::AppState;

/// The listing routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/listings", get(browse).post(register))
        .route("/listings/{id}", get(read).patch(edit).delete(withdraw))
}

#[derive(Deserialize)]
struct RegisterBody {
    title: String,
    description: String,
    price: i64,
    category: Option<String>,
}

impl RegisterBody {
    fn into_command(
        self,
        listing_id: ListingId,
        ctx: &CommandContext,
    ) -> Result<ListingCommand, ApiError> {
        let mut errors = Vec::new();
        let title = field(&mut errors, ListingTitle::parse(&self.title));
        let description = field(&mut errors, Description::parse(&self.description));
        let category = match self.category.as_deref() {
            None => Some(None),
            Some(raw) => field(&mut errors, Category::parse(raw)).map(Some),
        };
        let price = Price::parse(self.price)
            .map_err(|e| errors.push(FieldError::new("price", e.to_string())))
            .ok();
        match (title, description, category, price) {
            (Some(title), Some(description), Some(category), Some(price)) if errors.is_empty() => {
                Ok(ListingCommand::RegisterListing {
                    listing_id,
                    seller_id: ctx.user.user_id,
                    title,
                    description,
                    price,
                    category,
                })
            }
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Keeps a parsed field, or records why it was refused.
fn field<T>(errors: &mut Vec<FieldError>, parsed: Result<T, InvalidField>) -> Option<T> {
    parsed
        .map_err(|e| errors.push(FieldError::new(e.field, e.rule)))
        .ok()
}

#[derive(Serialize)]
struct Registered {
    listing_id: ListingId,
    status: &'static str,
    consistency_token: String,
}

#[tracing::instrument(skip_all, fields(seller = %ctx.user.user_id))]
async fn register(
    State(state): State<AppState>,
    ctx: CommandContext,
    Json(body): Json<RegisterBody>,
) -> Result<impl IntoResponse, ApiError> {
    let listing_id = ListingId::from_uuid(ctx.new_id("listing"));
    let command = body.into_command(listing_id, &ctx)?;
    let token = state
        .write
        .execute::<Listing>(&listing_id.to_string(), command, ctx.metadata(None))
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/listings/{listing_id}"))],
        axum::Json(Registered {
            listing_id,
            status: "available",
            consistency_token: token.to_string(),
        }),
    ))
}

#[tracing::instrument(skip_all, fields(listing = %id))]
async fn read(
    State(state): State<AppState>,
    _user: crate::extract::AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<ListingId>,
) -> Result<(Freshness, axum::Json<ListingView>), ApiError> {
    let freshness = await_views(&state, &[CATALOG], token).await?;
    let listing = catalog::listing_by_id(&state.pool, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((freshness, axum::Json(listing)))
}

#[derive(Deserialize)]
struct BrowseParams {
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

const STATUSES: [&str; 4] = ["available", "reserved", "sold", "withdrawn"];

impl BrowseParams {
    fn into_query(self) -> Result<CatalogQuery, ApiError> {
        let mut errors = Vec::new();
        let status = self.status.unwrap_or_else(|| "available".into());
        if !STATUSES.contains(&status.as_str()) {
            errors.push(FieldError::new(
                "status",
                format!("must be one of {}", STATUSES.join(", ")),
            ));
        }
        let limit = match self.limit.as_deref().map(str::parse::<i64>) {
            None => 20,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => {
                errors.push(FieldError::new(
                    "limit",
                    "must be a whole number from 1 to 100",
                ));
                20
            }
        };
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(raw) => {
                let cursor = CatalogCursor::decode(raw);
                if cursor.is_none() {
                    errors.push(FieldError::new(
                        "cursor",
                        "is not a cursor this endpoint returned",
                    ));
                }
                cursor
            }
        };
        let text = self
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty());
        if text.as_ref().is_some_and(|q| q.chars().count() > 200) {
            errors.push(FieldError::new("q", "must be at most 200 characters"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(CatalogQuery {
            status,
            text,
            after,
            limit,
        })
    }
}

#[tracing::instrument(skip_all)]
async fn browse(
    State(state): State<AppState>,
    _user: crate::extract::AuthUser,
    token: ConsistencyToken,
    params: Result<Query<BrowseParams>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let query = params.into_query()?;
    let freshness = await_views(&state, &[CATALOG], token).await?;
    let (items, next) = catalog::list(&state.pool, &query).await?;
    Ok((
        freshness,
        axum::Json(json!({
            "items": items,
            "next_cursor": next.map(|c| c.encode()),
        })),
    ))
}

#[derive(Deserialize)]
struct EditBody {
    title: Option<String>,
    description: Option<String>,
    price: Option<i64>,
}

impl EditBody {
    fn into_command(self, ctx: &CommandContext) -> Result<ListingCommand, ApiError> {
        if self.title.is_none() && self.description.is_none() && self.price.is_none() {
            return Err(ApiError::invalid(
                "body",
                "give at least one of title, description, price",
            ));
        }
        let mut errors = Vec::new();
        let title = self
            .title
            .map(|t| field(&mut errors, ListingTitle::parse(&t)));
        let description = self
            .description
            .map(|d| field(&mut errors, Description::parse(&d)));
        let price = self.price.map(|p| {
            Price::parse(p)
                .map_err(|e| errors.push(FieldError::new("price", e.to_string())))
                .ok()
        });
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(ListingCommand::EditListing {
            actor: ctx.user.user_id,
            title: title.flatten(),
            description: description.flatten(),
            price: price.flatten(),
        })
    }
}

#[derive(Serialize)]
struct Changed {
    listing_id: ListingId,
    status: &'static str,
    consistency_token: String,
}

async fn run(
    state: &AppState,
    ctx: &CommandContext,
    id: ListingId,
    command: ListingCommand,
) -> Result<Checkpoint, ApiError> {
    Ok(state
        .write
        .execute::<Listing>(&id.to_string(), command, ctx.metadata(None))
        .await?)
}

#[tracing::instrument(skip_all, fields(listing = %id))]
async fn edit(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<ListingId>,
    Json(body): Json<EditBody>,
) -> Result<axum::Json<Changed>, ApiError> {
    let command = body.into_command(&ctx)?;
    let token = run(&state, &ctx, id, command).await?;
    Ok(axum::Json(Changed {
        listing_id: id,
        status: "available",
        consistency_token: token.to_string(),
    }))
}

#[tracing::instrument(skip_all, fields(listing = %id))]
async fn withdraw(
    State(state): State<AppState>,
    ctx: CommandContext,
    PathId(id): PathId<ListingId>,
) -> Result<axum::Json<Changed>, ApiError> {
    let command = ListingCommand::WithdrawListing {
        actor: ctx.user.user_id,
    };
    let token = run(&state, &ctx, id, command).await?;
    Ok(axum::Json(Changed {
        listing_id: id,
        status: "withdrawn",
        consistency_token: token.to_string(),
    }))
}
