//! The API's description served: the OpenAPI document at `GET /openapi.json` (built by
//! `crate::openapi`), and Swagger UI at `/docs`. The UI's scripts and styles are built into
//! the binary (`utoipa-swagger-ui`'s `vendored` feature), so the page works with no internet
//! access.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::openapi::document;
use crate::openapi::vocabulary::{DOCUMENT_PATH, UI_PATH};
use crate::state::AppState;

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
pub(crate) async fn openapi_json(
    document: Arc<utoipa::openapi::OpenApi>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(document.as_ref().clone())
}
