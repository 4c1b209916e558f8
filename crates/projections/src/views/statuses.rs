//! The statuses the views show, as the API documents them: string enums whose values are
//! the domain's names (`ListingStatus::SHOWN` and its siblings), so a status is spelled
//! once. The views keep statuses as strings; their schemas point here.

use std::borrow::Cow;

use carrot_domain::listing::ListingStatus as Listing;
use carrot_domain::payment::PaymentStatus as Payment;
use carrot_domain::purchase_request::RequestStatus as Request;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A string schema whose values are `names`.
fn status_enum(description: &str, names: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(names))
        .into()
}

/// Declares a status schema named `$name`, its values the domain's shown statuses.
macro_rules! status_schema {
    ($name:ident, $description:literal, $names:expr) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                status_enum($description, $names)
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

status_schema!(
    ListingStatus,
    "A listing's status.",
    Listing::SHOWN.map(|s| s.name())
);
status_schema!(
    RequestStatus,
    "A purchase request's status.",
    Request::SHOWN.map(|s| s.name())
);
status_schema!(
    PaymentStatus,
    "A payment's status.",
    Payment::SHOWN.map(|s| s.name())
);
