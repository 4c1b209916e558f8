//! The JSON-schema matcher: each answer against its operation's documented statuses and schemas.

use std::collections::BTreeSet;

use reqwest::Response;
use serde_json::Value;

/// The operation of `document` for `method` and the request path `path`.
pub(super) fn operation<'d>(document: &'d Value, method: &str, path: &str) -> (String, &'d Value) {
    let path = path.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').collect();
    let paths = document["paths"].as_object().unwrap();
    let (template, item) = paths
        .iter()
        .filter(|(template, item)| {
            let pattern: Vec<&str> = template.split('/').collect();
            item.get(method).is_some()
                && pattern.len() == segments.len()
                && pattern
                    .iter()
                    .zip(&segments)
                    .all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        })
        // A literal segment beats a parameter.
        .min_by_key(|(template, _)| template.matches('{').count())
        .unwrap_or_else(|| panic!("{method} {path} is not in the document"));
    (template.clone(), &item[method])
}

/// Follows a `$ref` to its component.
pub(super) fn resolve<'d>(document: &'d Value, value: &'d Value) -> &'d Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.trim_start_matches('#');
            resolve(
                document,
                document
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{reference} does not resolve")),
            )
        }
        None => value,
    }
}

/// The properties an object schema documents (through `allOf`), and whether it allows
/// others.
fn properties<'d>(
    document: &'d Value,
    schema: &'d Value,
    found: &mut Vec<(&'d String, &'d Value)>,
    required: &mut Vec<&'d str>,
) -> bool {
    let schema = resolve(document, schema);
    let mut open = schema
        .get("additionalProperties")
        .is_some_and(|a| a != &Value::Bool(false));
    if let Some(own) = schema["properties"].as_object() {
        found.extend(own.iter());
    }
    if let Some(own) = schema["required"].as_array() {
        required.extend(own.iter().filter_map(Value::as_str));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        open |= properties(document, part, found, required);
    }
    open
}

/// Checks `value` against `schema`, strictly: an object may hold only documented fields
/// (unless its schema allows more). Returns what does not match, by JSON pointer.
fn mismatches(document: &Value, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if let Some(choices) = schema["oneOf"].as_array() {
        let fits = choices.iter().any(|choice| {
            let mut errors = Vec::new();
            mismatches(document, choice, value, at, &mut errors);
            errors.is_empty()
        });
        if !fits {
            out.push(format!("{at}: {value} fits none of {}", schema["oneOf"]));
        }
        return;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            out.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let fits = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !fits {
        out.push(format!(
            "{at}: a {actual} ({value}), documented as {types:?}"
        ));
        return;
    }
    match value {
        Value::String(s) => match schema["format"].as_str() {
            Some("uuid") if uuid::Uuid::try_parse(s).is_err() => {
                out.push(format!("{at}: {s:?} is not a uuid"));
            }
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(s).is_err() => {
                out.push(format!("{at}: {s:?} is not an RFC 3339 time"));
            }
            _ => {}
        },
        Value::Array(items) => {
            if let Some(item) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    mismatches(document, item, v, &format!("{at}/{i}"), out);
                }
            }
        }
        Value::Object(fields) => {
            let (mut documented, mut required) = (Vec::new(), Vec::new());
            let open = properties(document, schema, &mut documented, &mut required);
            if documented.is_empty() && !types.contains(&"object") && !open {
                return; // a free-form value
            }
            for name in required {
                if !fields.contains_key(name) {
                    out.push(format!("{at}: `{name}` is required but missing"));
                }
            }
            for (name, v) in fields {
                match documented.iter().find(|(n, _)| *n == name) {
                    Some((_, field_schema)) => {
                        mismatches(document, field_schema, v, &format!("{at}/{name}"), out)
                    }
                    None if open => {}
                    None => out.push(format!("{at}/{name}: not documented")),
                }
            }
        }
        _ => {}
    }
}

/// Checks answers against the document and remembers which operations it saw.
pub(super) struct Conformance {
    pub(super) document: Value,
    pub(super) seen: BTreeSet<(String, String)>,
}

impl Conformance {
    /// Checks one answer: its status is documented for the operation, its content type too,
    /// and its JSON body matches the schema. Returns the body.
    pub(super) async fn check(&mut self, method: &str, path: &str, response: Response) -> Value {
        let (template, operation) = operation(&self.document, method, path);
        let what = format!("{} {path} ({template})", method.to_uppercase());
        let status = response.status().as_u16().to_string();
        let documented = operation["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{what} answered {status}, which is not documented"));
        let documented = resolve(&self.document, documented);
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.bytes().await.unwrap();
        self.seen.insert((method.to_owned(), template));
        let Some(content) = documented["content"].as_object() else {
            assert!(
                body.is_empty(),
                "{what} {status}: a body, documented as none"
            );
            return Value::Null;
        };
        let content_type = content_type.unwrap_or_else(|| panic!("{what}: no content type"));
        let media = content
            .get(&content_type)
            .unwrap_or_else(|| panic!("{what} {status}: {content_type} is not documented"));
        if !content_type.contains("json") {
            return Value::String(String::from_utf8_lossy(&body).into_owned());
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        let mut out = Vec::new();
        mismatches(&self.document, &media["schema"], &body, "", &mut out);
        assert!(
            out.is_empty(),
            "{what} {status} does not match its schema:\n  {}\nbody: {body:#}",
            out.join("\n  ")
        );
        body
    }
}
