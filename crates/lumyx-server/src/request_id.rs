//! `x-request-id`: a well-formed incoming one is kept, else one is made; it
//! goes into the request's extensions, the request's log span, and every
//! response.

use std::fmt;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use lumyx_keys::redact;

/// The header's name.
pub(crate) const X_REQUEST_ID: &str = "x-request-id";

/// The id of one request.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RequestId(HeaderValue);

impl RequestId {
    /// The incoming id when it is well-formed: 1 to 128 characters from
    /// `A-Z a-z 0-9 - _ . : /`, so that it is safe in a log line and a
    /// header, and nothing a key could be (no run that [`redact`] would
    /// hide, such as a key or the admin token sent here by mistake).
    /// Anything else is replaced, never repeated.
    pub(crate) fn of_incoming(value: Option<&HeaderValue>) -> Option<RequestId> {
        let value = value?;
        let bytes = value.as_bytes();
        let well_formed = (1..=128).contains(&bytes.len())
            && bytes
                .iter()
                .all(|&byte| byte.is_ascii_alphanumeric() || b"-_.:/".contains(&byte));
        let text = value.to_str().ok()?;
        (well_formed && redact(text) == text).then(|| RequestId(value.clone()))
    }

    /// A new id: `req_` and 24 hex digits from the operating system's
    /// randomness.
    pub(crate) fn generate() -> RequestId {
        let mut bytes = [0u8; 12];
        // Without randomness the id is still unique enough for logs: the
        // clock's nanoseconds.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            bytes.copy_from_slice(&nanos.to_be_bytes()[4..]);
        }
        let text = format!("req_{}", hex::encode(bytes));
        RequestId(HeaderValue::from_str(&text).expect("hex is a header value"))
    }

    /// The id as text.
    pub(crate) fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or_default()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequestId({})", self.as_str())
    }
}

/// Middleware: gives the request its id and the response its header.
pub(crate) async fn request_id(mut request: Request, next: Next) -> Response {
    let id = RequestId::of_incoming(request.headers().get(X_REQUEST_ID))
        .unwrap_or_else(RequestId::generate);
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(X_REQUEST_ID, id.0);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_kept_and_others_replaced() {
        let long = format!("{}ab", "abc-defg-".repeat(14));
        assert_eq!(long.len(), 128);
        let uuid = "550e8400-e29b-41d4-a716-446655440000";
        for kept in ["abc", "req_0123", "a-b_c.d:e/f", &long, uuid] {
            let value = HeaderValue::from_str(kept).unwrap();
            assert_eq!(RequestId::of_incoming(Some(&value)).unwrap().as_str(), kept);
        }
        let key = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
        let admin = "lumyx_admin_8c1f0e2d3b4a59687766554433221100";
        for replaced in [
            "",
            "a b",
            "a\"b",
            "<script>",
            &"x".repeat(129),
            "é",
            key,
            admin,
        ] {
            let value = HeaderValue::from_bytes(replaced.as_bytes()).unwrap();
            assert!(RequestId::of_incoming(Some(&value)).is_none(), "{replaced}");
        }
        assert!(RequestId::of_incoming(None).is_none());
    }

    #[test]
    fn made_ids_differ_and_have_their_shape() {
        let one = RequestId::generate();
        let two = RequestId::generate();
        assert_ne!(one, two);
        assert!(one.as_str().starts_with("req_"));
        assert_eq!(one.as_str().len(), 4 + 24);
    }
}
