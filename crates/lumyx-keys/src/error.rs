//! The one error type of the crate.
//!
//! Parse errors never contain the text that was parsed: a key that fails to
//! parse may still be a real key with a typo, so it must not reach a log.

use crate::format::KeyPrefix;

/// Everything that can go wrong in `lumyx-keys`.
///
/// Parse failures have one variant per check of SPEC §1.2 (length, prefix,
/// character, checksum), in that order. None of them holds the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text is not exactly [`KEY_LEN`](crate::KEY_LEN) bytes long.
    #[error("wrong API key length: expected {expected} bytes, got {actual}")]
    Length {
        /// The length every key has.
        expected: usize,
        /// The length of the text that was presented.
        actual: usize,
    },
    /// The text does not start with the format's prefix.
    #[error("the API key does not start with the expected prefix `{expected}`")]
    Prefix {
        /// The prefix of the format the text was parsed with.
        expected: KeyPrefix,
    },
    /// A character after the prefix is not a lowercase hex digit.
    #[error(
        "invalid character in API key at byte offset {position}: \
         expected a lowercase hex digit (0-9, a-f)"
    )]
    Character {
        /// Zero-based byte offset of the first offending character.
        position: usize,
    },
    /// The checksum does not match: the key was mistyped or truncated and
    /// padded, or it was never issued.
    #[error("API key checksum mismatch: the key is mistyped or was never issued")]
    Checksum,
    /// A custom key prefix does not follow SPEC §1.1.
    #[error("invalid key prefix `{prefix}`: {reason}")]
    InvalidPrefix {
        /// The prefix that was refused (prefixes are public, not secret).
        prefix: String,
        /// What a valid prefix looks like.
        reason: &'static str,
    },
    /// The random number generator failed, so no key could be generated.
    #[error("the random number generator failed: {0}")]
    Random(String),
    /// A text form of a digest, id or hint is malformed.
    #[error("invalid {what}: expected {expected}")]
    Text {
        /// What was being read: `key digest`, `key id`, `key hint`, ...
        what: &'static str,
        /// The form that was expected.
        expected: &'static str,
    },
    /// A record with the same id or digest is already stored.
    #[error("a key with id {0} is already stored")]
    Duplicate(crate::KeyId),
    /// The key store could not answer (connection lost, bad data, ...).
    #[error("key store error: {0}")]
    Store(String),
}
