//! The upcasters: each turns one event type's payload at one version into the next
//! version's shape. They only ever get added: a version once written is read forever.

use serde_json::{json, Map, Value};

/// One step up an event type's versions.
pub(super) struct Upcaster {
    /// The aggregate's type.
    pub aggregate_type: &'static str,
    /// The event type.
    pub event_type: &'static str,
    /// The version it reads.
    pub from: &'static str,
    /// The version it writes.
    pub to: &'static str,
    /// Rewrites the event's body (the object inside `{"EventType": ...}`) in place.
    pub apply: fn(&mut Map<String, Value>),
}

/// Every step, in no particular order: [`super::upcast`] follows them from the stored
/// version to the current one.
pub(super) const UPCASTERS: &[Upcaster] = &[Upcaster {
    aggregate_type: "listing",
    event_type: "ListingEdited",
    from: "1.0",
    to: "2.0",
    apply: listing_edited_records_its_changes,
}];

/// `ListingEdited` 1.0 held the three values after the edit, changed or not; 2.0 holds
/// what changed, each from what. What a 1.0 edit changed from is not known: each value it
/// held becomes a change with `from: null`.
fn listing_edited_records_its_changes(body: &mut Map<String, Value>) {
    let mut changes = Map::new();
    for field in ["title", "description", "price"] {
        if let Some(to) = body.remove(field) {
            changes.insert(field.to_owned(), json!({"from": null, "to": to}));
        }
    }
    body.insert("changes".to_owned(), Value::Object(changes));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_1_0_edit_becomes_changes_from_unknown_values() {
        let mut body = json!({
            "listing_id": "l", "title": "Lamp", "description": "", "price": 9000,
            "edited_at": "2026-03-01T09:00:00Z"
        });
        let Some(object) = body.as_object_mut() else {
            panic!("an object");
        };
        listing_edited_records_its_changes(object);
        assert_eq!(
            body,
            json!({
                "listing_id": "l",
                "changes": {
                    "title": {"from": null, "to": "Lamp"},
                    "description": {"from": null, "to": ""},
                    "price": {"from": null, "to": 9000},
                },
                "edited_at": "2026-03-01T09:00:00Z"
            })
        );
    }
}
