//! The gate's table of keys: every record the gate may admit, in memory,
//! each with its usage counters, so that serving a request never waits for
//! a store and counting it needs no second lookup.
//!
//! The table is a replica: a store (memory, Redis, a database) holds the
//! records, and [`Keys`](crate::Keys) loads them at start and keeps the
//! table current with every write (its own, and in Redis other instances').
//! A presented key that is not in the table is unknown: forged keys never
//! reach the store.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Utc};
use http::HeaderValue;
use lumyx_keys::{KeyDigest, KeyId, KeyIdHashBuilder, KeyRecord};
use lumyx_ratelimit::{KeyLimiter, RateLimitHeaders, Timestamp, UsageCounter};

/// Shards of the table; a power of two.
const SHARDS: usize = 16;

type Shard = HashMap<KeyId, Arc<KeyEntry>, KeyIdHashBuilder>;

/// A shard's lock on cache lines of its own: every check takes a read lock
/// (an atomic add to the lock's word), and shards sharing a line would make
/// threads reading different shards take turns with that line. 128 bytes:
/// Intel's adjacent-line prefetcher moves lines in pairs (crossbeam's
/// `CachePadded` pads as much on x86-64).
#[repr(align(128))]
struct PaddedShard(RwLock<Shard>);

/// One key of the table: its record as the store has it, the moments it
/// stops working (in the clock's microseconds, so a check compares
/// integers), and its state in memory, shared with the entries that replace
/// this one when the record changes: its limits (a change of limits keeps
/// them) and usage counts.
pub struct KeyEntry {
    record: KeyRecord,
    expires_at: u64,
    revoked_at: u64,
    /// The value of `ratelimit-policy`, which changes only with the limits.
    policy: HeaderValue,
    state: Arc<KeyState>,
}

/// The state of a key that outlives changes of its record.
#[derive(Debug, Default)]
struct KeyState {
    limiter: KeyLimiter,
    usage: UsageCounter,
}

impl KeyEntry {
    /// The entry of `record`, with `policy` the value of its limits'
    /// `ratelimit-policy` ([`policy_header`]).
    fn new(record: KeyRecord, policy: HeaderValue, state: Arc<KeyState>) -> KeyEntry {
        KeyEntry {
            expires_at: micros_or_never(record.expires_at),
            revoked_at: micros_or_never(record.revoked_at),
            policy,
            record,
            state,
        }
    }

    /// The key's record.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// The value of the `ratelimit-policy` header of the key's limits.
    pub fn policy_header(&self) -> &HeaderValue {
        &self.policy
    }

    /// The key's limits in memory (a Redis gate keeps them in Redis).
    pub fn limiter(&self) -> &KeyLimiter {
        &self.state.limiter
    }

    /// The key's usage counters in memory (a Redis gate counts in Redis).
    pub fn usage(&self) -> &UsageCounter {
        &self.state.usage
    }

    /// Whether the key has expired at `now`.
    #[inline]
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now.unix_micros() >= self.expires_at
    }

    /// Whether the key is revoked at `now` (a rotated key's old key is
    /// revoked at the end of its grace period).
    #[inline]
    pub fn is_revoked(&self, now: Timestamp) -> bool {
        now.unix_micros() >= self.revoked_at
    }

    /// When the key stops working (expiry or revocation, the earlier), if
    /// within `window` of `now`.
    #[inline]
    pub fn stops_within(
        &self,
        now: Timestamp,
        window: std::time::Duration,
    ) -> Option<DateTime<Utc>> {
        let end = self.expires_at.min(self.revoked_at);
        let window = u64::try_from(window.as_micros()).unwrap_or(u64::MAX);
        if end == NEVER || end.saturating_sub(now.unix_micros()) > window {
            return None;
        }
        Some(Timestamp::from_unix_micros(end).to_utc())
    }
}

/// How many distinct pairs of limits get a `ratelimit-policy` value made
/// once for the process.
const SHARED_POLICIES: usize = 4096;

/// The value of `ratelimit-policy` for these limits. Keys share a few pairs
/// of limits, so the first [`SHARED_POLICIES`] pairs seen get a static value,
/// made once and never freed (under 100 bytes each), whose copies on every
/// response touch no reference count; any pair beyond gets a value of its own.
fn policy_header(rate_limit_per_minute: u32, daily_limit: u32) -> HeaderValue {
    static SHARED: Mutex<BTreeMap<(u32, u32), HeaderValue>> = Mutex::new(BTreeMap::new());
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    let pair = (rate_limit_per_minute, daily_limit);
    if let Some(kept) = shared.get(&pair) {
        return kept.clone();
    }
    let value = RateLimitHeaders::policy_value(rate_limit_per_minute, daily_limit);
    if shared.len() >= SHARED_POLICIES {
        return value;
    }
    // Visible ASCII: it was formatted for a header.
    let Ok(text) = value.to_str() else {
        return value;
    };
    let kept = HeaderValue::from_static(Box::leak(text.to_owned().into_boxed_str()));
    shared.insert(pair, kept.clone());
    kept
}

/// The microseconds of a time that never comes.
const NEVER: u64 = u64::MAX;

/// A record's time in microseconds since the epoch (times before it are the
/// epoch: they have passed for every clock), or [`NEVER`].
fn micros_or_never(time: Option<DateTime<Utc>>) -> u64 {
    time.map_or(NEVER, |time| {
        // Record times end at 9999-12-31, well within u64 microseconds.
        u64::try_from(time.timestamp_micros()).unwrap_or(0)
    })
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
/// use chrono::Utc;
/// use lumyx_gate::KeyTable;
/// use lumyx_keys::{ApiKey, KeyRecord};
///
/// let table = KeyTable::new();
/// let key = ApiKey::generate()?;
/// table.put(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now()));
/// let entry = table.find_by_digest(&key.digest()).expect("in the table");
/// assert_eq!(entry.record().owner, "acct_1");
/// assert_eq!(format!("{table:?}"), "KeyTable { keys: 1, .. }");
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
pub struct KeyTable {
    shards: Box<[PaddedShard]>,
    /// How many keys the table holds in each Redis Cluster hash slot
    /// ([`KeyId::cluster_slot`]), for [`Keys::new_key`](crate::Keys::new_key).
    slot_loads: Box<[AtomicU32]>,
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
                    PaddedShard(RwLock::new(Shard::with_capacity_and_hasher(
                        per_shard,
                        Default::default(),
                    )))
                })
                .collect(),
            slot_loads: (0..KeyId::CLUSTER_SLOTS)
                .map(|_| AtomicU32::new(0))
                .collect(),
        }
    }

    fn slot_load(&self, id: &KeyId) -> &AtomicU32 {
        &self.slot_loads[usize::from(id.cluster_slot())]
    }

    /// How many of the table's keys sit in this Redis Cluster hash slot
    /// ([`KeyId::cluster_slot`]); 0 for a slot past the last.
    pub fn keys_in_slot(&self, slot: u16) -> u32 {
        self.slot_loads
            .get(usize::from(slot))
            .map_or(0, |load| load.load(Ordering::Relaxed))
    }

    fn shard(&self, id: &KeyId) -> &RwLock<Shard> {
        // A byte the map's own hash does not use for buckets or tags.
        &self.shards[id.as_bytes()[4] as usize % SHARDS].0
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
    /// limits and usage counts.
    pub fn put(&self, record: KeyRecord) {
        let id = record.id;
        // Before the shard's lock: the values' lock is not held under it.
        let policy = policy_header(
            record.limits.rate_limit_per_minute(),
            record.limits.daily_limit(),
        );
        let mut shard = self.write(&id);
        let state = shard
            .get(&id)
            .map(|entry| Arc::clone(&entry.state))
            .unwrap_or_default();
        if shard
            .insert(id, Arc::new(KeyEntry::new(record, policy, state)))
            .is_none()
        {
            self.slot_load(&id).fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Removes the key with this id.
    pub fn remove(&self, id: &KeyId) {
        if self.write(id).remove(id).is_some() {
            self.slot_load(id).fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Makes the table hold exactly `records`: new ones are added, changed
    /// ones replaced (keeping their usage), the others removed.
    pub fn replace_all(&self, records: impl IntoIterator<Item = KeyRecord>) {
        let mut fresh: HashMap<KeyId, KeyRecord, KeyIdHashBuilder> = HashMap::default();
        fresh.extend(records.into_iter().map(|record| (record.id, record)));
        for PaddedShard(shard) in self.shards.iter() {
            let mut shard = shard.write().unwrap_or_else(PoisonError::into_inner);
            shard.retain(|id, _| {
                let kept = fresh.contains_key(id);
                if !kept {
                    self.slot_load(id).fetch_sub(1, Ordering::Relaxed);
                }
                kept
            });
        }
        for record in fresh.into_values() {
            self.put(record);
        }
    }

    /// How many keys the table holds.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|PaddedShard(shard)| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    /// Whether the table holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every entry, in no particular order: what a task that saves the
    /// keys' counts walks (cloning only the entries' reference counts).
    pub fn entries(&self) -> Vec<Arc<KeyEntry>> {
        self.shards
            .iter()
            .flat_map(|PaddedShard(shard)| {
                let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
                shard.values().cloned().collect::<Vec<_>>()
            })
            .collect()
    }

    /// Every record, oldest first (ties broken by id).
    pub fn records(&self) -> Vec<Arc<KeyRecord>> {
        let mut records: Vec<Arc<KeyRecord>> = self
            .shards
            .iter()
            .flat_map(|PaddedShard(shard)| {
                let shard = shard.read().unwrap_or_else(PoisonError::into_inner);
                shard
                    .values()
                    .map(|entry| Arc::new(entry.record.clone()))
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
