//! The one error type of the crate.
//!
//! Parse errors never contain the text that was parsed: a key that fails to
//! parse may still be a real key with a typo, so it must not reach a log.
//! Errors with a cause keep it, reachable through
//! [`source()`](std::error::Error::source), rather than flattening it into
//! their message.

use chrono::{DateTime, Utc};

use crate::format::KeyPrefix;
use crate::record::rfc3339;
use crate::{KeyId, KeyRecord};

/// A cause carried by an [`Error`]: any error that can cross threads.
type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in `lumyx-keys`.
///
/// Parsing a key checks, in this order, its length, its prefix, its
/// characters and its checksum, and stops at the first failure with one
/// variant each. None of them holds the input.
///
/// A variant with a cause (an RNG failure, a store failure) does not repeat
/// it in its message: walk [`source()`](std::error::Error::source) to print
/// it, as `anyhow`'s `{:#}` or a `tracing` error field do.
///
/// `Error` is neither `Clone` nor `PartialEq`: its causes (a Redis error,
/// the operating system's RNG error) are neither, and an equality that
/// ignored them would call two different failures equal. Match variants with
/// `matches!`; share an error through an `Arc`.
///
/// ```
/// use lumyx_keys::{ApiKeyRef, Error};
///
/// let err = ApiKeyRef::parse("nova_123").unwrap_err();
/// assert!(matches!(err, Error::Length { expected: 64, actual: 8 }));
/// assert_eq!(err.to_string(), "wrong API key length: expected 64 bytes, got 8");
/// ```
#[derive(Debug, thiserror::Error)]
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
    /// A custom key prefix is not 2 to 16 characters of `[a-z][a-z0-9]*_`.
    #[error("invalid key prefix `{prefix}`: {reason}")]
    InvalidPrefix {
        /// The prefix that was refused (prefixes are public, not secret).
        prefix: String,
        /// What a valid prefix looks like.
        reason: &'static str,
    },
    /// The random number generator failed, so no key could be generated.
    /// The cause is the RNG's own error.
    #[error("the random number generator failed, so no key was generated")]
    Random(#[source] Cause),
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
    Duplicate(KeyId),
    /// A record's id is not the one derived from its digest, so it cannot be
    /// stored: lookups by id and by digest would find different keys.
    #[error("record {id} does not match its digest, whose id is {digest_id}")]
    IdMismatch {
        /// The id the record carries.
        id: KeyId,
        /// The id derived from the record's digest.
        digest_id: KeyId,
    },
    /// The key store could not answer: unreachable, unavailable, or it
    /// refused the call. The cause is the store's own error; for the Redis
    /// store a `lumyx_redis::RedisFailure`, whose class tells these apart.
    #[error("the key store could not answer")]
    Store(#[source] Cause),
    /// A time on a record is outside
    /// [`KeyRecord::MIN_TIME`](crate::KeyRecord::MIN_TIME)`..=`[`KeyRecord::MAX_TIME`](crate::KeyRecord::MAX_TIME)
    /// (0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z).
    #[error(
        "{field} must be from {} to {}, got {}",
        rfc3339(&KeyRecord::MIN_TIME),
        rfc3339(&KeyRecord::MAX_TIME),
        rfc3339(.time)
    )]
    TimeOutOfRange {
        /// The record field: `created_at`, `expires_at` or `revoked_at`.
        field: &'static str,
        /// The time that came.
        time: DateTime<Utc>,
    },
    /// A stored record cannot be read back: one of its fields is missing or
    /// malformed. The store holds data that this crate did not write.
    #[error("a stored key record is corrupt: its `{field}` field is missing or not {expected}")]
    Corrupt {
        /// The field as the store names it (`daily_limit`, `scopes`, ...).
        field: &'static str,
        /// What the field should hold.
        expected: &'static str,
        /// Why the field's text was refused, when a parser said so.
        #[source]
        source: Option<Cause>,
    },
    /// A database holds a newer schema of this crate's tables than this
    /// build knows: a later version of `lumyx-keys` migrated it. Opening it
    /// is refused rather than reading or writing rows whose layout may have
    /// changed; open it with that later version.
    #[error(
        "the database holds version {found} of the `{component}` schema, \
         newer than {known}, the latest this build knows; open it with a newer build"
    )]
    SchemaTooNew {
        /// The component whose schema it is (`lumyx_keys`, or the one
        /// [`migrate_schema`](crate::migrate_schema) was given).
        component: &'static str,
        /// The version the database holds.
        found: i64,
        /// The latest version this build knows.
        known: i64,
    },
    /// A setting is unusable, such as a Redis namespace with a brace or a
    /// Redis URL the client refuses.
    #[error("invalid {setting}: expected {expected}, got `{got}`")]
    Config {
        /// The setting: `Redis namespace`, `Redis URL`, ...
        setting: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// The value that came, as it may be shown: a URL with its password
        /// replaced by `***`.
        got: String,
        /// Why the value was refused, when a library said so.
        #[source]
        source: Option<Cause>,
    },
}
