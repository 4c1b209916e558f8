//! `X-Request-Id`: a caller may name its request, within bounds. The id is copied into the
//! log line of every request, echoed in the response and stored in the metadata of every
//! event the request appends, forever; so an id longer than [`MAX_LEN`] or with anything but
//! visible ASCII is replaced by a fresh one before any of that happens (and never logged).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

/// The header.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest id a caller may choose (a UUID is 36; W3C trace ids are 55).
pub const MAX_LEN: usize = 128;

/// Whether a caller's id can be kept: 1 to [`MAX_LEN`] bytes of visible ASCII (`!` to `~`).
/// Spaces are refused too: in a human-readable log line they would let an id forge a field
/// (`request_id=x user=admin`).
pub fn is_acceptable(value: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&value.len()) && value.iter().all(|b| (b'!'..=b'~').contains(b))
}

/// Replaces an unacceptable `X-Request-Id` (or several of them) with a fresh UUID. Runs
/// before the layers that log, echo or store the id, so none of them sees the caller's.
pub async fn bound(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let mut values = headers.get_all(&HEADER).iter();
    let keep = match (values.next(), values.next()) {
        (None, _) => true,
        (Some(one), None) => is_acceptable(one.as_bytes()),
        (Some(_), Some(_)) => false,
    };
    if !keep {
        tracing::debug!("an X-Request-Id out of bounds was replaced");
        let fresh = Uuid::new_v4().to_string();
        // A UUID's text is always a valid header value.
        if let Ok(fresh) = HeaderValue::from_str(&fresh) {
            headers.insert(&HEADER, fresh);
        } else {
            headers.remove(&HEADER);
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_within_bounds_are_kept_and_others_are_not() {
        assert!(is_acceptable(b"0b6c5e1e-3c1f-4a53-9a51-2f1d6a1d9b0e"));
        assert!(is_acceptable("a".repeat(MAX_LEN).as_bytes()));
        assert!(is_acceptable(b"req-42/retry#1"));
        for refused in [
            "a".repeat(MAX_LEN + 1).into_bytes(),
            Vec::new(),
            b"two words".to_vec(),
            b"tab\there".to_vec(),
            "caf\u{e9}".as_bytes().to_vec(),
            b"bell\x07".to_vec(),
            b"del\x7f".to_vec(),
        ] {
            assert!(!is_acceptable(&refused), "{refused:?}");
        }
    }
}
