//! Redaction of key-shaped text, for anything that repeats what a client
//! sent (an error message naming a model, a path, an id) or goes to a log.
//!
//! The scanner finds *real* keys (checksum and all); redaction must also
//! hide keys that are mistyped, cut short, upper-cased or of another
//! service's format, so it looks at the shape only: every run of at least
//! [`REDACT_MIN_RUN`] ASCII letters and digits is secret. A key of any format
//! has a run of at least 40 hex digits after its prefix's `_`, a `nova_` key
//! 59; a typo that puts a letter among them does not split the run.

use std::borrow::Cow;

/// The shortest run of ASCII letters and digits that [`redact`] hides: 32,
/// the fewest random digits (128 bits) a key format may have.
pub const REDACT_MIN_RUN: usize = 32;

/// How many characters a redacted run keeps at each end, as a hint does.
const SHOWN_CHARS: usize = 4;

/// `text` with every key-shaped part replaced by its hint.
///
/// A key-shaped part is a run of at least [`REDACT_MIN_RUN`] ASCII letters and
/// digits. It keeps its first 4 and last 4 characters with `…` between them;
/// the text around it (a key prefix such as `nova_`, whose `_` ends a run) is
/// kept, so a well-formed key becomes exactly its [`KeyHint`](crate::KeyHint).
/// Ordinary words, names with separators (`gpt-4o-mini`, `conv_…` ids of
/// up to 31 characters after the `_`) and UUIDs are left alone.
/// Text without such a part is returned as it is, without allocating.
///
/// ```
/// use lumyx_keys::redact;
///
/// let text = "model nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce not found";
/// assert_eq!(redact(text), "model nova_0123…6dce not found");
/// // A mistyped or truncated key is hidden too.
/// assert_eq!(redact("sk_0123456789ABCDEF0123456789abcdef0123"), "sk_0123…0123");
/// assert_eq!(redact("gpt-4o-mini"), "gpt-4o-mini");
/// ```
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Where the text not yet copied to `out` starts.
    let mut copied = 0;
    let mut at = 0;
    while at < bytes.len() {
        if !bytes[at].is_ascii_alphanumeric() {
            at += 1;
            continue;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        if at - start < REDACT_MIN_RUN {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        // Every boundary is next to an ASCII byte, hence a char boundary.
        out.push_str(&text[copied..start]);
        out.push_str(&text[start..start + SHOWN_CHARS]);
        out.push('…');
        out.push_str(&text[at - SHOWN_CHARS..at]);
        copied = at;
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKey;

    #[test]
    fn every_key_becomes_its_hint() {
        for _ in 0..100 {
            let key = ApiKey::generate().unwrap();
            let text = format!("a {} b \"{}\"", key.expose_secret(), key.expose_secret());
            let hint = key.hint().to_string();
            assert_eq!(redact(&text), format!("a {hint} b \"{hint}\""));
        }
    }

    #[test]
    fn damaged_keys_are_hidden_too() {
        let key = ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let damaged = [
            secret.to_uppercase(),
            secret[..40].to_owned(),
            secret[5..].to_owned(),
            format!("{}G{}", &secret[..30], &secret[31..]),
            format!("x{secret}x"),
            secret.replace("nova_", "nova-"),
        ];
        for text in damaged {
            let redacted = redact(&text);
            // No run of 12 secret digits survives.
            for window in secret.as_bytes()[5..].windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !redacted.to_lowercase().contains(window),
                    "{redacted} shows {window}"
                );
            }
        }
    }

    #[test]
    fn short_runs_and_other_text_are_kept() {
        for text in [
            "",
            "gpt-4o-mini",
            "conv_0123456789abcdef01234567",
            "550e8400-e29b-41d4-a716-446655440000",
            "ünïcödé ✓",
            "0123456789abcdef0123456789abcde",
        ] {
            assert!(
                matches!(redact(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        assert_eq!(redact("ü0123456789abcdef0123456789abcdef✓"), "ü0123…cdef✓");
        assert_eq!(redact("ThisIsAnIdentifierOfThirtyTwoChr"), "This…oChr");
    }
}
