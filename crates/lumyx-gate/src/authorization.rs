//! The `Authorization` header: `Bearer <token>`, and nothing else.
//!
//! The scheme is matched without regard to case, the token is one run of
//! visible characters, and whitespace around the value (and between scheme
//! and token) is tolerated, as HTTP allows. No byte of the header is ever
//! copied anywhere: it may hold a key.

/// Why an `Authorization` header gave no token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderProblem {
    /// No header, or one with nothing but whitespace (401 `missing_api_key`).
    Missing,
    /// Not `Bearer <token>` (401 `invalid_authorization_header`).
    Malformed,
}

/// The token of a `Bearer` `Authorization` header value.
///
/// ```
/// use lumyx_gate::{bearer_token, HeaderProblem};
///
/// assert_eq!(bearer_token(Some(b"Bearer nova_abc")), Ok("nova_abc"));
/// assert_eq!(bearer_token(Some(b"  bearer   nova_abc \t")), Ok("nova_abc"));
/// assert_eq!(bearer_token(None), Err(HeaderProblem::Missing));
/// assert_eq!(bearer_token(Some(b"   ")), Err(HeaderProblem::Missing));
/// assert_eq!(bearer_token(Some(b"Basic dXNlcjpwYXNz")), Err(HeaderProblem::Malformed));
/// assert_eq!(bearer_token(Some(b"Bearer a b")), Err(HeaderProblem::Malformed));
/// assert_eq!(bearer_token(Some(b"Bearer")), Err(HeaderProblem::Malformed));
/// ```
pub fn bearer_token(value: Option<&[u8]>) -> Result<&str, HeaderProblem> {
    let value = value.map(trim).unwrap_or_default();
    if value.is_empty() {
        return Err(HeaderProblem::Missing);
    }
    const SCHEME: &[u8] = b"bearer";
    let (scheme, rest) = value.split_at(value.len().min(SCHEME.len()));
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return Err(HeaderProblem::Malformed);
    }
    // At least one space between scheme and token.
    let token = trim(rest);
    // Every byte checked, with no early exit, so that the loop compiles to
    // vector compares (a key is 64 bytes).
    let visible = token
        .iter()
        .fold(true, |visible, byte| visible & byte.is_ascii_graphic());
    if token.is_empty() || token.len() == rest.len() || !visible {
        return Err(HeaderProblem::Malformed);
    }
    // Visible ASCII only, so valid UTF-8.
    std::str::from_utf8(token).map_err(|_| HeaderProblem::Malformed)
}

/// `bytes` without the spaces and tabs around them.
fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |byte: &u8| matches!(byte, b' ' | b'\t');
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_that_are_accepted() {
        for value in [
            "Bearer t",
            "bearer t",
            "BEARER t",
            "BeArEr t",
            " Bearer t ",
            "Bearer\tt",
            "Bearer    t",
            "\tBearer t\t",
        ] {
            assert_eq!(bearer_token(Some(value.as_bytes())), Ok("t"), "{value:?}");
        }
    }

    #[test]
    fn forms_that_are_refused() {
        for value in [
            "Bearert",
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\tb",
            "Token t",
            "Bear t",
            "Bearer\u{a0}t",
            "Bearer tö",
            "t",
            "Bearer,t",
        ] {
            assert_eq!(
                bearer_token(Some(value.as_bytes())),
                Err(HeaderProblem::Malformed),
                "{value:?}"
            );
        }
        for value in ["", " ", "\t \t"] {
            assert_eq!(
                bearer_token(Some(value.as_bytes())),
                Err(HeaderProblem::Missing),
                "{value:?}"
            );
        }
        assert_eq!(
            bearer_token(Some(b"Bearer \xff")),
            Err(HeaderProblem::Malformed)
        );
    }
}
