//! The API's own description: the OpenAPI document at `GET /openapi.json`, and Swagger UI at
//! `/docs`. The UI's scripts and styles are built into the binary (`utoipa-swagger-ui`'s
//! `vendored` feature), so the page works with no internet access.
//!
//! Each handler carries its `#[utoipa::path]`; [`document`] collects them. The pieces they
//! share live here: the headers every read or command accepts, the problem responses common
//! to many endpoints, and the status enums. `docs/openapi.json` is this document as
//! `carrot openapi` prints it; a test keeps the two equal.
//!
//! The responses of the trade's commands carry OpenAPI `links` (register a listing -> request
//! it -> accept -> complete, or reject, cancel, withdraw), the ids a client passes on;
//! `.ci/fuzz.sh` follows them to drive whole trades.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::Problem;
use crate::routes::{
    admin, auth, health, listings, mypage, notifications, payments, quarantine, requests, transfers,
};
use crate::state::AppState;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";
/// Where Swagger UI is served.
pub const UI_PATH: &str = "/docs";
/// The name of the bearer security scheme, as operations refer to it.
pub const BEARER: &str = "bearer";

/// The OpenAPI document of every endpoint (title Carrot, this crate's version, no servers:
/// clients call the host that served it).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = CarrotApi::openapi();
    document.info.title = "Carrot".to_owned();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document.servers = None;
    document
}

/// `GET /openapi.json` and the Swagger UI under `/docs` (no authentication).
pub fn router() -> Router<AppState> {
    let document = Arc::new(document());
    // The validator badge would send the document to validator.swagger.io: off, offline.
    let config = Config::new([DOCUMENT_PATH]).validator_url("none");
    Router::new()
        .route(
            DOCUMENT_PATH,
            get(move || openapi_json(Arc::clone(&document))),
        )
        .merge(SwaggerUi::new(UI_PATH).config(config))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    operation_id = "openapi_document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of this API (what \
         `docs/openapi.json` holds).", body = serde_json::Value, content_type = "application/json"),
    ),
)]
async fn openapi_json(document: Arc<utoipa::openapi::OpenApi>) -> Json<utoipa::openapi::OpenApi> {
    Json(document.as_ref().clone())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Carrot",
        description = "The event-sourced backend of a second-hand marketplace. Commands answer \
            with a `consistency_token`; a read that sends it back as `X-Consistency-Token` waits \
            (up to 2 s) until the views have applied it. Every error is \
            `application/problem+json` with a stable `code`. Every POST accepts an \
            `Idempotency-Key`. Lists take `?limit=` (1-100, default 20) and `?cursor=` and \
            answer `{items, next_cursor}`."
    ),
    paths(
        auth::signup,
        auth::login,
        listings::browse,
        listings::register,
        listings::read,
        listings::edit,
        listings::withdraw,
        requests::request_listing,
        requests::read,
        requests::accept,
        requests::reject,
        requests::complete,
        requests::cancel,
        payments::read,
        mypage::summary,
        mypage::purchases,
        mypage::sales,
        notifications::list,
        notifications::stream_route,
        admin::subscriptions,
        admin::dead_letters,
        admin::retry,
        admin::mismatches,
        admin::resolve_mismatch,
        transfers::retry_transfer,
        transfers::settle_outside,
        quarantine::list,
        quarantine::retry,
        health::live,
        health::ready,
        crate::metrics::render,
        openapi_json,
    ),
    components(
        schemas(Problem, ListingStatus, RequestStatus, PaymentStatus),
        responses(
            MalformedJson,
            Unauthenticated,
            AdminOnly,
            NotFound,
            PayloadTooLarge,
            NotJson,
            RateLimited,
            InternalError
        ),
    ),
    modifiers(&Security, &Statuses, &TextFields, &OptionalBodies, &DocsPage, &InternalErrors),
    tags(
        (name = "accounts", description = "Sign up and log in: the bearer token every other call needs."),
        (name = "listings", description = "Register, edit and withdraw listings; browse the catalog."),
        (name = "requests", description = "Purchase requests: pay and request, then accept, reject, complete or cancel."),
        (name = "payments", description = "A payment as its buyer or seller sees it."),
        (name = "mypage", description = "The caller's summary, purchases and sales."),
        (name = "notifications", description = "The caller's notifications, as a list or a live stream."),
        (name = "admin", description = "For operators (admin role): subscribers and the saga's dead letters."),
        (name = "operations", description = "Probes and metrics (no authentication)."),
        (name = "docs", description = "This document and its interactive page (no authentication)."),
    ),
)]
struct CarrotApi;

/// The bearer JWT scheme (from `POST /auth/signup` or `POST /auth/login`).
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The `token` of `POST /auth/signup` or `POST /auth/login`.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The views keep their statuses as strings (the projections crate knows nothing of the
/// document); here those properties point at the enums of their values.
struct Statuses;

/// `(schema, property, enum schema)`: which string properties hold which statuses.
pub const STATUS_PROPERTIES: [(&str, &str, &str); 3] = [
    ("ListingView", "status", "ListingStatus"),
    ("PaymentView", "status", "PaymentStatus"),
    ("RequestView", "status", "RequestStatus"),
];

impl Modify for Statuses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, property, status) in STATUS_PROPERTIES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) {
                if let Some(slot) = object.properties.get_mut(property) {
                    *slot = RefOr::Ref(Ref::from_schema_name(status));
                }
            }
        }
    }
}

/// The free-text fields refuse control characters (the domain's text rule: after trimming,
/// none but tab, line feed and carriage return). Their schemas say so with a pattern, so that
/// generated clients and fuzzers send text the server takes.
struct TextFields;

/// `(schema, property)`: the free-text fields.
pub const TEXT_PROPERTIES: [(&str, &str); 6] = [
    ("RegisterBody", "title"),
    ("RegisterBody", "description"),
    ("RegisterBody", "category"),
    ("EditBody", "title"),
    ("EditBody", "description"),
    ("RejectBody", "reason"),
];

/// The control characters refused wherever they stand. Those that are also whitespace (tab,
/// line feed, vertical tab, form feed, carriage return, U+0085) are left out: trimming takes
/// them at either end, so whether one is refused depends on where it is, which a pattern that
/// is never stricter than the server does not try to say.
pub const NO_CONTROL_CHARACTERS: &str =
    "^[^\\u0000-\\u0008\\u000E-\\u001F\\u007F-\\u0084\\u0086-\\u009F]*$";

impl Modify for TextFields {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for (schema, property) in TEXT_PROPERTIES {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) {
                if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) {
                    field.pattern = Some(NO_CONTROL_CHARACTERS.to_owned());
                }
            }
        }
    }
}

/// A body that may be left out is written `Option<Body>`, which utoipa renders as "the
/// body, or `null`"; but `null` is refused like any non-object (422). The body is optional
/// (`required` is not set), never `null`.
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let Some(RefOr::T(body)) = operation.request_body.as_mut() else {
                    continue;
                };
                for content in body.content.values_mut() {
                    let RefOr::T(content) = content else {
                        continue;
                    };
                    let Some(RefOr::T(Schema::OneOf(one_of))) = content.schema.as_ref() else {
                        continue;
                    };
                    let is_null = |s: &RefOr<Schema>| {
                        matches!(s, RefOr::T(Schema::Object(o))
                            if o.schema_type == utoipa::openapi::schema::SchemaType::Type(
                                utoipa::openapi::Type::Null))
                    };
                    if let [body, null] = one_of.items.as_slice() {
                        if is_null(null) {
                            content.schema = Some(body.clone());
                        }
                    }
                }
            }
        }
    }
}

/// Swagger UI serves `/docs` rather than a handler of ours, so its operations are written out
/// here.
struct DocsPage;

impl Modify for DocsPage {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let redirect = ResponseBuilder::new()
            .description("Redirects to `/docs/`.")
            .header(
                "Location",
                HeaderBuilder::new()
                    .schema(Some(String::schema()))
                    .description(Some("`/docs/`"))
                    .build(),
            )
            .build();
        let operation = OperationBuilder::new()
            .tag("docs")
            .operation_id(Some("docs_redirect"))
            .summary(Some("The interactive documentation page: see `/docs/`."))
            .response("303", redirect)
            .build();
        openapi
            .paths
            .add_path_operation(UI_PATH, vec![HttpMethod::Get], operation);
        let page = ResponseBuilder::new()
            .description(
                "Swagger UI over this document. Its scripts and styles are served under `/docs/` \
                 by Carrot itself: the page loads nothing from another host.",
            )
            .content(
                "text/html",
                ContentBuilder::new().schema(Some(String::schema())).build(),
            )
            .build();
        let operation = OperationBuilder::new()
            .tag("docs")
            .operation_id(Some("docs_page"))
            .summary(Some("The interactive documentation page (Swagger UI)."))
            .response("200", page)
            .build();
        openapi
            .paths
            .add_path_operation(format!("{UI_PATH}/"), vec![HttpMethod::Get], operation);
    }
}

/// Any handler that reads or writes the database can fail on our side, and is rate limited:
/// each such operation may answer 500 and 429. (The probes, metrics and this documentation
/// answer whatever happens.)
struct InternalErrors;

impl Modify for InternalErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let tags = operation.tags.as_deref().unwrap_or_default();
                if tags.iter().any(|t| t == "operations" || t == "docs") {
                    continue;
                }
                for (status, response) in [("429", "RateLimited"), ("500", "InternalError")] {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(response)));
                }
            }
        }
    }
}

/// The operations of a path item that Carrot uses.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.patch,
        &mut item.delete,
    ]
    .into_iter()
    .flatten()
}

/// A listing's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ListingStatus {
    /// Open for purchase requests.
    Available,
    /// Held for an accepted request.
    Reserved,
    /// Its trade completed.
    Sold,
    /// Taken down by its seller.
    Withdrawn,
}

/// A purchase request's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Paid (held in escrow), waiting for the seller.
    Requested,
    /// The seller accepted; the listing is reserved for it.
    Accepted,
    /// The seller rejected it; the buyer is refunded.
    Rejected,
    /// The buyer received the item; the seller is paid out.
    Completed,
    /// Cancelled by the buyer (or the seller once accepted); the buyer is refunded.
    Cancelled,
    /// Nobody answered in time; the buyer is refunded.
    Expired,
    /// The payment was declined: nothing was held.
    PaymentFailed,
}

/// A payment's status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Held in escrow.
    Captured,
    /// Given back to the buyer.
    Refunded,
    /// Paid to the seller.
    PaidOut,
    /// Declined: nothing moved.
    Failed,
}

/// The `X-Consistency-Token` header a read accepts.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ConsistencyHeader {
    /// A `consistency_token` from a command's answer: the read waits (up to 2 s) until the
    /// views have applied that command, then answers with `X-Consistency: consistent`, or
    /// anyway with `X-Consistency: stale`. A malformed token is 422.
    #[param(rename = "X-Consistency-Token", example = "746.1")]
    pub consistency_token: Option<String>,
}

/// The `Idempotency-Key` header every POST accepts.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyHeader {
    /// 1 to 255 visible ASCII characters. The same key with the same body from the same
    /// caller answers the first final response again (with `Idempotent-Replayed: true`) for
    /// at least 24 h; with another body it is 422 `idempotency_key_reused`; while a call with
    /// it still runs it is 409 `idempotency_key_in_flight`. Transient refusals (429, 409
    /// `concurrent_update`, 5xx) are not kept: a retry with the key runs again. Ignored on
    /// `/auth/*`, whose answers hold a token and are never stored.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[\\t\\x20-\\x7E]*$"
    )]
    pub idempotency_key: Option<String>,
}

/// 400 `malformed_json`: the body is not well-formed JSON, or nests deeper than 32 levels.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct MalformedJson(pub Problem);

/// 401 `unauthenticated`: no `Authorization: Bearer` token, or an invalid or expired one.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthenticated(pub Problem);

/// 403 `forbidden`: this endpoint is for operators (admin role).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct AdminOnly(pub Problem);

/// 404 `not_found`: no such id, or one the caller may not see (ids are not leaked); a
/// malformed id is the same.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotFound(pub Problem);

/// 413 `payload_too_large`: the body is over 64 KiB.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct PayloadTooLarge(pub Problem);

/// 415 `unsupported_media_type`: a body not sent as `application/json`.
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct NotJson(pub Problem);

/// 429 `rate_limited`: too many calls from this user or this address; wait `Retry-After`
/// seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait before calling again."))
)]
pub struct RateLimited(pub Problem);

/// 500 `internal_error`: a fault on our side (logged; no detail is shown).
#[derive(ToResponse)]
#[response(content_type = "application/problem+json")]
pub struct InternalError(pub Problem);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_views_statuses_point_at_their_enums() {
        let document = serde_json::to_value(document()).unwrap();
        for (schema, property, status) in STATUS_PROPERTIES {
            assert_eq!(
                document["components"]["schemas"][schema]["properties"][property]["$ref"],
                format!("#/components/schemas/{status}"),
                "{schema}.{property}"
            );
        }
    }

    #[test]
    fn the_text_fields_refuse_control_characters() {
        let document = serde_json::to_value(document()).unwrap();
        for (schema, property) in TEXT_PROPERTIES {
            assert_eq!(
                document["components"]["schemas"][schema]["properties"][property]["pattern"],
                NO_CONTROL_CHARACTERS,
                "{schema}.{property}"
            );
        }
    }

    #[test]
    fn optional_bodies_are_left_out_never_null() {
        let document = serde_json::to_value(document()).unwrap();
        for path in ["/listings/{id}/requests", "/requests/{id}/reject"] {
            let body = &document["paths"][path]["post"]["requestBody"];
            assert!(body.get("required").is_none(), "{path}");
            assert!(
                body["content"]["application/json"]["schema"]["$ref"].is_string(),
                "{path}: {body}"
            );
        }
    }
}
