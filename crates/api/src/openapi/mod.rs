//! The API's own description, the OpenAPI document `GET /openapi.json` serves and
//! `carrot openapi` prints (`docs/openapi.json`; a test keeps the two equal).
//!
//! Each handler carries its `#[utoipa::path]`; [`document`] collects them. The pieces they
//! share are in [`vocabulary`]; the passes that finish the document in `modifiers.rs`.
//!
//! The responses of the trade's commands carry OpenAPI `links` (register a listing -> request
//! it -> accept -> complete, or reject, cancel, withdraw), the ids a client passes on;
//! `.ci/fuzz.sh` follows them to drive whole trades.

mod modifiers;
pub mod vocabulary;

use utoipa::OpenApi;

use crate::error::Problem;
use crate::routes::{
    admin, auth, catalog, dead_letters, docs, health, listings, me, mypage, notifications,
    payments, quarantine, requests, transfers,
};
use modifiers::{Consistency, DocsPage, InternalErrors, OptionalBodies, Security, TextFields};
use vocabulary::{
    AdminOnly, InternalError, ListingStatus, MalformedJson, NotFound, NotJson, PayloadTooLarge,
    PaymentStatus, RateLimited, RequestStatus, Unauthenticated,
};

/// The OpenAPI document of every endpoint (title Carrot, this crate's version, no servers:
/// clients call the host that served it).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut document = CarrotApi::openapi();
    document.info.title = "Carrot".to_owned();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    document.servers = None;
    document
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
        auth::logout,
        auth::logout_all,
        auth::change_password,
        me::close_account,
        me::export_all,
        catalog::browse,
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
        dead_letters::list,
        dead_letters::retry,
        dead_letters::discard,
        admin::mismatches,
        admin::resolve_mismatch,
        transfers::retry_transfer,
        transfers::settle_outside,
        quarantine::list,
        quarantine::retry,
        health::live,
        health::ready,
        crate::metrics::render,
        docs::openapi_json,
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
    modifiers(
        &Security,
        &TextFields,
        &OptionalBodies,
        &DocsPage,
        &Consistency,
        &InternalErrors
    ),
    tags(
        (name = "accounts", description = "Sign up, log in, log out (one session or all), change the password: the bearer token every other call needs."),
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

#[cfg(test)]
mod tests {
    use super::*;
    use modifiers::{NO_CONTROL_CHARACTERS, TEXT_PROPERTIES};
    use serde_json::json;

    #[test]
    fn the_views_statuses_point_at_their_enums_of_the_domains_names() {
        let document = serde_json::to_value(document()).unwrap();
        let schemas = &document["components"]["schemas"];
        let names = |status: &str| schemas[status]["enum"].clone();
        assert_eq!(
            names("ListingStatus"),
            json!(["available", "reserved", "sold", "withdrawn"])
        );
        assert_eq!(
            names("PaymentStatus"),
            json!(["captured", "refunded", "paid_out", "failed"])
        );
        assert_eq!(
            names("RequestStatus"),
            json!([
                "requested",
                "accepted",
                "rejected",
                "completed",
                "cancelled",
                "expired",
                "payment_failed"
            ])
        );
        for (schema, property, status) in [
            ("ListingView", "status", "ListingStatus"),
            ("PaymentView", "status", "PaymentStatus"),
            ("RequestView", "status", "RequestStatus"),
            ("PaymentSummary", "status", "PaymentStatus"),
            ("SaleView", "status", "ListingStatus"),
        ] {
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
