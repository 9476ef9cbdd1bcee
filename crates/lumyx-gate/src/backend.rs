//! Where the gate decides the limits of a key and counts what its requests
//! came to: this process's memory (each key's entry of the table), or Redis
//! for many instances (by Redis's clock).
//!
//! A backend's futures are plain `impl Future`, not boxed: the in-memory one
//! answers with futures that are ready when made, so a gate over it decides
//! without waiting and without allocating ([`SyncBackend`]).

use std::future::{Future, ready};

use lumyx_ratelimit::{Clock, Counted, Decision, Error, Snapshot, SystemClock, Timestamp, Usage};

use crate::KeyEntry;

/// Limits and usage counts of the keys in the table.
pub trait Backend: Send + Sync + 'static {
    /// Whether every future of this backend is ready when made, so that a
    /// check over it completes on its first poll: `true` lets
    /// [`GateService`](crate::GateService) decide inside `call`, with no
    /// boxed future. Only a backend that never waits may say `true` (and
    /// implement [`SyncBackend`]); `false` is always correct.
    const DECIDES_AT_ONCE: bool = false;

    /// Decides one request of the key under its record's limits, consuming
    /// from both iff both admit it, and counts what it came to (at `now`,
    /// in memory).
    fn decide(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Decision, Error>> + Send;

    /// The key's limits now, consuming nothing, and counts a refusal made
    /// before the limits (`what`: expired, revoked, out of scope).
    fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
        now: Timestamp,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send;

    /// The key's limits now, consuming and counting nothing.
    fn peek(&self, entry: &KeyEntry) -> impl Future<Output = Result<Snapshot, Error>> + Send;

    /// What the key's requests came to: the last 31 UTC days and totals, as
    /// of `now` (in memory).
    fn usage(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Usage, Error>> + Send;
}

/// A [`Backend`] whose futures are always ready when made: a gate over it
/// can decide synchronously ([`Gate::check_now`](crate::Gate::check_now)).
/// Its [`Backend::DECIDES_AT_ONCE`] is `true`; a gate that checks with
/// `check_now` does not build otherwise.
pub trait SyncBackend: Backend {}

/// Limits and usage counts in this process's memory, in each key's entry of
/// the table: a decision is one compare-and-swap on the key's limiter word
/// and a few relaxed atomic adds on its counters, with no lookup beyond the
/// table's and no lock.
///
/// ```
/// use lumyx_gate::MemoryBackend;
/// use lumyx_ratelimit::ManualClock;
///
/// let backend = MemoryBackend::new(); // the system clock
/// let for_tests = MemoryBackend::with_clock(ManualClock::default());
/// # let _ = (backend, for_tests);
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend<C = SystemClock> {
    clock: C,
}

impl MemoryBackend {
    /// A backend on the system clock.
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_clock(SystemClock)
    }
}

impl<C> MemoryBackend<C> {
    /// A backend on `clock` (a manual clock in tests; give the gate the same).
    pub fn with_clock(clock: C) -> MemoryBackend<C> {
        MemoryBackend { clock }
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }
}

impl<C: Clock + 'static> Backend for MemoryBackend<C> {
    const DECIDES_AT_ONCE: bool = true;

    #[inline]
    fn decide(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Decision, Error>> + Send {
        let decision = entry.limiter().check(entry.record().limits, &self.clock);
        entry.usage().count(Counted::of(&decision), now);
        ready(Ok(decision))
    }

    fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
        now: Timestamp,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        entry.usage().count(what, now);
        ready(Ok(entry.limiter().peek(entry.record().limits, &self.clock)))
    }

    fn peek(&self, entry: &KeyEntry) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        ready(Ok(entry.limiter().peek(entry.record().limits, &self.clock)))
    }

    fn usage(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Usage, Error>> + Send {
        ready(Ok(entry.usage().usage(now)))
    }
}

impl<C: Clock + 'static> SyncBackend for MemoryBackend<C> {}

#[cfg(feature = "redis")]
mod redis {
    use lumyx_ratelimit::RedisLimiter;

    use super::*;

    /// Limits and usage counts in Redis ([`RedisLimiter`]), shared by every
    /// instance: a decision and its count are one script, one round trip.
    /// While Redis cannot serve, decisions follow the limiter's outage
    /// policy and are not counted.
    #[derive(Debug)]
    pub struct RedisBackend {
        limiter: RedisLimiter,
    }

    impl RedisBackend {
        /// A backend on `limiter`.
        pub fn new(limiter: RedisLimiter) -> RedisBackend {
            RedisBackend { limiter }
        }

        /// The limiter.
        pub fn limiter(&self) -> &RedisLimiter {
            &self.limiter
        }
    }

    impl Backend for RedisBackend {
        async fn decide(&self, entry: &KeyEntry, _now: Timestamp) -> Result<Decision, Error> {
            let record = entry.record();
            self.limiter
                .check_counted(&record.id.to_string(), record.limits)
                .await
        }

        async fn refuse(
            &self,
            entry: &KeyEntry,
            what: Counted,
            _now: Timestamp,
        ) -> Result<Snapshot, Error> {
            let record = entry.record();
            self.limiter
                .peek_counted(&record.id.to_string(), record.limits, what)
                .await
        }

        async fn peek(&self, entry: &KeyEntry) -> Result<Snapshot, Error> {
            let record = entry.record();
            self.limiter
                .peek(&record.id.to_string(), record.limits)
                .await
        }

        async fn usage(&self, entry: &KeyEntry, _now: Timestamp) -> Result<Usage, Error> {
            self.limiter.usage(&entry.record().id.to_string()).await
        }
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisBackend;
