//! Where the gate decides the limits of a key and counts what its requests
//! came to: this process's memory, or Redis for many instances.
//!
//! A backend's futures are plain `impl Future`, not boxed: the in-memory one
//! answers with futures that are ready when made, so a gate over it decides
//! without waiting and without allocating ([`SyncBackend`]).

use std::future::{Future, ready};

use lumyx_keys::KeyId;
use lumyx_ratelimit::{
    Clock, Counted, Decision, Error, MemoryLimiter, Snapshot, SystemClock, Usage,
};

use crate::KeyEntry;

/// Limits and usage counts of the keys in the table.
pub trait Backend: Send + Sync + 'static {
    /// Decides one request of the key under its record's limits, consuming
    /// from both iff both admit it, and counts what it came to.
    fn decide(&self, entry: &KeyEntry) -> impl Future<Output = Result<Decision, Error>> + Send;

    /// The key's limits now, consuming nothing, and counts a refusal made
    /// before the limits (`what`: expired, revoked, out of scope).
    fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send;

    /// The key's limits now, consuming and counting nothing.
    fn peek(&self, entry: &KeyEntry) -> impl Future<Output = Result<Snapshot, Error>> + Send;

    /// What the key's requests came to: the last 31 UTC days and totals.
    fn usage(&self, entry: &KeyEntry) -> impl Future<Output = Result<Usage, Error>> + Send;
}

/// A [`Backend`] whose futures are always ready when made: a gate over it
/// can decide synchronously ([`Gate::check_now`](crate::Gate::check_now)).
pub trait SyncBackend: Backend {}

/// Limits in this process's memory ([`MemoryLimiter`], keyed by key id) and
/// usage in the table's counters: every operation is a few atomic steps.
///
/// ```
/// use lumyx_gate::MemoryBackend;
/// use lumyx_ratelimit::ManualClock;
///
/// let backend = MemoryBackend::new(); // the system clock
/// let clock = ManualClock::default();
/// let for_tests = MemoryBackend::with_clock(clock.clone());
/// assert_eq!(for_tests.limiter().len(), 0);
/// ```
#[derive(Debug)]
pub struct MemoryBackend<C = SystemClock> {
    limiter: MemoryLimiter<KeyId, C>,
}

impl MemoryBackend {
    /// A backend on the system clock.
    pub fn new() -> MemoryBackend {
        MemoryBackend::with_clock(SystemClock)
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl<C> MemoryBackend<C> {
    /// A backend on `clock` (a manual clock in tests).
    pub fn with_clock(clock: C) -> MemoryBackend<C> {
        MemoryBackend {
            limiter: MemoryLimiter::with_clock(clock),
        }
    }

    /// The limiter.
    pub fn limiter(&self) -> &MemoryLimiter<KeyId, C> {
        &self.limiter
    }
}

impl<C: Clock> MemoryBackend<C> {
    /// The key's limits now, consuming nothing.
    fn snapshot(&self, entry: &KeyEntry) -> Snapshot {
        let record = entry.record();
        self.limiter.peek(&record.id, record.limits)
    }
}

impl<C: Clock + 'static> Backend for MemoryBackend<C> {
    #[inline]
    fn decide(&self, entry: &KeyEntry) -> impl Future<Output = Result<Decision, Error>> + Send {
        let record = entry.record();
        let decision = self.limiter.check(&record.id, record.limits);
        entry
            .usage()
            .count(Counted::of(&decision), self.limiter.clock().now());
        ready(Ok(decision))
    }

    fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        entry.usage().count(what, self.limiter.clock().now());
        ready(Ok(self.snapshot(entry)))
    }

    fn peek(&self, entry: &KeyEntry) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        ready(Ok(self.snapshot(entry)))
    }

    fn usage(&self, entry: &KeyEntry) -> impl Future<Output = Result<Usage, Error>> + Send {
        ready(Ok(entry.usage().usage(self.limiter.clock().now())))
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
        async fn decide(&self, entry: &KeyEntry) -> Result<Decision, Error> {
            let record = entry.record();
            self.limiter
                .check_counted(&record.id.to_string(), record.limits)
                .await
        }

        async fn refuse(&self, entry: &KeyEntry, what: Counted) -> Result<Snapshot, Error> {
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

        async fn usage(&self, entry: &KeyEntry) -> Result<Usage, Error> {
            self.limiter.usage(&entry.record().id.to_string()).await
        }
    }
}

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisBackend;
