//! JSON paths, the way an error names the offending field in `param`:
//! `model`, `messages[0].role`, `messages[2].content[1].type`, `metadata.note`.
//!
//! A path is rendered from what `serde_path_to_error` tracked while reading,
//! or built by a check that finds a field. An error made while reading a
//! buffered value (a content part's payload met before its `type`) carries
//! its path below that value in its message, for the reader of the whole
//! body to append to its own.

use serde::de;
use serde_path_to_error::{Path, Segment};

use crate::client_text::shown;

/// The tracked `path` as a JSON path.
pub(crate) fn render(path: &Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            // A map's keys are the client's (`metadata`): one that cannot be
            // named stops the path at the map.
            Segment::Map { key } => match map_entry(&out, key) {
                Some(entry) => out = entry,
                None => break,
            },
            Segment::Enum { .. } => {}
            // Past an untracked step the rest would be a guess: stop at the
            // last segment known for sure.
            _ => break,
        }
    }
    out
}

/// `path` followed by `rest`: a field name, or a path below it that may
/// start with an index (`[1].url`). Either may be empty.
pub(crate) fn join(path: &str, rest: &str) -> String {
    if path.is_empty() || rest.is_empty() || rest.starts_with('[') {
        format!("{path}{rest}")
    } else {
        format!("{path}.{rest}")
    }
}

/// The path of the entry `key` of the map at `path`, or `None` when the
/// client's key cannot be named in it: a key that is not a plain name (ASCII
/// letters, digits, `_`, `-`) would make the path ambiguous, and a path that
/// an error would show redacted or cut would not match the body.
pub(crate) fn map_entry(path: &str, key: &str) -> Option<String> {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
    let entry = join(path, key);
    (plain && shown(&entry) == entry.as_str()).then_some(entry)
}

/// How an error read in a buffered value tells where it happened:
/// `{NESTED}{inner path}': {message}`. serde's own messages start with fixed
/// words (`invalid type`, `missing field`, …), so a client's input cannot
/// start one with this.
const NESTED: &str = "in field '";

/// The error of a value read apart from the stream: `field` then `inner` is
/// its path below the value being read.
pub(crate) fn nested_error<E: de::Error>(field: &str, inner: &str, error: &serde_json::Error) -> E {
    E::custom(format_args!("{NESTED}{}': {error}", join(field, inner)))
}

/// The path and message of an error made by [`nested_error`].
pub(crate) fn split_nested(message: &str) -> Option<(&str, &str)> {
    let (inner, rest) = message.strip_prefix(NESTED)?.split_once("': ")?;
    let plain = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    plain.then_some((inner, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_puts_a_dot_before_fields_only() {
        assert_eq!(join("", "model"), "model");
        assert_eq!(join("messages[0]", "role"), "messages[0].role");
        assert_eq!(join("content", "[1].url"), "content[1].url");
        assert_eq!(join("text", ""), "text");
    }

    #[test]
    fn map_keys_are_named_only_when_shown_unchanged() {
        assert_eq!(
            map_entry("metadata", "note").as_deref(),
            Some("metadata.note")
        );
        for key in ["", "a b", "x.y", "x'y", &"k".repeat(40), &"k-".repeat(30)] {
            assert_eq!(map_entry("metadata", key), None, "{key}");
        }
    }

    #[test]
    fn a_nested_error_splits_back_into_path_and_message() {
        let error = serde_json::from_str::<u32>("\"x\"").unwrap_err();
        let nested: serde_json::Error = nested_error("image_url", "url", &error);
        let message = nested.to_string();
        let (inner, rest) = split_nested(&message).unwrap();
        assert_eq!(inner, "image_url.url");
        assert!(rest.starts_with("invalid type"), "{rest}");
        assert_eq!(split_nested("in field 'a b': x"), None);
    }
}
