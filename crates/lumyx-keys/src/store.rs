//! Where records live, and verification of a presented key against them.
//!
//! A store is looked up by digest on every request and by id from management
//! APIs. The trait is `async` because real stores (Redis) do I/O; the
//! in-memory store also answers synchronously for the hot path.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{ApiKeyRef, Error, KeyDigest, KeyId, KeyRecord, KeyStatus};

/// A pluggable store of [`KeyRecord`]s.
///
/// Implementations must make every write visible to every later read of
/// every instance sharing the store, so that a revocation takes effect at
/// once.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Adds a record.
    ///
    /// # Errors
    /// [`Error::Duplicate`] when a record with the same id is stored;
    /// [`Error::IdMismatch`] or [`Error::TimeOutOfRange`] when
    /// [`KeyRecord::validate`] refuses the record; [`Error::Store`] when the
    /// store fails.
    async fn insert(&self, record: KeyRecord) -> Result<(), Error>;

    /// Replaces the stored record with the same id; `false` when there is none.
    ///
    /// An update never lifts or postpones a revocation: when the stored
    /// record was revoked earlier than the new one says (or the new one says
    /// nothing), the earlier revocation is kept, so a stale copy written back
    /// by another instance cannot bring a revoked key back.
    ///
    /// # Errors
    /// [`Error::IdMismatch`] or [`Error::TimeOutOfRange`] when
    /// [`KeyRecord::validate`] refuses the record; [`Error::Store`] when the
    /// store fails.
    async fn update(&self, record: KeyRecord) -> Result<bool, Error>;

    /// Marks the key revoked from `at` on, unless it was revoked earlier, and
    /// answers the record as it is now; `None` when the id is unknown.
    ///
    /// # Errors
    /// [`Error::TimeOutOfRange`] when `at` is outside what a record holds
    /// (see [`KeyRecord::check_time`]); [`Error::Store`] when the store
    /// fails; [`Error::Corrupt`] when the stored record cannot be read back.
    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error>;

    /// The record of the key with this digest, the lookup of every request.
    ///
    /// # Errors
    /// [`Error::Store`] when the store fails; [`Error::Corrupt`] when the
    /// stored record cannot be read back.
    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error>;

    /// The record with this public id.
    ///
    /// # Errors
    /// As [`KeyStore::find_by_digest`].
    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error>;

    /// Every record, oldest first (ties broken by id).
    ///
    /// # Errors
    /// As [`KeyStore::find_by_digest`]: one corrupt record fails the whole
    /// list.
    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error>;
}

/// The outcome of checking a presented key: the record, or why it is refused.
///
/// A refusal is a value, not an error: `Err` from [`verify`] means the store
/// could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The key is known and active: a server goes on to check its scope and
    /// its rate limits.
    Valid(Arc<KeyRecord>),
    /// No record has this key's digest: a server answers 401
    /// (`invalid_api_key`, as for a key that does not parse).
    Unknown,
    /// The key's record expired: a server answers 403 (`api_key_expired`).
    Expired(Arc<KeyRecord>),
    /// The key's record was revoked: a server answers 403
    /// (`api_key_revoked`).
    Revoked(Arc<KeyRecord>),
}

impl Verification {
    /// Classifies what a store found for a key at `now`.
    #[inline]
    pub fn of(found: Option<Arc<KeyRecord>>, now: DateTime<Utc>) -> Verification {
        let Some(record) = found else {
            return Verification::Unknown;
        };
        match record.status(now) {
            KeyStatus::Active => Verification::Valid(record),
            KeyStatus::Expired(_) => Verification::Expired(record),
            KeyStatus::Revoked(_) => Verification::Revoked(record),
        }
    }

    /// The record, when the key is valid.
    pub fn valid_record(&self) -> Option<&Arc<KeyRecord>> {
        match self {
            Verification::Valid(record) => Some(record),
            _ => None,
        }
    }
}

/// Verifies a parsed key against any store at time `now`.
///
/// ```
/// use chrono::Utc;
/// use lumyx_keys::{verify, ApiKey, KeyRecord, KeyStore, MemoryKeyStore, Verification};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Any store; through the trait its methods are the async ones.
/// let store: &dyn KeyStore = &MemoryKeyStore::new();
/// let key = ApiKey::generate()?;
/// store.insert(KeyRecord::new(key.as_key_ref(), "demo", "acct_1", Utc::now())).await?;
///
/// let verdict = verify(store, key.as_key_ref(), Utc::now()).await?;
/// assert!(matches!(verdict, Verification::Valid(record) if record.id == key.id()));
///
/// store.revoke(&key.id(), Utc::now()).await?;
/// let verdict = verify(store, key.as_key_ref(), Utc::now()).await?;
/// assert!(matches!(verdict, Verification::Revoked(_)));
/// # Ok::<(), lumyx_keys::Error>(())
/// # }).unwrap();
/// ```
pub async fn verify<S>(
    store: &S,
    key: ApiKeyRef<'_>,
    now: DateTime<Utc>,
) -> Result<Verification, Error>
where
    S: KeyStore + ?Sized,
{
    let found = store.find_by_digest(&key.digest()).await?;
    Ok(Verification::of(found, now))
}

/// The revocation an update keeps: the earlier of the stored one and the
/// new one; see [`KeyStore::update`].
pub(crate) fn earliest_revocation(
    stored: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    match (stored, updated) {
        (Some(stored), Some(updated)) => Some(stored.min(updated)),
        (stored, updated) => stored.or(updated),
    }
}

/// Sorts records as [`KeyStore::list`] answers them: oldest first, then by id.
pub(crate) fn sort_oldest_first(records: &mut [Arc<KeyRecord>]) {
    records.sort_by_key(|record| (record.created_at, record.id));
}
