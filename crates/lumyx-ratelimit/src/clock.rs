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
    #[inline]
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    #[inline]
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
/// steps and NTP slewing, with a lag of at most 100 ms. Between two re-reads
/// it is off by the counter's drift against the OS clock (microseconds) plus
/// the gap between the two reads of a re-read (at most 50 µs: a re-read
/// preempted between them is retried, up to 3 times). It is not monotonic: a
/// re-read moves it to the OS clock, backwards if that stepped back. The first
/// read in a process calibrates the counter against the OS clock, which takes
/// up to 200 ms once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

/// How often [`SystemClock`] re-reads the OS clock, in µs.
const RESYNC_MICROS: u64 = 100_000;

/// The widest gap, in counter µs, between the counter reads around an OS
/// clock read that a re-read accepts at once.
const MAX_READ_GAP_MICROS: u64 = 50;

/// The shared state of [`SystemClock`]: the offset in one atomic word, so
/// readers never see a torn pair, and the counter time of the next re-read,
/// which one thread claims by a compare-and-swap before re-reading, so one
/// re-read runs per period, however many threads find it due.
struct Anchor {
    /// OS time minus counter time, in µs (wrapping).
    offset: AtomicU64,
    /// Counter time (µs) of the next re-read of the OS clock.
    next_sync: AtomicU64,
}

impl Anchor {
    const fn new() -> Self {
        Self {
            offset: AtomicU64::new(0),
            next_sync: AtomicU64::new(0),
        }
    }

    /// The time at counter time `counter`, re-reading the OS clock if due.
    #[inline]
    fn now(&self, counter: u64, os: impl Fn() -> u64, read_counter: impl Fn() -> u64) -> u64 {
        let next = self.next_sync.load(Ordering::Relaxed);
        if counter >= next
            && self
                .next_sync
                .compare_exchange(
                    next,
                    counter.saturating_add(RESYNC_MICROS),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.sync(os, read_counter);
        }
        counter.wrapping_add(self.offset.load(Ordering::Relaxed))
    }

    /// Sets the offset from an OS clock read and the counter read just
    /// after it. A read with a gap (the thread was preempted between the
    /// reads) is retried, so the offset is not skewed by the gap.
    #[cold]
    fn sync(&self, os: impl Fn() -> u64, read_counter: impl Fn() -> u64) {
        let mut offset = 0;
        for _ in 0..3 {
            let before = read_counter();
            let os_micros = os();
            let after = read_counter();
            offset = os_micros.wrapping_sub(after);
            if after.wrapping_sub(before) <= MAX_READ_GAP_MICROS {
                break;
            }
        }
        self.offset.store(offset, Ordering::Relaxed);
    }
}

/// The process's counter and anchor.
fn system() -> &'static (quanta::Clock, Anchor) {
    static SYSTEM: OnceLock<(quanta::Clock, Anchor)> = OnceLock::new();
    SYSTEM.get_or_init(|| {
        let counter = quanta::Clock::new();
        let anchor = Anchor::new();
        // Synced before it is shared, so no thread ever reads the zero offset.
        let _ = anchor.now(counter_micros(&counter), os_micros, || {
            counter_micros(&counter)
        });
        (counter, anchor)
    })
}

#[inline]
fn counter_micros(counter: &quanta::Clock) -> u64 {
    counter.delta_as_nanos(0, counter.raw()) / 1000
}

fn os_micros() -> u64 {
    Timestamp::from(SystemTime::now()).unix_micros()
}

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Timestamp {
        let (counter, anchor) = system();
        let now = counter_micros(counter);
        Timestamp(anchor.now(now, os_micros, || counter_micros(counter)))
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
    #[inline]
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
    #[inline]
    fn now(&self) -> Timestamp {
        Timestamp(self.micros.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;

    #[test]
    fn a_resync_preempted_between_its_reads_is_not_skewed() {
        // True time: the counter reads `t`, the OS clock `t + 1 s`. The first
        // OS read is preempted for 50 ms, which the counter then shows.
        let t = AtomicU64::new(5_000_000);
        let preempted = AtomicU32::new(0);
        let os = || {
            if preempted.fetch_add(1, Ordering::Relaxed) == 0 {
                t.fetch_add(50_000, Ordering::Relaxed);
            }
            t.load(Ordering::Relaxed) + 1_000_000
        };
        let read_counter = || t.load(Ordering::Relaxed);
        let anchor = Anchor::new();
        let now = anchor.now(read_counter(), os, read_counter);
        assert_eq!(anchor.offset.load(Ordering::Relaxed), 1_000_000);
        // The caller's own counter read came before the preemption.
        assert_eq!(now, 5_000_000 + 1_000_000);
        assert_eq!(
            anchor.now(read_counter(), os, read_counter),
            t.load(Ordering::Relaxed) + 1_000_000
        );
    }

    #[test]
    fn one_thread_resyncs_at_a_time() {
        let anchor = Anchor::new();
        let os_reads = AtomicU32::new(0);
        // The OS read is slow (preempted), and a second thread finds the
        // re-read due meanwhile: it must not re-read, nor publish anything.
        let os = || {
            os_reads.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(100));
            2_000_000
        };
        std::thread::scope(|scope| {
            scope.spawn(|| anchor.now(1_000, os, || 1_000));
            std::thread::sleep(Duration::from_millis(30));
            scope.spawn(|| anchor.now(1_000, os, || 1_000));
        });
        assert_eq!(os_reads.load(Ordering::Relaxed), 1);
        assert_eq!(anchor.now(1_000, os, || 1_000), 2_000_000);
    }

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
