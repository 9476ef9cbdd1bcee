#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod digest;
mod error;
mod format;
mod hint;
mod id;
mod key;
mod memory;
mod record;
mod redact;
#[cfg(feature = "redis")]
mod redis;
mod scan;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
#[cfg(any(feature = "redis", feature = "sqlite"))]
mod stored;
mod text;

pub use digest::{DIGEST_LEN, KeyDigest};
pub use error::Error;
pub use format::{
    CHECKSUM_LEN, KEY_LEN, KeyFormat, KeyPrefix, MAX_PREFIX_LEN, MIN_PREFIX_LEN, MIN_RANDOM_LEN,
};
pub use hint::KeyHint;
pub use id::KeyId;
pub use key::{ApiKey, ApiKeyRef};
/// The limits a record carries, from `lumyx-ratelimit`, which enforces them.
pub use lumyx_ratelimit::Limits;
/// The Redis URL a [`RedisKeyStore`] is built from, from `lumyx-redis`: its
/// `Display` and `Debug` never show the password.
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use lumyx_redis::RedisUrl;
pub use memory::{KeyIdHashBuilder, KeyIdHasher, MemoryKeyStore};
pub use record::{KeyRecord, KeyStatus, Scope, Scopes};
pub use redact::{REDACT_MIN_PIECE, REDACT_MIN_RUN, redact};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{KeyChange, KeyChanges, Migration, RedisKeyStore, RedisKeyStoreBuilder};
pub use scan::{Finding, Findings, MIN_SCAN_BUFFER_LEN, ReaderFindings, SCAN_BUFFER_LEN, Scanner};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{SqliteKeyStore, migrate_schema};
pub use store::{KeyStore, Verification, verify};
