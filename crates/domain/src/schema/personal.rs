//! What in the log is personal: the fields of each event type, and of each aggregate's
//! state as its snapshots hold it, that carry text a person typed. The event store seals
//! each of them with its author's key before it is written; every reader opens them before
//! anything else reads the payload, and a field whose key was destroyed (its author closed
//! their account) opens as [`ERASED`]. docs/DESIGN.md, "Erasure", has the whole inventory,
//! including what is deliberately not sealed.
//!
//! A field is named by a JSON pointer into the event's body (inside `{"EventType": body}`)
//! or into the state, in the shape written today. Absent and `null` fields are left alone.

/// What a sealed field reads as once its author's key is destroyed. Every text rule of
/// the domain accepts it (1 to 100 characters, no control characters), so aggregates,
/// views and replays go on over it.
pub const ERASED: &str = "[erased]";

/// For each event type: its fields that hold text its author typed. The author is the
/// event's actor (`metadata.actor`); events written by the system carry only codes there
/// (a rejection's `listing_withdrawn`), and are not sealed.
pub const EVENT_FIELDS: &[(&str, &[&str])] = &[
    (
        "ListingRegistered",
        &["/title", "/description", "/category"],
    ),
    (
        "ListingEdited",
        &[
            "/changes/title/from",
            "/changes/title/to",
            "/changes/description/from",
            "/changes/description/to",
        ],
    ),
    ("PurchaseRequestRejected", &["/reason"]),
];

/// For each aggregate type whose state holds such text: the pointer of the user who owns
/// it, and the fields.
pub const STATE_FIELDS: &[(&str, &str, &[&str])] =
    &[("listing", "/seller_id", &["/title", "/description"])];

/// The personal fields of `event_type` (none for most).
pub fn event_fields(event_type: &str) -> &'static [&'static str] {
    EVENT_FIELDS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map_or(&[], |(_, fields)| fields)
}

/// The owner's pointer and the personal fields of `aggregate_type`'s state, if it has any.
pub fn state_fields(aggregate_type: &str) -> Option<(&'static str, &'static [&'static str])> {
    STATE_FIELDS
        .iter()
        .find(|(t, _, _)| *t == aggregate_type)
        .map(|(_, owner, fields)| (*owner, *fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listing::fields::{Category, Description, ListingTitle};
    use crate::listing::{Change, Listing, ListingChanges, ListingEvent};
    use crate::purchase_request::PurchaseRequestEvent;
    use crate::schema::EVENTS;
    use crate::{Actor, ListingId, Price, RequestId, Trade, UserId};
    use cqrs_es::Aggregate;
    use serde_json::Value;
    use uuid::Uuid;

    fn text(raw: &str) -> ListingTitle {
        ListingTitle::parse(raw).unwrap_or_else(|e| panic!("{e}"))
    }

    fn body(event: &impl serde::Serialize) -> Value {
        let value = serde_json::to_value(event).unwrap_or_default();
        value
            .as_object()
            .and_then(|o| o.values().next())
            .cloned()
            .unwrap_or_default()
    }

    fn assert_strings(event_type: &str, body: &Value) {
        for pointer in event_fields(event_type) {
            assert!(
                body.pointer(pointer).is_some_and(Value::is_string),
                "{event_type}{pointer} is not a string in {body}"
            );
        }
    }

    #[test]
    fn the_erased_marker_is_valid_text_everywhere_a_field_is_sealed() {
        assert!(ListingTitle::parse(ERASED).is_ok());
        assert!(Description::parse(ERASED).is_ok());
        assert!(Category::parse(ERASED).is_ok());
    }

    #[test]
    fn every_listed_type_exists_and_every_pointer_names_a_string_it_writes() {
        for (event_type, _) in EVENT_FIELDS {
            assert!(
                EVENTS
                    .iter()
                    .any(|(_, versions)| versions.iter().any(|(t, _)| t == event_type)),
                "{event_type} is no event type"
            );
        }
        let (listing_id, seller) = (ListingId::new(), UserId::new());
        let registered = ListingEvent::ListingRegistered {
            listing_id,
            seller_id: seller,
            title: text("Desk lamp"),
            description: Description::parse("Warm light").unwrap_or_else(|e| panic!("{e}")),
            price: Price::parse(15_000).unwrap_or_else(|e| panic!("{e}")),
            category: Some(Category::parse("lamps").unwrap_or_else(|e| panic!("{e}"))),
            registered_at: chrono::Utc::now(),
        };
        assert_strings("ListingRegistered", &body(&registered));
        let edited = ListingEvent::ListingEdited {
            listing_id,
            changes: ListingChanges {
                title: Some(Change {
                    from: Some(text("Desk lamp")),
                    to: text("Floor lamp"),
                }),
                description: Some(Change {
                    from: Some(Description::parse("a").unwrap_or_else(|e| panic!("{e}"))),
                    to: Description::parse("b").unwrap_or_else(|e| panic!("{e}")),
                }),
                price: None,
            },
            edited_at: chrono::Utc::now(),
        };
        assert_strings("ListingEdited", &body(&edited));
        let rejected = PurchaseRequestEvent::PurchaseRequestRejected {
            trade: Trade {
                request_id: RequestId::new(),
                listing_id,
                buyer_id: UserId::new(),
                seller_id: seller,
            },
            by: Actor::User(seller),
            reason: Some("sold it at the market".into()),
            rejected_at: chrono::Utc::now(),
        };
        assert_strings("PurchaseRequestRejected", &body(&rejected));
    }

    #[test]
    fn a_listings_state_names_its_owner_and_its_text() {
        let mut listing = Listing::default();
        listing.apply(ListingEvent::ListingRegistered {
            listing_id: ListingId::from_uuid(Uuid::from_u128(1)),
            seller_id: UserId::from_uuid(Uuid::from_u128(2)),
            title: text("Desk lamp"),
            description: Description::parse("Warm").unwrap_or_else(|e| panic!("{e}")),
            price: Price::parse(1_000).unwrap_or_else(|e| panic!("{e}")),
            category: None,
            registered_at: chrono::Utc::now(),
        });
        let state = serde_json::to_value(&listing).unwrap_or_default();
        let Some((owner, fields)) = state_fields("listing") else {
            panic!("a listing's state holds text");
        };
        assert_eq!(
            state.pointer(owner),
            Some(&Value::String(Uuid::from_u128(2).to_string()))
        );
        for field in fields {
            assert!(
                state.pointer(field).is_some_and(Value::is_string),
                "{field}"
            );
        }
    }
}
