use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A UTC instant in whole microseconds since the Unix epoch: the unit of all
/// limiter state.
///
/// Redis's `TIME` has microsecond resolution and Lua numbers are exact
/// integers only up to 2^53, so both backends count in microseconds and
/// decide identically. The UTC day of an instant is `micros / 86_400_000_000`.
///
/// ```
/// use lumyx_ratelimit::Timestamp;
///
/// let t = Timestamp::from("2026-11-27T12:36:40Z".parse::<chrono::DateTime<chrono::Utc>>()?);
/// assert_eq!(t.unix_micros(), 1_795_783_000_000_000);
/// assert_eq!(t.to_utc().to_rfc3339(), "2026-11-27T12:36:40+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Self = Self(0);

    /// The instant `micros` microseconds after the Unix epoch.
    pub const fn from_unix_micros(micros: u64) -> Self {
        Self(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> u64 {
        self.0
    }

    /// As a chrono UTC date-time.
    pub fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(i64::try_from(self.0).unwrap_or(i64::MAX))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

impl From<SystemTime> for Timestamp {
    /// Times before the epoch become the epoch.
    fn from(time: SystemTime) -> Self {
        Self(
            time.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
        )
    }
}

impl From<DateTime<Utc>> for Timestamp {
    /// Times before the epoch become the epoch.
    fn from(time: DateTime<Utc>) -> Self {
        Self(u64::try_from(time.timestamp_micros()).unwrap_or(0))
    }
}

/// A source of UTC time.
///
/// The minute bucket needs elapsed time and the day counter needs the UTC
/// calendar day; one [`Timestamp`] gives both.
pub trait Clock: Send + Sync + Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

/// The operating system's UTC clock, read cheaply.
///
/// Reading [`SystemTime::now`] costs about as much as the rest of a decision,
/// so this clock reads it only every 100 ms and in between adds the time
/// elapsed on `quanta`'s calibrated CPU counter (the TSC; the OS monotonic
/// clock where there is none). It thus follows the OS clock, including its
/// steps and NTP slewing, to within 100 ms of counter drift (microseconds).
/// The first read in a process calibrates the counter against the OS clock,
/// which takes up to 200 ms once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

/// How often [`SystemClock`] re-reads the OS clock, in µs.
const RESYNC_MICROS: u64 = 100_000;

/// The shared state of [`SystemClock`]: one atomic word of offset, so readers
/// never see a torn pair.
struct Anchor {
    counter: quanta::Clock,
    /// OS time minus counter time, in µs (wrapping).
    offset: AtomicU64,
    /// Counter time (µs) of the next re-read of the OS clock.
    next_sync: AtomicU64,
}

impl Anchor {
    fn get() -> &'static Anchor {
        static ANCHOR: OnceLock<Anchor> = OnceLock::new();
        ANCHOR.get_or_init(|| {
            let anchor = Anchor {
                counter: quanta::Clock::new(),
                offset: AtomicU64::new(0),
                next_sync: AtomicU64::new(0),
            };
            anchor.sync(anchor.counter_micros());
            anchor
        })
    }

    fn counter_micros(&self) -> u64 {
        self.counter.delta_as_nanos(0, self.counter.raw()) / 1000
    }

    fn sync(&self, counter: u64) {
        let os = Timestamp::from(SystemTime::now()).unix_micros();
        self.offset
            .store(os.wrapping_sub(counter), Ordering::Relaxed);
        self.next_sync
            .store(counter + RESYNC_MICROS, Ordering::Relaxed);
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let anchor = Anchor::get();
        let counter = anchor.counter_micros();
        if counter >= anchor.next_sync.load(Ordering::Relaxed) {
            anchor.sync(counter);
        }
        Timestamp(counter.wrapping_add(anchor.offset.load(Ordering::Relaxed)))
    }
}

/// A clock that moves only when told to, for tests and benches.
///
/// Clones share the same time, so a test keeps one handle and gives another to
/// the limiter. Resolution is one microsecond (sub-microsecond parts of
/// [`ManualClock::advance`] are dropped).
///
/// ```
/// use std::time::Duration;
/// use lumyx_ratelimit::{Clock, ManualClock};
///
/// let clock = ManualClock::at("2026-11-27T23:59:59Z".parse()?);
/// let limiter_side = clock.clone();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(limiter_side.now().to_utc().to_rfc3339(), "2026-11-28T00:00:00+00:00");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    /// Microseconds since the Unix epoch: one atomic word, so a frozen clock
    /// costs the hot path one load.
    micros: Arc<AtomicU64>,
}

impl ManualClock {
    /// A clock set to `start` (times before the Unix epoch become the epoch).
    pub fn at(start: DateTime<Utc>) -> Self {
        let clock = Self::default();
        clock.set(start);
        clock
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .micros
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_add(by))
            });
    }

    /// Sets the clock to `to`, forward or backward.
    pub fn set(&self, to: DateTime<Utc>) {
        self.micros
            .store(Timestamp::from(to).unix_micros(), Ordering::Release);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_follows_the_os_clock() {
        for _ in 0..1000 {
            let os = Timestamp::from(SystemTime::now()).unix_micros();
            let ours = SystemClock.now().unix_micros();
            let after = Timestamp::from(SystemTime::now()).unix_micros();
            // Within the OS reads around it, give or take a millisecond of
            // counter drift and scheduling.
            assert!(
                ours + 1000 >= os && ours <= after + 1000,
                "{os} {ours} {after}"
            );
        }
    }
}
