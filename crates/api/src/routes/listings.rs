//! Listings: register one (a command), read one or browse the catalog (the catalog view).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use carrot_domain::listing::fields::{Category, Description, InvalidField, ListingTitle};
use carrot_domain::listing::ListingStatus as DomainStatus;
use carrot_domain::listing::{Listing, ListingCommand};
use carrot_domain::{ListingId, Price};
use carrot_projections::views::catalog::{self, ListingView, CATALOG};
use carrot_projections::Checkpoint;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError, Problem};
use crate::extract::{await_views, CommandContext, ConsistencyToken, Freshness, Json, PathId};
use crate::openapi::vocabulary::{
    IdempotencyHeader, ListingStatus, MalformedJson, NotFound, NotJson, PayloadTooLarge,
    Unauthenticated,
};
use crate::state::AppState;

/// The listing routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/listings", get(super::catalog::browse).post(register))
        .route("/listings/{id}", get(read).patch(edit).delete(withdraw))
}

/// A new listing.
#[derive(Deserialize, utoipa::ToSchema)]
struct RegisterBody {
    /// 1 to 100 characters (after trimming), no control characters but tab and line breaks.
    #[schema(min_length = 1, max_length = 100, example = "Desk lamp")]
    title: String,
    /// At most 5,000 characters (after trimming), no control characters but tab and line
    /// breaks.
    #[schema(max_length = 5000, example = "Warm light, barely used")]
    description: String,
    /// The asking price in KRW.
    #[schema(minimum = 1, maximum = 1_000_000_000, example = 15000)]
    price: i64,
    /// A category, if any: 1 to 50 characters (after trimming), no control characters but
    /// tab and line breaks.
    #[schema(min_length = 1, max_length = 50, example = "furniture")]
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

/// A registered listing.
#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    /// The new listing.
    #[schema(value_type = uuid::Uuid)]
    listing_id: ListingId,
    /// Always `available`.
    #[schema(value_type = ListingStatus)]
    status: &'static str,
    /// Send it back as `X-Consistency-Token` to read this write.
    #[schema(example = "746.1")]
    consistency_token: String,
}

/// Registers a listing (the caller sells it).
#[utoipa::path(
    post,
    path = "/listings",
    tag = "listings",
    operation_id = "register_listing",
    params(IdempotencyHeader),
    request_body = RegisterBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered.", body = Registered,
         headers(("Location" = String, description = "`/listings/{listing_id}`")),
         links(
             ("RequestListing" = (operation_id = "request_listing",
                 parameters(("id" = "$response.body#/listing_id")),
                 description = "Another user requests (and pays for) it.")),
             ("ReadListing" = (operation_id = "read_listing",
                 parameters(("id" = "$response.body#/listing_id"),
                     ("header.X-Consistency-Token" = "$response.body#/consistency_token")),
                 description = "Read it once the catalog has it.")),
             ("EditListing" = (operation_id = "edit_listing",
                 parameters(("id" = "$response.body#/listing_id")),
                 description = "Its seller edits it.")),
             ("WithdrawListing" = (operation_id = "withdraw_listing",
                 parameters(("id" = "$response.body#/listing_id")),
                 description = "Its seller withdraws it.")),
         )),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 409, description = "`idempotency_key_in_flight`; or \
         `listing_already_registered` (a retry with the `Idempotency-Key` of a call that \
         registered it but whose answer was lost).",
         body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: title, description, \
         price, category); or `idempotency_key_reused`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(seller = %ctx.user.user_id))]
async fn register(
    State(state): State<AppState>,
    ctx: CommandContext,
    Json(body): Json<RegisterBody>,
) -> Result<impl IntoResponse, ApiError> {
    let listing_id = ListingId::from_uuid(ctx.new_id("listing"));
    let command = body.into_command(listing_id, &ctx)?;
    let id = listing_id.to_string();
    let token = if ctx.ids_are_fresh() {
        state
            .write
            .create::<Listing>(&id, command, ctx.metadata(None))
            .await?
            .0
    } else {
        state
            .write
            .execute::<Listing>(&id, command, ctx.metadata(None))
            .await?
    };
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/listings/{listing_id}"))],
        axum::Json(Registered {
            listing_id,
            status: DomainStatus::Available.name(),
            consistency_token: token.to_string(),
        }),
    ))
}

/// One listing, from the catalog view.
#[utoipa::path(
    get,
    path = "/listings/{id}",
    tag = "listings",
    operation_id = "read_listing",
    params(("id" = uuid::Uuid, Path, description = "The listing.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The listing.", body = ListingView),
        (status = 401, response = Unauthenticated),
        (status = 404, response = NotFound),
        (status = 422, description = "`validation_failed`: a malformed `X-Consistency-Token`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(listing = %id))]
async fn read(
    State(state): State<AppState>,
    _user: crate::extract::AuthUser,
    token: ConsistencyToken,
    PathId(id): PathId<ListingId>,
) -> Result<(Freshness, axum::Json<ListingView>), ApiError> {
    let (freshness, views) = await_views(&state, &[CATALOG], token).await?;
    // Kept in memory when read at or past the token (listing_cache.rs).
    if let Some(listing) = state.listings.get(id.as_uuid(), token.0) {
        return Ok((freshness, axum::Json(listing)));
    }
    let ticket = state.listings.ticket();
    let (listing, at) = catalog::listing_as_of(views, id).await?;
    let listing = listing.ok_or(ApiError::NotFound)?;
    if let Some(at) = at {
        state.listings.keep(ticket, listing.clone(), at);
    }
    Ok((freshness, axum::Json(listing)))
}

/// What to change (at least one field).
#[derive(Deserialize, utoipa::ToSchema)]
struct EditBody {
    /// 1 to 100 characters (after trimming), no control characters but tab and line breaks.
    #[schema(min_length = 1, max_length = 100)]
    title: Option<String>,
    /// At most 5,000 characters (after trimming), no control characters but tab and line
    /// breaks.
    #[schema(max_length = 5000)]
    description: Option<String>,
    /// The asking price in KRW.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
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

/// A listing after an edit or a withdrawal.
#[derive(Serialize, utoipa::ToSchema)]
struct Changed {
    /// The listing.
    #[schema(value_type = uuid::Uuid)]
    listing_id: ListingId,
    /// `available` after an edit, `withdrawn` after a withdrawal.
    #[schema(value_type = ListingStatus)]
    status: &'static str,
    /// Send it back as `X-Consistency-Token` to read this write.
    #[schema(example = "747.1")]
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

/// Edits a listing: seller only, while it is available.
#[utoipa::path(
    patch,
    path = "/listings/{id}",
    tag = "listings",
    operation_id = "edit_listing",
    params(("id" = uuid::Uuid, Path, description = "The listing.")),
    request_body = EditBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Edited.", body = Changed,
         links(
             ("RequestListing" = (operation_id = "request_listing",
                 parameters(("id" = "$response.body#/listing_id")),
                 description = "Another user requests it at its new price.")),
         )),
        (status = 400, response = MalformedJson),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_listing`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`listing_not_available`: reserved, sold or withdrawn; or \
         `concurrent_update`.", body = Problem, content_type = "application/problem+json"),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = NotJson),
        (status = 422, description = "`validation_failed` (with `errors`: title, description, \
         price, or body when none is given).",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
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
        status: DomainStatus::Available.name(),
        consistency_token: token.to_string(),
    }))
}

/// Withdraws a listing: seller only, while it is available.
///
/// Its pending requests are rejected and refunded.
#[utoipa::path(
    delete,
    path = "/listings/{id}",
    tag = "listings",
    operation_id = "withdraw_listing",
    params(("id" = uuid::Uuid, Path, description = "The listing.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Withdrawn (`status: withdrawn`).", body = Changed),
        (status = 401, response = Unauthenticated),
        (status = 403, description = "`not_your_listing`.",
         body = Problem, content_type = "application/problem+json"),
        (status = 404, response = NotFound),
        (status = 409, description = "`listing_not_available`: reserved, sold or already \
         withdrawn; or `concurrent_update`.",
         body = Problem, content_type = "application/problem+json"),
    ),
)]
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
        status: DomainStatus::Withdrawn.name(),
        consistency_token: token.to_string(),
    }))
}
