//! The shape lock: every event type's stored shape, committed in `crates/domain/schemas/`,
//! against what today's code writes. The examples are the frozen corpus's events
//! (`crates/domain/corpus/events.jsonl`, real trades): each is upcast, decoded as today's
//! event and serialized again, and the shapes of all of a type's examples are merged (a
//! field null in one example and a string in another is `string|null`).
//!
//! It fails when a type's shape changed while its version did not (with what to do), when a
//! version moved but the lock was not regenerated, and when a stored example no longer
//! reads. `CARROT_LOCK_EVENTS=1 cargo test -p carrot-domain schema` regenerates the locks
//! of types whose version moved (keeping each old shape in `history`) and refines those
//! new examples say more of; it never rewrites a shape that changed under the same version.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{read, EVENTS};

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas");
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/events.jsonl");
const REGENERATE: &str = "CARROT_LOCK_EVENTS=1 cargo test -p carrot-domain schema";

/// A value's shape: objects by key, arrays by their items, scalars by JSON type.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), shape(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().take(1).map(shape).collect()),
        Value::String(_) => json!("string"),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!("integer"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

/// Two shapes of one type as one: objects key by key, differing scalars as `a|b`.
fn merge(a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            let null = json!("null");
            Value::Object(
                keys.into_iter()
                    .map(|k| {
                        let (l, r) = (x.get(k).unwrap_or(&null), y.get(k).unwrap_or(&null));
                        (k.clone(), merge(l, r))
                    })
                    .collect(),
            )
        }
        (Value::String(x), Value::String(y)) => {
            let kinds: BTreeSet<&str> = x.split('|').chain(y.split('|')).collect();
            json!(kinds.into_iter().collect::<Vec<_>>().join("|"))
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(l), Some(r)) => json!([merge(l, r)]),
            (l, r) => Value::Array(l.or(r).into_iter().cloned().collect()),
        },
        // An object or array in one example and null in another: the object's shape.
        (Value::String(n), other) | (other, Value::String(n)) if n == "null" => other.clone(),
        (x, _) => x.clone(),
    }
}

/// Whether two shapes of one type say the same where both know: a `null` (every example
/// held none) matches any shape, so a corpus that gains examples refines a lock without
/// breaking it.
fn compatible(a: &Value, b: &Value) -> bool {
    let kinds = |s: &str| -> BTreeSet<String> {
        s.split('|')
            .filter(|k| *k != "null")
            .map(str::to_owned)
            .collect()
    };
    match (a, b) {
        (Value::String(x), _) if x == "null" => true,
        (_, Value::String(y)) if y == "null" => true,
        (Value::String(x), Value::String(y)) => kinds(x) == kinds(y),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| compatible(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => match (x.first(), y.first()) {
            (Some(l), Some(r)) => compatible(l, r),
            _ => true,
        },
        _ => false,
    }
}

fn lock_path(aggregate_type: &str, event_type: &str) -> PathBuf {
    Path::new(SCHEMAS)
        .join(aggregate_type)
        .join(format!("{event_type}.json"))
}

/// Today's shape of every event type, from the corpus: `(aggregate, type) -> shape`, and
/// every stored example that no longer reads.
fn shapes_from_corpus() -> (BTreeMap<(String, String), Value>, Vec<String>) {
    let corpus = std::fs::read_to_string(CORPUS).unwrap_or_default();
    let mut shapes = BTreeMap::new();
    let mut unread = Vec::new();
    for (line, text) in corpus.lines().enumerate() {
        let Ok(stored) = serde_json::from_str::<Value>(text) else {
            unread.push(format!("corpus line {}: not JSON", line + 1));
            continue;
        };
        let field = |k: &str| stored[k].as_str().unwrap_or_default().to_owned();
        let (aggregate, event_type, version) = (
            field("aggregate_type"),
            field("event_type"),
            field("event_version"),
        );
        match read(&aggregate, &event_type, &version, stored["payload"].clone()) {
            Ok(today) => {
                let body = shape(&today[&event_type]);
                shapes
                    .entry((aggregate, event_type))
                    .and_modify(|s| *s = merge(s, &body))
                    .or_insert(body);
            }
            Err(e) => unread.push(format!(
                "corpus line {}: {aggregate} {event_type} {version}: {e}",
                line + 1
            )),
        }
    }
    (shapes, unread)
}

#[test]
fn every_stored_event_type_keeps_its_shape_unless_its_version_moves() {
    let (shapes, unread) = shapes_from_corpus();
    assert!(
        unread.is_empty(),
        "stored events no longer read as today's events. An event log is forever: give the \
         changed type a new version in its aggregate's VERSIONS and an upcaster from the old \
         one (crates/domain/src/schema/upcasters.rs):\n  {}",
        unread.join("\n  ")
    );
    let regenerate = std::env::var_os("CARROT_LOCK_EVENTS").is_some();
    let mut problems = Vec::new();
    let mut locked = BTreeSet::new();
    for (aggregate, versions) in EVENTS {
        for (event_type, version) in versions {
            locked.insert(lock_path(aggregate, event_type));
            let key = ((*aggregate).to_owned(), (*event_type).to_owned());
            let Some(today) = shapes.get(&key) else {
                problems.push(format!(
                    "{aggregate} {event_type}: no stored example in the corpus; write one \
                     (CARROT_WRITE_CORPUS=1 cargo nextest run -p carrot-api -E \
                     'test(trades_ending_every_way)')"
                ));
                continue;
            };
            let path = lock_path(aggregate, event_type);
            let lock: Value = std::fs::read_to_string(&path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or(Value::Null);
            let locked_version = lock["version"].as_str().unwrap_or_default();
            let same_version = !lock.is_null() && locked_version == *version;
            if same_version && lock["shape"] == *today {
                continue;
            }
            if same_version && compatible(&lock["shape"], today) {
                // More examples say more of the same shape: refined when asked, never a failure.
                if regenerate {
                    let mut refined = lock.clone();
                    refined["shape"] = today.clone();
                    write(&path, &refined, &mut problems);
                }
                continue;
            }
            if same_version {
                problems.push(format!(
                    "{aggregate} {event_type}: its stored shape changed but its version is still \
                     {version}. Bump it in the aggregate's VERSIONS, add an upcaster from \
                     {version} (crates/domain/src/schema/upcasters.rs), then run {REGENERATE}.\n    \
                     locked: {}\n    today:  {today}",
                    lock["shape"]
                ));
                continue;
            }
            if !regenerate {
                problems.push(format!(
                    "{aggregate} {event_type}: written as {version}, locked as {:?}: run \
                     {REGENERATE}",
                    locked_version
                ));
                continue;
            }
            let mut history = lock["history"].as_object().cloned().unwrap_or_default();
            if !lock.is_null() {
                history.insert(locked_version.to_owned(), lock["shape"].clone());
            }
            let fresh = json!({
                "aggregate_type": aggregate,
                "event_type": event_type,
                "version": version,
                "shape": today,
                "history": history,
            });
            write(&path, &fresh, &mut problems);
        }
    }
    for entry in walk(Path::new(SCHEMAS)) {
        if !locked.contains(&entry) {
            problems.push(format!(
                "{}: locks an event type the code no longer has; a type the log holds can \
                 never be removed",
                entry.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn write(path: &Path, lock: &Value, problems: &mut Vec<String>) {
    let written =
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new(SCHEMAS))).and_then(|()| {
            let text = serde_json::to_string_pretty(lock).unwrap_or_default();
            std::fs::write(path, text + "\n")
        });
    if let Err(e) = written {
        problems.push(format!("{}: {e}", path.display()));
    }
}

/// Every lock file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_refined_shape_is_compatible_and_a_changed_one_is_not() {
    let locked = json!({"reason": "null", "price": "integer"});
    let refined = json!({"reason": "null|string", "price": "integer"});
    assert!(compatible(&locked, &refined));
    let renamed = json!({"why": "null|string", "price": "integer"});
    assert!(!compatible(&locked, &renamed));
    let retyped = json!({"reason": "null", "price": "string"});
    assert!(!compatible(&locked, &retyped));
    let grown = json!({"reason": "null", "price": "integer", "note": "null"});
    assert!(!compatible(&locked, &grown));
}

#[test]
fn shapes_merge_nulls_with_what_other_examples_hold() {
    let a = shape(&json!({"reason": null, "price": 1, "at": "t"}));
    let b = shape(&json!({"reason": "sold", "price": 2, "at": "t"}));
    assert_eq!(
        merge(&a, &b),
        json!({"reason": "null|string", "price": "integer", "at": "string"})
    );
}
