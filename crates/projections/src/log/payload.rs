//! An event's payload as read from the log: the stored JSON text, made a `serde_json::Value`
//! only when something asks for one.
//!
//! Most readers decode an event straight into its aggregate's event type, and trees of
//! `Value`s built only to be walked once and dropped cost a rebuild about half of
//! Carrot's CPU (docs/PERFORMANCE.md, "Issue 22, stop 20"). So [`Payload::decode`] parses
//! the text once, into the type; the few readers that look into the JSON itself (opening
//! sealed fields, upcasting an old version, an export) get the `Value` through `Deref`, or
//! take it out to change it ([`Payload::take`]), which parses the text then, once.

use std::ops::Deref;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde_json::Value;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::{Decode, Postgres, Type};

/// An event's payload (`{"EventName": {...}}`).
#[derive(Default)]
pub struct Payload {
    /// The stored text, while nothing has asked for the `Value`.
    text: Option<Box<str>>,
    /// The `Value`, once asked for (or given).
    value: OnceLock<Value>,
}

impl Payload {
    /// A payload as stored: JSON text from the database (`jsonb`'s own output, so valid).
    pub(crate) fn stored(text: Box<str>) -> Self {
        Payload {
            text: Some(text),
            value: OnceLock::new(),
        }
    }

    /// Decodes the payload into an event type: from the text when no `Value` was made.
    pub fn decode<E: DeserializeOwned>(&self) -> Result<E, serde_json::Error> {
        match (self.value.get(), &self.text) {
            (None, Some(text)) => serde_json::from_str(text),
            _ => E::deserialize(&**self),
        }
    }

    /// Whether the payload is `null` (a reader left it out: an aggregate its subscriber
    /// does not read), without parsing it.
    pub fn is_null(&self) -> bool {
        match (self.value.get(), &self.text) {
            (None, Some(text)) => &**text == "null",
            _ => (**self).is_null(),
        }
    }

    /// Whether the stored text holds `needle` (always, once it was parsed): a cheap test
    /// before parsing, for what can only be there if the text says so.
    pub(crate) fn may_hold(&self, needle: &str) -> bool {
        match (self.value.get(), &self.text) {
            (None, Some(text)) => text.contains(needle),
            _ => true,
        }
    }

    /// The `Value`, taken out (`null` left behind); give it back changed with `from`.
    pub fn take(&mut self) -> Value {
        let text = self.text.take();
        self.value.take().unwrap_or_else(|| parse(text.as_deref()))
    }
}

/// The stored text as a `Value`. The text is `jsonb`'s own output, so a parse can only fail
/// on nesting deeper than serde_json's limit, which no event of the domain's has.
fn parse(text: Option<&str>) -> Value {
    text.and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

impl Deref for Payload {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value.get_or_init(|| parse(self.text.as_deref()))
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload {
            text: None,
            value: OnceLock::from(value),
        }
    }
}

impl Clone for Payload {
    fn clone(&self) -> Self {
        match (self.value.get(), &self.text) {
            (None, Some(text)) => Payload::stored(text.clone()),
            (value, _) => Payload::from(value.cloned().unwrap_or(Value::Null)),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.value.get(), &self.text) {
            (None, Some(text)) => f.write_str(text),
            _ => write!(f, "{:?}", **self),
        }
    }
}

/// A `jsonb` column read as its text: the binary format is a version byte (1) and the text.
impl Type<Postgres> for Payload {
    fn type_info() -> PgTypeInfo {
        <sqlx::types::Json<()> as Type<Postgres>>::type_info()
    }
    // `jsonb` only: a `json` column's binary format has no version byte.
    fn compatible(ty: &PgTypeInfo) -> bool {
        *ty == Self::type_info()
    }
}

impl<'r> Decode<'r, Postgres> for Payload {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        use sqlx::ValueRef;
        if value.is_null() {
            return Ok(Payload::from(Value::Null));
        }
        let text = match value.format() {
            sqlx::postgres::PgValueFormat::Binary => {
                let bytes = value.as_bytes()?;
                match bytes.split_first() {
                    Some((1, text)) => std::str::from_utf8(text)?,
                    _ => return Err("a jsonb value of an unknown binary version".into()),
                }
            }
            sqlx::postgres::PgValueFormat::Text => value.as_str()?,
        };
        Ok(Payload::stored(text.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    enum Event {
        Registered { price: i64 },
    }

    fn stored(text: &str) -> Payload {
        Payload::stored(text.into())
    }

    #[test]
    fn decoding_reads_the_text_and_makes_no_value() {
        let payload = stored(r#"{"Registered": {"price": 1000}}"#);
        assert_eq!(
            payload.decode::<Event>().ok(),
            Some(Event::Registered { price: 1000 })
        );
        assert!(payload.value.get().is_none());
        assert!(!payload.is_null());
        assert!(payload.value.get().is_none());
    }

    #[test]
    fn a_payload_left_out_of_a_read_is_null_without_a_parse() {
        let payload = stored("null");
        assert!(payload.is_null());
        assert!(payload.value.get().is_none());
    }

    #[test]
    fn looking_into_the_json_parses_it_once_and_decoding_then_reads_the_value() {
        let payload = stored(r#"{"Registered": {"price": 1000}}"#);
        assert_eq!(payload["Registered"]["price"], 1000);
        assert!(payload.value.get().is_some());
        assert_eq!(
            payload.decode::<Event>().ok(),
            Some(Event::Registered { price: 1000 })
        );
    }

    #[test]
    fn a_value_taken_out_changed_and_given_back_is_what_readers_see() {
        let mut payload = stored(r#"{"Registered": {"price": 1000}}"#);
        let mut value = payload.take();
        assert!(payload.is_null(), "nothing is left behind");
        value["Registered"]["price"] = 2000.into();
        payload = value.into();
        assert_eq!(
            payload.decode::<Event>().ok(),
            Some(Event::Registered { price: 2000 })
        );
        assert_eq!(payload.clone(), payload);
    }

    #[test]
    fn only_a_text_that_names_something_may_hold_it() {
        let sealed = stored(r#"{"T": {"title": {"sealed": "x", "sealed_by": "u"}}}"#);
        let plain = stored(r#"{"T": {"title": "says \"sealed_by\" in a title"}}"#);
        assert!(sealed.may_hold(r#""sealed_by""#));
        assert!(!plain.may_hold(r#""sealed_by""#));
        let _ = &plain["T"];
        assert!(
            plain.may_hold(r#""sealed_by""#),
            "once parsed, the text is gone"
        );
    }
}
