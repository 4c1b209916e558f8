//! Sealing and opening personal fields inside a JSON value: each string the domain lists as
//! personal (`carrot_domain::schema::personal`) becomes `{"sealed": "<base64 of nonce and
//! ciphertext>", "sealed_by": "<owner's user id>"}`, with XChaCha20-Poly1305 (24-byte random
//! nonces, so random nonces never repeat in practice) under the owner's key.
//!
//! The associated data is the owner, the context (the event type or aggregate type) and the
//! field's pointer, so a sealed value cannot be moved to another field or another person
//! and still open. Opening finds sealed values wherever they are, so a reader needs no list.

use std::collections::{BTreeSet, HashMap};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use carrot_domain::schema::personal::ERASED;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::{json, Map, Value};
use uuid::Uuid;

/// The key of a sealed value's ciphertext.
const SEALED: &str = "sealed";
/// The key of a sealed value's owner.
const SEALED_BY: &str = "sealed_by";
/// [`SEALED_BY`] as it stands in JSON text: a text without it holds no sealed value.
pub(super) const SEALED_BY_IN_TEXT: &str = "\"sealed_by\"";
const NONCE_LEN: usize = 24;

/// One person's key: 32 random bytes, kept only in `personal_keys`.
#[derive(Clone)]
pub struct PersonalKey([u8; 32]);

impl PersonalKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        PersonalKey(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// A key as stored; `None` unless it is 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 32]>::try_from(bytes).ok().map(PersonalKey)
    }

    /// The bytes to store.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl std::fmt::Debug for PersonalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonalKey(..)")
    }
}

/// A sealed value that does not open under a key that exists: tampered with, or corrupt.
#[derive(Debug, thiserror::Error)]
#[error("the sealed value at {context}{pointer} does not open under its owner's key")]
pub struct Unopenable {
    /// The event type or aggregate type.
    pub context: String,
    /// Where in it.
    pub pointer: String,
}

fn associated(owner: Uuid, context: &str, pointer: &str) -> Vec<u8> {
    format!("{owner}/{context}{pointer}").into_bytes()
}

/// Seals the strings at `pointers` of `value` under `owner`'s `key`. Absent, `null` and
/// already sealed fields are left as they are.
pub fn seal(value: &mut Value, context: &str, pointers: &[&str], owner: Uuid, key: &PersonalKey) {
    for pointer in pointers {
        let Some(field) = value.pointer_mut(pointer) else {
            continue;
        };
        let Value::String(text) = field else {
            continue;
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated(owner, context, pointer);
        let payload = Payload {
            msg: text.as_bytes(),
            aad: &aad,
        };
        // Encryption fails only on messages beyond the cipher's 256 GiB limit.
        let Ok(ciphertext) = key.cipher().encrypt(&nonce, payload) else {
            continue;
        };
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        *field = json!({ SEALED: STANDARD.encode(sealed), SEALED_BY: owner.to_string() });
    }
}

/// The owner of a sealed value, if `value` is one.
fn sealed_owner(fields: &Map<String, Value>) -> Option<Uuid> {
    if fields.len() != 2 || !fields.contains_key(SEALED) {
        return None;
    }
    fields
        .get(SEALED_BY)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::try_parse(s).ok())
}

/// Adds the owner of every sealed value in `value` to `owners`.
pub fn owners(value: &Value, owners: &mut BTreeSet<Uuid>) {
    match value {
        Value::Object(fields) => match sealed_owner(fields) {
            Some(owner) => {
                owners.insert(owner);
            }
            None => fields.values().for_each(|v| self::owners(v, owners)),
        },
        Value::Array(items) => items.iter().for_each(|v| self::owners(v, owners)),
        _ => {}
    }
}

/// Opens every sealed value in `value` with `keys` (each owner's key, `None` once
/// destroyed); one whose owner has no key opens as [`ERASED`].
pub fn open(
    value: &mut Value,
    context: &str,
    keys: &HashMap<Uuid, Option<PersonalKey>>,
) -> Result<(), Unopenable> {
    open_at(value, context, &mut String::new(), keys)
}

fn open_at(
    value: &mut Value,
    context: &str,
    pointer: &mut String,
    keys: &HashMap<Uuid, Option<PersonalKey>>,
) -> Result<(), Unopenable> {
    let Value::Object(fields) = value else {
        if let Value::Array(items) = value {
            for (i, item) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                open_at(item, context, pointer, keys)?;
                pointer.truncate(len);
            }
        }
        return Ok(());
    };
    if let Some(owner) = sealed_owner(fields) {
        let text = match keys.get(&owner) {
            Some(Some(key)) => opened(fields, owner, key, context, pointer)?,
            _ => ERASED.to_owned(),
        };
        *value = Value::String(text);
        return Ok(());
    }
    for (name, field) in fields.iter_mut() {
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
        open_at(field, context, pointer, keys)?;
        pointer.truncate(len);
    }
    Ok(())
}

fn opened(
    fields: &Map<String, Value>,
    owner: Uuid,
    key: &PersonalKey,
    context: &str,
    pointer: &str,
) -> Result<String, Unopenable> {
    let unopenable = || Unopenable {
        context: context.to_owned(),
        pointer: pointer.to_owned(),
    };
    let bytes = fields
        .get(SEALED)
        .and_then(Value::as_str)
        .and_then(|s| STANDARD.decode(s).ok())
        .filter(|b| b.len() > NONCE_LEN)
        .ok_or_else(unopenable)?;
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unopenable())?;
    let aad = associated(owner, context, pointer);
    let plain = key
        .cipher()
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ciphertext,
                aad: &aad,
            },
        )
        .map_err(|_| unopenable())?;
    String::from_utf8(plain).map_err(|_| unopenable())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn listing(title: &str) -> Value {
        json!({"title": title, "description": "", "category": null, "price": 5})
    }

    const FIELDS: &[&str] = &["/title", "/description", "/category"];

    #[test]
    fn a_sealed_value_names_its_owner_and_hides_its_text() {
        let (owner, key) = (Uuid::new_v4(), PersonalKey::generate());
        let mut value = listing("Desk lamp MARK-1");
        seal(&mut value, "ListingRegistered", FIELDS, owner, &key);
        assert!(!value.to_string().contains("MARK-1"));
        assert_eq!(value["category"], Value::Null, "null stays null");
        assert_eq!(value["price"], 5);
        let mut found = BTreeSet::new();
        owners(&value, &mut found);
        assert_eq!(found, BTreeSet::from([owner]));
    }

    #[test]
    fn a_destroyed_key_opens_as_erased_and_a_moved_value_does_not_open() {
        let (owner, key) = (Uuid::new_v4(), PersonalKey::generate());
        let mut value = listing("Desk lamp");
        seal(&mut value, "ListingRegistered", FIELDS, owner, &key);
        let mut erased = value.clone();
        open(
            &mut erased,
            "ListingRegistered",
            &HashMap::from([(owner, None)]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            erased,
            json!({"title": ERASED, "description": ERASED, "category": null, "price": 5})
        );
        // The title's ciphertext put in the description's place does not open.
        let mut moved = value.clone();
        moved["description"] = value["title"].clone();
        let keys = HashMap::from([(owner, Some(key))]);
        assert!(open(&mut moved, "ListingRegistered", &keys).is_err());
        // Nor under another event type.
        let mut elsewhere = value.clone();
        assert!(open(&mut elsewhere, "ListingEdited", &keys).is_err());
    }

    proptest! {
        #[test]
        fn what_is_sealed_opens_to_itself(title in "\\PC{1,100}", description in "\\PC{0,300}") {
            let (owner, key) = (Uuid::new_v4(), PersonalKey::generate());
            let original = json!({"changes": {"title": {"from": title, "to": description}}});
            let mut value = original.clone();
            seal(&mut value, "ListingEdited", &["/changes/title/from", "/changes/title/to"], owner, &key);
            prop_assert_ne!(&value, &original);
            open(&mut value, "ListingEdited", &HashMap::from([(owner, Some(key))]))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(value, original);
        }
    }
}
