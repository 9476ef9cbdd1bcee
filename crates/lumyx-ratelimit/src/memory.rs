use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::policy::{Outcome, PackedState, StepBack, day_of, until_midnight};
use crate::{Clock, Decision, FastHashBuilder, Limits, Snapshot, SystemClock};

/// The number of shards: enough that threads rarely meet on one lock, few
/// enough that their lock words stay in the first-level cache beside the
/// keys' data (64 shards measured 15% more L1 misses per decision than 16,
/// and were slower with 2 threads).
const SHARDS: usize = 16;

/// A shard is swept no earlier than when it holds this many keys.
const MIN_SWEEP: usize = 64;

/// The clock time between the sweeps of two shards in a day's pass, so that
/// a pass is spread over a minute instead of stalling one decision.
const SWEEP_SPACING_MICROS: u64 = 1_000_000;

/// `next_sweep` before the first decision, which schedules the first pass
/// at the next midnight: a new limiter has nothing idle to sweep.
const UNSCHEDULED: u64 = 0;

/// An in-memory limiter: for every key a per-minute token bucket (GCRA) and a
/// per-UTC-day counter, decided together in one atomic step.
///
/// * Keyed by any `K: Hash + Eq`; look-ups take a borrowed form (`&str` for
///   `String` keys) and the key is cloned only when first seen.
/// * Limits are passed with every call, so each key has its own, and changing
///   them keeps the key's state.
/// * 16 shards, each an `RwLock<HashMap<K, AtomicU64>>`, keys hashed by
///   default with the randomly seeded [`FastHashBuilder`]. A known key is
///   decided under the read lock by one compare-and-swap of its 8-byte state
///   (both policies packed in one word), so requests never wait for each
///   other; only a new key takes the write lock.
/// * Memory reclaims itself, with no background thread: the state of a key
///   whose bucket is full and whose count is from a past day (a key that
///   looks exactly like a new one) is dropped by the pass over every shard
///   that decisions make after each UTC midnight (a key can only become idle
///   when its day is past: see [`MemoryLimiter::with_daily_sweeps`]), and by
///   the insert that finds its shard has doubled since its last sweep.
///
/// ```
/// use std::time::Duration;
/// use lumyx_ratelimit::{DeniedBy, Limits, ManualClock, MemoryLimiter};
///
/// let clock = ManualClock::at("2026-11-27T10:00:00Z".parse()?);
/// let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
/// let limits = Limits::new(2, 1000)?;
///
/// assert!(limiter.check("key_1", limits).is_admitted());
/// assert!(limiter.check("key_1", limits).is_admitted());
/// let denied = limiter.check("key_1", limits);
/// assert_eq!(denied.denial().unwrap().denied_by, DeniedBy::Minute);
/// assert_eq!(denied.retry_after(), Some(Duration::from_secs(30)));
///
/// clock.advance(Duration::from_secs(30));
/// assert!(limiter.check("key_1", limits).is_admitted());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct MemoryLimiter<K, C = SystemClock, S = FastHashBuilder> {
    shards: Box<[Shard<K, S>]>,
    clock: C,
    hasher: S,
    /// The clock time (µs) from which the next shard of a daily pass is due;
    /// after the last shard, the next UTC midnight.
    next_sweep: AtomicU64,
    /// The shard the next sweep of a daily pass takes, and the UTC day the
    /// pass began (a pass overtaken by midnight starts again).
    sweep_cursor: AtomicUsize,
    sweep_day: AtomicU32,
    /// Whether decisions make the daily sweeps.
    daily_sweeps: bool,
}

/// The usual in-memory limiter: `String` keys, the system clock.
pub type DefaultMemoryLimiter = MemoryLimiter<String>;

/// One shard on its own cache lines, so two threads on two shards do not
/// bounce one line between cores.
#[repr(align(128))]
struct Shard<K, S> {
    inner: RwLock<ShardMap<K, S>>,
}

/// On cache lines of its own, apart from the lock word: the lock word is
/// written by every decision, the map's header only by inserts, so readers on
/// two cores keep their copies of the header instead of missing on it inside
/// the lock. 128 bytes, not 64: x86 prefetches lines in aligned pairs.
#[repr(align(128))]
struct ShardMap<K, S> {
    /// Keyed by `K` with the limiter's own hasher: the slot is just the key
    /// and 8 bytes of state (16 bytes for a `u64` key).
    entries: HashMap<K, AtomicU64, S>,
    /// The keys whose state is ahead of the clock by more than a minute
    /// (the clock stepped back), with what they record of it; almost always
    /// empty. Read and written under the write lock only.
    step_backs: HashMap<K, StepBack, S>,
    sweep_at: usize,
}

impl<K: Hash + Eq, S: BuildHasher> ShardMap<K, S> {
    fn insert(&mut self, key: K, state: AtomicU64, now: u64) {
        if self.entries.len() >= self.sweep_at {
            self.sweep(now);
        }
        self.entries.insert(key, state);
    }

    fn sweep(&mut self, now: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|_, state| !PackedState::load(state).is_idle(now));
        let entries = &self.entries;
        // A record of a step back is kept only while its key still has the
        // state it was made with.
        self.step_backs.retain(|key, step_back| {
            entries
                .get(key)
                .is_some_and(|state| PackedState::load(state).tat(now) == step_back.tat)
        });
        let kept = self.entries.len();
        self.sweep_at = (kept * 2).max(MIN_SWEEP);
        // Give memory back after a large drop, keeping room to grow to the next sweep.
        if self.entries.capacity() > 4 * self.sweep_at {
            self.entries.shrink_to(self.sweep_at);
        }
        self.step_backs.shrink_to_fit();
        before - kept
    }
}

impl MemoryLimiter<String> {
    /// A limiter with `String` keys on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }
}

impl Default for MemoryLimiter<String> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, C> MemoryLimiter<K, C> {
    /// A limiter on `clock` (e.g. a [`ManualClock`](crate::ManualClock)).
    pub fn with_clock(clock: C) -> Self {
        Self::with_clock_and_hasher(clock, FastHashBuilder::default())
    }
}

impl<K, C, S: Clone> MemoryLimiter<K, C, S> {
    /// A limiter on `clock` hashing keys with `hasher`. The default,
    /// [`FastHashBuilder`], is fast and randomly seeded; std's
    /// [`RandomState`](std::hash::RandomState) resists hash flooding by keys an
    /// attacker can choose, at several times the cost.
    pub fn with_clock_and_hasher(clock: C, hasher: S) -> Self {
        let shards = (0..SHARDS)
            .map(|_| Shard {
                inner: RwLock::new(ShardMap {
                    entries: HashMap::with_hasher(hasher.clone()),
                    step_backs: HashMap::with_hasher(hasher.clone()),
                    sweep_at: MIN_SWEEP,
                }),
            })
            .collect();
        Self {
            shards,
            clock,
            hasher,
            next_sweep: AtomicU64::new(UNSCHEDULED),
            sweep_cursor: AtomicUsize::new(0),
            sweep_day: AtomicU32::new(0),
            daily_sweeps: true,
        }
    }

    /// Whether decisions sweep every shard once a UTC day (the default):
    /// from midnight on, decisions sweep the 16 shards one by one, one a
    /// second of clock time, dropping the state of keys last used on a past
    /// day whose bucket is full, so memory goes back while requests come
    /// even when no new key arrives. Outside such a pass a decision pays one
    /// load and a comparison for it. `false` leaves sweeping to inserts (a
    /// shard that doubled since its last sweep) and [`MemoryLimiter::sweep`].
    #[must_use]
    pub fn with_daily_sweeps(mut self, enabled: bool) -> Self {
        self.daily_sweeps = enabled;
        self
    }
}

impl<K, C, S> MemoryLimiter<K, C, S> {
    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The number of keys with state.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| read(shard).entries.len())
            .sum()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of keys the maps can hold without reallocating (for memory
    /// accounting: each slot costs [`MemoryLimiter::SLOT_BYTES`] plus one control byte).
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| read(shard).entries.capacity())
            .sum()
    }

    /// The bytes of limiter state per key (both policies): 8.
    pub const STATE_BYTES: usize = std::mem::size_of::<AtomicU64>();

    /// The bytes of one map slot: the key and the state.
    pub const SLOT_BYTES: usize = std::mem::size_of::<(K, AtomicU64)>();
}

impl<K, C, S> MemoryLimiter<K, C, S>
where
    K: Hash + Eq,
    C: Clock,
    S: BuildHasher,
{
    /// Decides one request of `key` under `limits`, consuming from both
    /// policies iff both admit it.
    pub fn check<Q>(&self, key: &Q, limits: Limits) -> Decision
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shard = self.shard(key);
        // Read before the lock, so the read overlaps the lookup; see
        // `apply_shared` for when it is read again.
        let read_before = self.clock.now().unix_micros();
        let map = read(shard);
        let known = map.entries.get(key).map(|cell| {
            let outcome = PackedState::apply_shared(cell, limits, &self.clock, read_before);
            let recorded = !map.step_backs.is_empty() && map.step_backs.contains_key(key);
            (outcome, recorded)
        });
        drop(map);
        let outcome = match known {
            Some((outcome, recorded)) if outcome.behind_since().is_none() => {
                if recorded {
                    // The clock is back: the record of the step back no
                    // longer stands (kept, it would later count the time the
                    // clock spent ahead again as time spent behind).
                    write(shard).step_backs.remove(key);
                }
                outcome
            }
            // New, or ahead of the clock by more than a minute: decided
            // under the write lock, with the key's record of the step back.
            _ => self.check_exclusive(shard, key, limits),
        };
        // The snapshot's arithmetic runs after the lock is released, and
        // before a sweep, so the outcome need not be kept across a call.
        let now = outcome.now();
        let decision = outcome.decision(limits);
        if self.daily_sweeps && now >= self.next_sweep.load(Ordering::Relaxed) {
            self.sweep_next_shard(now);
        }
        decision
    }

    /// [`MemoryLimiter::check`] under the shard's write lock: inserts a new
    /// key, and keeps the records of clock step backs.
    #[cold]
    fn check_exclusive<Q>(&self, shard: &Shard<K, S>, key: &Q, limits: Limits) -> Outcome
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = write(shard);
        let now = self.clock.now().unix_micros();
        let Some(cell) = map.entries.get(key) else {
            let mut state = PackedState::default();
            let outcome = state.apply(limits, now, None);
            map.insert(key.to_owned(), AtomicU64::new(state.word()), now);
            return outcome;
        };
        // No other thread writes the state while the write lock is held.
        let mut state = PackedState::load(cell);
        let recorded = map.step_backs.get(key).copied();
        let outcome = state.apply(limits, now, recorded);
        cell.store(state.word(), Ordering::Release);
        match outcome.step_back_of(state, now) {
            Some(step_back) if recorded != Some(step_back) => {
                map.step_backs.insert(key.to_owned(), step_back);
            }
            Some(_) => {}
            None if recorded.is_some() => {
                map.step_backs.remove(key);
            }
            None => {}
        }
        outcome
    }

    /// The state of `key` under `limits` now, consuming nothing and creating
    /// no state for an unknown key.
    pub fn peek<Q>(&self, key: &Q, limits: Limits) -> Snapshot
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = read(self.shard(key));
        let now = self.clock.now().unix_micros();
        let state = map.entries.get(key).map(PackedState::load);
        let recorded = map.step_backs.get(key).copied();
        state.unwrap_or_default().peek(limits, now, recorded)
    }

    /// Drops the state of every idle key now (full bucket, nothing counted
    /// today) and returns how many were dropped. Never needed for bounded
    /// memory, since decisions sweep on their own; useful before measuring.
    pub fn sweep(&self) -> usize {
        let now = self.clock.now().unix_micros();
        self.shards
            .iter()
            .map(|shard| write(shard).sweep(now))
            .sum()
    }

    /// Sweeps the next shard of the daily pass, if this decision claims the
    /// step: one shard a second; after the last one the next pass is due at
    /// the next UTC midnight.
    #[cold]
    fn sweep_next_shard(&self, now: u64) {
        let due = self.next_sweep.load(Ordering::Relaxed);
        let next = if due == UNSCHEDULED {
            now.saturating_add(until_midnight(now))
        } else {
            now.saturating_add(SWEEP_SPACING_MICROS)
        };
        let claimed = now >= due
            && self
                .next_sweep
                .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok();
        if !claimed || due == UNSCHEDULED {
            return;
        }
        // Only the claimant of a step moves the pass on.
        let today = day_of(now);
        let mut shard = self.sweep_cursor.load(Ordering::Relaxed);
        if self.sweep_day.load(Ordering::Relaxed) != today {
            // A pass starts, or one begun before midnight starts again, so
            // every shard is swept after yesterday's state became idle.
            self.sweep_day.store(today, Ordering::Relaxed);
            shard = 0;
        }
        write(&self.shards[shard]).sweep(now);
        if shard + 1 < SHARDS {
            self.sweep_cursor.store(shard + 1, Ordering::Relaxed);
        } else {
            self.sweep_cursor.store(0, Ordering::Relaxed);
            let midnight = now.saturating_add(until_midnight(now));
            self.next_sweep.store(midnight, Ordering::Relaxed);
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Shard<K, S> {
        // Bits 32.. pick the shard: the map (same hasher, same hash) uses the
        // low bits for the bucket and the top 7 for its tags, so neither loses
        // entropy within a shard.
        let hash = self.hasher.hash_one(key);
        &self.shards[(hash >> 32) as usize % SHARDS]
    }
}

// A panic under a lock (only possible in a user's Hash or Eq) leaves every
// state valid: each is one atomic word. Hence poisoning is ignored.

fn read<K, S>(shard: &Shard<K, S>) -> RwLockReadGuard<'_, ShardMap<K, S>> {
    shard.inner.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<K, S>(shard: &Shard<K, S>) -> RwLockWriteGuard<'_, ShardMap<K, S>> {
    shard.inner.write().unwrap_or_else(PoisonError::into_inner)
}

impl<K, C: fmt::Debug, S> fmt::Debug for MemoryLimiter<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLimiter")
            .field("shards", &self.shards.len())
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ManualClock;

    #[test]
    fn idle_keys_are_reclaimed_by_later_inserts() {
        let clock = ManualClock::at("2026-11-27T12:00:00Z".parse().unwrap());
        let limiter = MemoryLimiter::<u64, _>::with_clock(clock.clone());
        let limits = Limits::default();
        for key in 0..10_000u64 {
            let _ = limiter.check(&key, limits);
        }
        assert_eq!(limiter.len(), 10_000);
        // Next day: the old keys look new, and inserting new keys sweeps them.
        clock.advance(Duration::from_secs(86_400));
        for key in 10_000..20_000u64 {
            let _ = limiter.check(&key, limits);
        }
        assert!(limiter.len() < 15_000, "len {}", limiter.len());
        assert_eq!(limiter.sweep(), 0);
        // Same day, recent keys are kept: their counts still matter.
        assert!(limiter.len() >= 10_000);
    }

    #[test]
    fn active_keys_are_never_reclaimed() {
        let clock = ManualClock::at("2026-11-27T00:00:00Z".parse().unwrap());
        let limiter = MemoryLimiter::<u64, _>::with_clock(clock.clone());
        let limits = Limits::new(1000, 2).unwrap();
        for key in 0..5_000u64 {
            let _ = limiter.check(&key, limits);
        }
        clock.advance(Duration::from_secs(3600));
        assert_eq!(limiter.sweep(), 0);
        for key in 0..5_000u64 {
            assert!(limiter.check(&key, limits).is_admitted());
            assert!(!limiter.check(&key, limits).is_admitted());
        }
    }

    #[test]
    fn peek_creates_nothing() {
        let limiter = MemoryLimiter::<String, _>::with_clock(ManualClock::default());
        let snapshot = limiter.peek("k", Limits::default());
        assert_eq!(snapshot.minute.remaining, 60);
        assert!(limiter.is_empty());
    }
}
