//! A concurrent in-memory [`KeyStore`], for one server instance and tests.
//!
//! Records are kept in shards behind read-write locks, keyed by id. The id is
//! the first 8 bytes of the SHA-256 digest, so it is uniformly random and
//! serves as its own hash: a lookup by digest derives the id, finds the
//! record, then compares the whole digest in constant time.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::earliest_revocation;
use crate::{ApiKeyRef, Error, KeyDigest, KeyId, KeyRecord, KeyStore, Verification};

/// Shards of the map; a power of two so that picking one is a mask.
const SHARDS: usize = 16;

type Shard = HashMap<KeyId, Arc<KeyRecord>, KeyIdHashBuilder>;

/// A thread-safe in-memory key store.
///
/// Besides the async [`KeyStore`] methods it answers lookups synchronously,
/// which is what a single-instance server's hot path uses.
///
/// ```
/// use chrono::Utc;
/// use lumyx_keys::{ApiKey, KeyRecord, MemoryKeyStore, Verification};
///
/// let store = MemoryKeyStore::new();
/// let key = ApiKey::generate()?;
/// store.insert(KeyRecord::new(key.as_key_ref(), "demo", "acct_1", Utc::now()))?;
///
/// assert!(matches!(store.verify(key.as_key_ref(), Utc::now()), Verification::Valid(_)));
/// let other = ApiKey::generate()?;
/// assert_eq!(store.verify(other.as_key_ref(), Utc::now()), Verification::Unknown);
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
///
/// `Debug` shows how many records the store holds, not the records.
pub struct MemoryKeyStore {
    shards: Box<[RwLock<Shard>]>,
}

impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A store may hold millions of records: a log line gets the count.
        f.debug_struct("MemoryKeyStore")
            .field("records", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryKeyStore {
    fn default() -> Self {
        MemoryKeyStore::new()
    }
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> MemoryKeyStore {
        MemoryKeyStore {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
        }
    }

    /// An empty store with room for `records` records without growing.
    pub fn with_capacity(records: usize) -> MemoryKeyStore {
        let per_shard = records.div_ceil(SHARDS);
        MemoryKeyStore {
            shards: (0..SHARDS)
                .map(|_| {
                    RwLock::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        Default::default(),
                    ))
                })
                .collect(),
        }
    }

    fn shard(&self, id: &KeyId) -> &RwLock<Shard> {
        // Byte 4 is not among the bytes the map's hash uses to pick a bucket
        // (the low ones) or a tag (the high ones) until a shard holds
        // billions of records.
        &self.shards[id.as_bytes()[4] as usize % SHARDS]
    }

    fn read(&self, id: &KeyId) -> RwLockReadGuard<'_, Shard> {
        // A panic while holding the lock cannot leave a map half-written
        // (each write is one map operation), so poisoning is ignored.
        self.shard(id)
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self, id: &KeyId) -> RwLockWriteGuard<'_, Shard> {
        self.shard(id)
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many records the store holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// Whether the store holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// # Synchronous twins of the [`KeyStore`] methods
///
/// Each has the name of the trait method it mirrors and does the same
/// without awaiting: on a `MemoryKeyStore` these are called, through the
/// trait (`&dyn KeyStore`, a generic `S: KeyStore`) the async ones. The
/// lookups, which cannot fail in memory, answer without a `Result`.
impl MemoryKeyStore {
    /// Adds a record; the twin of [`KeyStore::insert`].
    pub fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        record.validate()?;
        let id = record.id;
        let mut shard = self.write(&id);
        if shard.contains_key(&id) {
            return Err(Error::Duplicate(id));
        }
        shard.insert(id, Arc::new(record));
        Ok(())
    }

    /// Replaces the record with the same id; the twin of [`KeyStore::update`].
    pub fn update(&self, mut record: KeyRecord) -> Result<bool, Error> {
        record.validate()?;
        let id = record.id;
        let mut shard = self.write(&id);
        match shard.get_mut(&id) {
            Some(stored) => {
                record.revoked_at = earliest_revocation(stored.revoked_at, record.revoked_at);
                *stored = Arc::new(record);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Marks a key revoked; the twin of [`KeyStore::revoke`].
    pub fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        let at = KeyRecord::check_time("revoked_at", at)?;
        let mut shard = self.write(id);
        let Some(stored) = shard.get_mut(id) else {
            return Ok(None);
        };
        let revoked_at = earliest_revocation(stored.revoked_at, Some(at));
        if revoked_at != stored.revoked_at {
            let mut revoked = KeyRecord::clone(stored);
            revoked.revoked_at = revoked_at;
            *stored = Arc::new(revoked);
        }
        Ok(Some(Arc::clone(stored)))
    }

    /// The record with this digest; the twin of [`KeyStore::find_by_digest`].
    #[inline]
    pub fn find_by_digest(&self, digest: &KeyDigest) -> Option<Arc<KeyRecord>> {
        let id = digest.id();
        let shard = self.read(&id);
        shard
            .get(&id)
            .filter(|record| record.digest == *digest)
            .cloned()
    }

    /// The record with this id; the twin of [`KeyStore::find_by_id`].
    pub fn find_by_id(&self, id: &KeyId) -> Option<Arc<KeyRecord>> {
        self.read(id).get(id).cloned()
    }

    /// Verifies a parsed key at `now`, synchronously: the hot path of a
    /// single-instance server, and the twin of the free function
    /// [`verify`](crate::verify) on this store.
    #[inline]
    pub fn verify(&self, key: ApiKeyRef<'_>, now: DateTime<Utc>) -> Verification {
        Verification::of(self.find_by_digest(&key.digest()), now)
    }

    /// Every record, oldest first (ties broken by id); the twin of
    /// [`KeyStore::list`].
    pub fn list(&self) -> Vec<Arc<KeyRecord>> {
        let mut records: Vec<_> = self
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.read().unwrap_or_else(|p| p.into_inner());
                shard.values().cloned().collect::<Vec<_>>()
            })
            .collect();
        crate::store::sort_oldest_first(&mut records);
        records
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        MemoryKeyStore::insert(self, record)
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, Error> {
        MemoryKeyStore::update(self, record)
    }

    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        MemoryKeyStore::revoke(self, id, at)
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error> {
        Ok(MemoryKeyStore::find_by_digest(self, digest))
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        Ok(MemoryKeyStore::find_by_id(self, id))
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error> {
        Ok(MemoryKeyStore::list(self))
    }
}

/// The hasher for maps keyed by [`KeyId`]: an id hashes itself as one `u64`
/// that is already uniformly random, so that value is the hash. Only ids
/// that stores accepted (derived from SHA-256 digests) are ever inserted, so
/// nobody can choose colliding entries. For other keys it falls back to a
/// simple multiplicative hash, which is not flood-resistant.
///
/// ```
/// use std::collections::HashMap;
/// use lumyx_keys::{ApiKey, KeyIdHashBuilder};
///
/// let mut names: HashMap<_, _, KeyIdHashBuilder> = HashMap::default();
/// names.insert(ApiKey::generate()?.id(), "ci");
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyIdHasher(u64);

/// Builds [`KeyIdHasher`]s: the hasher of maps keyed by [`KeyId`].
pub type KeyIdHashBuilder = BuildHasherDefault<KeyIdHasher>;

impl Hasher for KeyIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `KeyId`; kept correct for any other input.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
