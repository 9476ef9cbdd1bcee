//! The gate's table of keys: every record the gate may admit, in memory,
//! each with its usage counters, so that serving a request never waits for
//! a store and counting it needs no second lookup.
//!
//! The table is a replica: a store (memory, Redis, a database) holds the
//! records, and [`Keys`](crate::Keys) loads them at start and keeps the
//! table current with every write (its own, and in Redis other instances').
//! A presented key that is not in the table is unknown: forged keys never
//! reach the store.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use lumyx_keys::{KeyDigest, KeyId, KeyIdHashBuilder, KeyRecord};
use lumyx_ratelimit::UsageCounter;

/// Shards of the table; a power of two.
const SHARDS: usize = 16;

type Shard = HashMap<KeyId, Arc<KeyEntry>, KeyIdHashBuilder>;

/// One key of the table: its record as the store has it, and its usage
/// counters (kept across updates of the record).
pub struct KeyEntry {
    record: Arc<KeyRecord>,
    usage: Arc<UsageCounter>,
}

impl KeyEntry {
    /// The key's record.
    pub fn record(&self) -> &Arc<KeyRecord> {
        &self.record
    }

    /// The key's usage counters (in memory; a Redis gate counts in Redis).
    pub fn usage(&self) -> &UsageCounter {
        &self.usage
    }
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.record.id)
            .field("hint", &self.record.hint)
            .finish_non_exhaustive()
    }
}

/// Every key the gate serves, by id, in shards behind read-write locks.
///
/// ```
/// use std::sync::Arc;
/// use chrono::Utc;
/// use lumyx_gate::KeyTable;
/// use lumyx_keys::{ApiKey, KeyRecord};
///
/// let table = KeyTable::new();
/// let key = ApiKey::generate()?;
/// table.put(Arc::new(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())));
/// let entry = table.find_by_digest(&key.digest()).expect("in the table");
/// assert_eq!(entry.record().owner, "acct_1");
/// assert_eq!(format!("{table:?}"), "KeyTable { keys: 1, .. }");
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
pub struct KeyTable {
    shards: Box<[RwLock<Shard>]>,
}

impl Default for KeyTable {
    fn default() -> Self {
        KeyTable::new()
    }
}

impl KeyTable {
    /// An empty table.
    pub fn new() -> KeyTable {
        KeyTable::with_capacity(0)
    }

    /// An empty table with room for `keys` keys.
    pub fn with_capacity(keys: usize) -> KeyTable {
        let per_shard = keys.div_ceil(SHARDS);
        KeyTable {
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
        // A byte the map's own hash does not use for buckets or tags.
        &self.shards[id.as_bytes()[4] as usize % SHARDS]
    }

    fn read(&self, id: &KeyId) -> RwLockReadGuard<'_, Shard> {
        // Every write is one map operation: a panic cannot leave one half done.
        self.shard(id)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, id: &KeyId) -> RwLockWriteGuard<'_, Shard> {
        self.shard(id)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of the key with this digest: found by the id the digest
    /// derives, then the whole digest compared in constant time.
    #[inline]
    pub fn find_by_digest(&self, digest: &KeyDigest) -> Option<Arc<KeyEntry>> {
        let id = digest.id();
        self.read(&id)
            .get(&id)
            .filter(|entry| entry.record.digest == *digest)
            .cloned()
    }

    /// The entry of the key with this id.
    pub fn find_by_id(&self, id: &KeyId) -> Option<Arc<KeyEntry>> {
        self.read(id).get(id).cloned()
    }

    /// Adds a record, or replaces the one with its id, keeping that key's
    /// usage counters.
    pub fn put(&self, record: Arc<KeyRecord>) {
        let id = record.id;
        let mut shard = self.write(&id);
        let usage = shard
            .get(&id)
            .map(|entry| Arc::clone(&entry.usage))
            .unwrap_or_default();
        shard.insert(id, Arc::new(KeyEntry { record, usage }));
    }

    /// Removes the key with this id.
    pub fn remove(&self, id: &KeyId) {
        self.write(id).remove(id);
    }

    /// Makes the table hold exactly `records`: new ones are added, changed
    /// ones replaced (keeping their usage), the others removed.
    pub fn replace_all(&self, records: impl IntoIterator<Item = Arc<KeyRecord>>) {
        let mut fresh: HashMap<KeyId, Arc<KeyRecord>, KeyIdHashBuilder> = HashMap::default();
        fresh.extend(records.into_iter().map(|record| (record.id, record)));
        for shard in self.shards.iter() {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.retain(|id, _| fresh.contains_key(id));
        }
        for record in fresh.into_values() {
            self.put(record);
        }
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every record, oldest first (ties broken by id).
    pub fn records(&self) -> Vec<Arc<KeyRecord>> {
        let mut records: Vec<Arc<KeyRecord>> = self
            .shards
            .iter()
            .flat_map(|shard| {
                let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
                shard
                    .values()
                    .map(|entry| Arc::clone(&entry.record))
                    .collect::<Vec<_>>()
            })
            .collect();
        records.sort_by_key(|record| (record.created_at, record.id));
        records
    }
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTable")
            .field("keys", &self.len())
            .finish_non_exhaustive()
    }
}
