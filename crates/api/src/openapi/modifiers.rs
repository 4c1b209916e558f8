//! The passes over the generated document that say what the derives cannot: the bearer
//! scheme, the free-text fields' pattern,
//! bodies that may be left out, the Swagger UI page, the consistency header of every read,
//! and the 429 and 500 any database-backed operation may answer.

use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, Schema};
use utoipa::{IntoParams, Modify, PartialSchema};

use super::vocabulary::{ConsistencyHeader, BEARER, UI_PATH};

/// The bearer JWT scheme (from `POST /auth/signup` or `POST /auth/login`).
pub struct Security;

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

/// The free-text fields refuse control characters (the domain's text rule: after trimming,
/// none but tab, line feed and carriage return). Their schemas say so with a pattern, so that
/// generated clients and fuzzers send text the server takes.
pub struct TextFields;

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
pub struct OptionalBodies;

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
pub struct DocsPage;

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

/// Every read of the views (a GET for a signed-in user, outside the operators' pages and the
/// live stream) takes `X-Consistency-Token` and answers `X-Consistency`
/// ([`crate::extract::ConsistencyToken`], [`crate::extract::Freshness`]); said here once.
pub struct Consistency;

impl Consistency {
    fn reads_views(operation: &utoipa::openapi::path::Operation) -> bool {
        let tags = operation.tags.as_deref().unwrap_or_default();
        let signed_in = operation.security.as_ref().is_some_and(|s| !s.is_empty());
        signed_in
            && !tags.iter().any(|t| t == "admin")
            && operation.operation_id.as_deref() != Some("stream_notifications")
    }
}

impl Modify for Consistency {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = HeaderBuilder::new()
            .schema(Some(String::schema()))
            .description(Some(
                "`consistent` or `stale`, when `X-Consistency-Token` was sent.",
            ))
            .build();
        for item in openapi.paths.paths.values_mut() {
            let Some(operation) = item.get.as_mut().filter(|op| Self::reads_views(op)) else {
                continue;
            };
            operation.parameters.get_or_insert_with(Vec::new).extend(
                ConsistencyHeader::into_params(|| None)
                    .into_iter()
                    .map(RefOr::T),
            );
            if let Some(RefOr::T(ok)) = operation.responses.responses.get_mut("200") {
                ok.headers
                    .insert("X-Consistency".to_owned(), RefOr::T(header.clone()));
            }
        }
    }
}

/// Any handler that reads or writes the database can fail on our side, and is rate limited:
/// each such operation may answer 500 and 429. (The probes, metrics and this documentation
/// answer whatever happens.)
pub struct InternalErrors;

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
