//! The in-memory limiter against SPEC §2, on a manual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lumyx_ratelimit::{
    Backend, Clock, Decision, Denial, DeniedBy, Limits, ManualClock, MemoryLimiter, PolicySnapshot,
    Snapshot,
};
use proptest::prelude::*;

fn at(rfc3339: &str) -> ManualClock {
    ManualClock::at(rfc3339.parse::<DateTime<Utc>>().unwrap())
}

fn limits(rpm: u32, daily: u32) -> Limits {
    Limits::new(rpm, daily).unwrap()
}

fn denial(decision: Decision) -> Denial {
    match decision {
        Decision::Denied(denial) => denial,
        Decision::Admitted(snapshot) => panic!("expected a denial, got admitted with {snapshot:?}"),
    }
}

#[test]
fn exactly_rpm_at_one_instant_then_one_per_interval() {
    for rpm in [1, 5, 7, 60, 999, 1000] {
        let clock = at("2026-11-27T10:00:00Z");
        let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
        let limits = limits(rpm, 10_000);
        for i in 0..rpm {
            let decision = limiter.check("k", limits);
            assert!(decision.is_admitted(), "rpm {rpm}: request {i} denied");
            assert_eq!(decision.snapshot().minute.remaining, rpm - i - 1);
        }
        let interval = Duration::from_micros(60_000_000 / u64::from(rpm));
        let denied = denial(limiter.check("k", limits));
        assert_eq!(denied.denied_by, DeniedBy::Minute, "rpm {rpm}");
        assert_eq!(denied.retry_after, interval, "rpm {rpm}");
        assert_eq!(denied.snapshot.minute.remaining, 0);
        assert_eq!(denied.snapshot.day.remaining, 10_000 - rpm);

        clock.advance(interval - Duration::from_micros(1));
        let denied = denial(limiter.check("k", limits));
        assert_eq!(denied.retry_after, Duration::from_micros(1), "rpm {rpm}");
        clock.advance(Duration::from_micros(1));
        assert!(limiter.check("k", limits).is_admitted(), "rpm {rpm}");
        assert!(!limiter.check("k", limits).is_admitted(), "rpm {rpm}");
    }
}

#[test]
fn sixty_per_minute_retries_after_one_second() {
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    for _ in 0..60 {
        assert!(limiter.check("k", Limits::default()).is_admitted());
    }
    let denied = denial(limiter.check("k", Limits::default()));
    assert_eq!(denied.retry_after, Duration::from_secs(1));
    assert_eq!(denied.snapshot.minute.reset, Duration::from_secs(60));
}

#[test]
fn daily_limit_is_exact_across_minutes() {
    let clock = at("2026-11-27T08:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(3, 10);
    for i in 0..10 {
        assert!(limiter.check("k", limits).is_admitted(), "request {i}");
        clock.advance(Duration::from_secs(60));
    }
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Day);
    // 08:10 -> midnight.
    assert_eq!(
        denied.retry_after,
        Duration::from_secs(86_400 - 8 * 3600 - 600)
    );
    assert_eq!(denied.snapshot.day.remaining, 0);
    assert_eq!(denied.snapshot.minute.remaining, 3);
}

#[test]
fn the_day_resets_at_midnight_utc() {
    let clock = at("2026-11-27T23:58:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(1000, 2);
    assert!(limiter.check("k", limits).is_admitted());
    assert!(limiter.check("k", limits).is_admitted());
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.retry_after, Duration::from_secs(120));
    assert_eq!(denied.snapshot.day.reset, Duration::from_secs(120));

    clock.set("2026-11-27T23:59:59.999999Z".parse().unwrap());
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.retry_after, Duration::from_micros(1));

    clock.set("2026-11-28T00:00:00Z".parse().unwrap());
    let admitted = limiter.check("k", limits);
    assert!(admitted.is_admitted());
    assert_eq!(admitted.snapshot().day.remaining, 1);
    assert_eq!(admitted.snapshot().day.reset, Duration::from_secs(86_400));
}

#[test]
fn a_minute_denial_does_not_consume_the_day() {
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(2, 5);
    assert!(limiter.check("k", limits).is_admitted());
    assert!(limiter.check("k", limits).is_admitted());
    for _ in 0..50 {
        let denied = denial(limiter.check("k", limits));
        assert_eq!(denied.denied_by, DeniedBy::Minute);
        assert_eq!(denied.snapshot.day.remaining, 3);
    }
    clock.advance(Duration::from_secs(60));
    for _ in 0..2 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.advance(Duration::from_secs(30));
    assert!(limiter.check("k", limits).is_admitted());
    assert_eq!(denial(limiter.check("k", limits)).denied_by, DeniedBy::Both);
}

#[test]
fn a_day_denial_does_not_consume_the_minute() {
    let clock = at("2026-11-27T23:59:58Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(5, 2);
    assert!(limiter.check("k", limits).is_admitted());
    assert!(limiter.check("k", limits).is_admitted());
    for _ in 0..50 {
        let denied = denial(limiter.check("k", limits));
        assert_eq!(denied.denied_by, DeniedBy::Day);
        assert_eq!(denied.snapshot.minute.remaining, 3);
        assert_eq!(denied.retry_after, Duration::from_secs(2));
    }
    // At midnight the debt is 24 s - 2 s: three tokens, untouched by the denials.
    clock.advance(Duration::from_secs(2));
    let limits = self::limits(5, 100);
    for _ in 0..3 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    assert_eq!(
        denial(limiter.check("k", limits)).denied_by,
        DeniedBy::Minute
    );
}

#[test]
fn both_denying_retry_after_the_later() {
    let clock = at("2026-11-27T23:59:30Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(1, 1);
    assert!(limiter.check("k", limits).is_admitted());
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Both);
    assert_eq!(denied.retry_after, Duration::from_secs(60));
    clock.advance(Duration::from_secs(40));
    // Past midnight the day is fresh: only the minute denies now.
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Minute);
    assert_eq!(denied.retry_after, Duration::from_secs(20));
}

#[test]
fn changing_limits_keeps_the_state() {
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    for _ in 0..30 {
        assert!(limiter.check("k", limits(60, 100)).is_admitted());
    }
    // Half the minute window is used, whatever the rate: the debt is kept.
    assert_eq!(limiter.peek("k", limits(120, 100)).minute.remaining, 60);
    assert_eq!(limiter.peek("k", limits(10, 100)).minute.remaining, 5);
    // The day count is kept: lowering the daily limit below it denies at once.
    assert_eq!(
        denial(limiter.check("k", limits(60, 30))).denied_by,
        DeniedBy::Day
    );
    assert_eq!(limiter.peek("k", limits(60, 40)).day.remaining, 10);
}

#[test]
fn keys_are_independent_and_peek_consumes_nothing() {
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(2, 100);
    assert!(limiter.check("a", limits).is_admitted());
    assert!(limiter.check("a", limits).is_admitted());
    assert!(!limiter.check("a", limits).is_admitted());
    for _ in 0..10 {
        assert_eq!(limiter.peek("b", limits).minute.remaining, 2);
        assert_eq!(limiter.peek("a", limits).minute.remaining, 0);
    }
    assert!(limiter.check("b", limits).is_admitted());
    assert_eq!(limiter.len(), 2);
}

#[test]
fn four_threads_on_one_key_admit_exactly_the_limit_every_round() {
    const ROUNDS: usize = 200;
    const THREADS: usize = 4;
    for (rpm, daily) in [(1, 10_000), (37, 10_000), (1000, 10_000), (1000, 7)] {
        let expected = rpm.min(daily);
        let clock = at("2026-11-27T10:00:00Z");
        let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
        let limits = limits(rpm, daily);
        let barrier = Barrier::new(THREADS);
        let admitted: Vec<AtomicU32> = (0..ROUNDS).map(|_| AtomicU32::new(0)).collect();
        std::thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    for round in &admitted {
                        // All threads start a round together, on a frozen clock.
                        barrier.wait();
                        for _ in 0..expected.max(2) {
                            if limiter.check("shared", limits).is_admitted() {
                                round.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        // One thread moves the clock on while the others wait:
                        // a full bucket and a fresh day for the next round.
                        if barrier.wait().is_leader() {
                            clock.advance(Duration::from_secs(86_400));
                        }
                    }
                });
            }
        });
        for (i, round) in admitted.iter().enumerate() {
            let round = round.load(Ordering::Relaxed);
            assert_eq!(round, expected, "rpm {rpm}, daily {daily}, round {i}");
        }
    }
}

#[test]
fn a_late_clock_read_gives_no_spent_quota_back() {
    // 60 admitted at t (rpm 60); one check whose clock reads t - 30 s (a
    // thread preempted after reading the clock); then back at t.
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(60, 1000);
    for _ in 0..60 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.set("2026-11-27T11:59:30Z".parse().unwrap());
    assert!(!limiter.check("k", limits).is_admitted());
    clock.set("2026-11-27T12:00:00Z".parse().unwrap());
    let admitted = (0..60)
        .filter(|_| limiter.check("k", limits).is_admitted())
        .count();
    assert_eq!(admitted, 0, "quota spent at t was given back");
    // The minute goes on as if the late read never happened.
    clock.advance(Duration::from_secs(1));
    assert!(limiter.check("k", limits).is_admitted());
    assert!(!limiter.check("k", limits).is_admitted());
}

/// A clock that, on one read in `every`, reads the time and then stalls
/// before answering, as a thread preempted between reading the clock and
/// deciding does.
#[derive(Debug)]
struct StallingClock {
    reads: AtomicU32,
    every: u32,
    stall: Duration,
    start: std::time::Instant,
    origin: u64,
}

impl Clock for StallingClock {
    fn now(&self) -> lumyx_ratelimit::Timestamp {
        let now = self.origin + self.start.elapsed().as_micros() as u64;
        if self
            .reads
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(self.every)
        {
            std::thread::sleep(self.stall);
        }
        lumyx_ratelimit::Timestamp::from_unix_micros(now)
    }
}

#[test]
fn late_clock_reads_never_admit_beyond_the_bucket() {
    // 8 threads on one key at 1000 per minute for 3 s, a clock that stalls
    // 20 ms on one read in seven: GCRA admits at most the bucket plus what
    // regenerates, 1000 + 3 s / 60 ms = 1050, in every window.
    let clock = StallingClock {
        reads: AtomicU32::new(1),
        every: 7,
        stall: Duration::from_millis(20),
        start: std::time::Instant::now(),
        origin: 1_795_000_000_000_000,
    };
    let limiter = MemoryLimiter::<String, _>::with_clock(clock);
    let limits = limits(1000, 10_000);
    let admissions = std::sync::Mutex::new(Vec::new());
    let run = Duration::from_secs(3);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let started = std::time::Instant::now();
                let mut mine = Vec::new();
                while started.elapsed() < run {
                    if limiter.check("k", limits).is_admitted() {
                        mine.push(limiter.clock().start.elapsed().as_micros() as u64);
                    }
                }
                admissions.lock().unwrap().extend(mine);
            });
        }
    });
    let mut times = admissions.into_inner().unwrap();
    times.sort_unstable();
    let total = times.len();
    assert!(total <= 1050, "{total} admitted in 3 s at 1000 per minute");
    // In any window (measured when the admissions returned, so a window of
    // `w` µs bounds real time within `w` + the 20 ms stall), at most the
    // bucket plus what regenerates in it.
    for (i, &first) in times.iter().enumerate() {
        let in_second = times[i..]
            .iter()
            .take_while(|&&t| t < first + 1_000_000)
            .count();
        assert!(
            in_second <= 1000 + 17 + 1,
            "{in_second} within 1 s of {first}"
        );
    }
}

#[test]
fn a_step_back_record_does_not_outlive_the_clock_coming_back() {
    // Back, forward, back again: the first step back's record must not make
    // the third check find a bucket refilled with no time passed.
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(60, 1000);
    for _ in 0..60 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    for at in [
        "2026-11-27T11:58:20Z",
        "2026-11-27T12:00:00Z",
        "2026-11-27T11:59:20Z",
    ] {
        clock.set(at.parse().unwrap());
        assert!(!limiter.check("k", limits).is_admitted(), "{at}");
    }
    let admitted = (0..60)
        .filter(|_| limiter.check("k", limits).is_admitted())
        .count();
    assert_eq!(admitted, 0);
}

#[test]
fn a_real_clock_step_back_costs_at_most_one_full_bucket() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = Limits::default();
    assert!(limiter.check("k", limits).is_admitted());
    // The clock steps back an hour and stays there.
    clock.set("2026-11-27T11:00:00Z".parse().unwrap());
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Minute);
    assert_eq!(denied.retry_after, Duration::from_secs(60));
    assert_eq!(denied.snapshot.minute.reset, Duration::from_secs(60));
    let headers = Decision::Denied(denied).headers().to_header_map();
    assert_eq!(headers["x-ratelimit-reset-requests"], "1m0s");
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(
        limiter.peek("k", limits).minute.reset,
        Duration::from_secs(60)
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        denial(limiter.check("k", limits)).retry_after,
        Duration::from_secs(30)
    );
    // One bucket of the clock's own time later the key is served again with
    // a full bucket, not an hour later.
    clock.advance(Duration::from_secs(30));
    let admitted = limiter.check("k", limits);
    assert!(admitted.is_admitted());
    assert_eq!(admitted.snapshot().minute.remaining, 59);
    assert_eq!(admitted.snapshot().day.remaining, 998);
}

#[test]
fn lowering_the_limits_is_not_a_clock_step_back() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    for _ in 0..60 {
        assert!(limiter.check("k", limits(60, 1000)).is_admitted());
    }
    // At 7 per minute the bucket holds 59.999996 s, a little less than the
    // minute of debt: served again once one interval fits, not a minute
    // later as after a clock step back.
    let denied = denial(limiter.check("k", limits(7, 1000)));
    assert_eq!(denied.retry_after, Duration::from_micros(8_571_432));
    assert_eq!(denied.snapshot.minute.remaining, 0);
    clock.advance(Duration::from_micros(8_571_432));
    assert!(limiter.check("k", limits(7, 1000)).is_admitted());
}

#[test]
fn idle_state_is_reclaimed_without_new_keys() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<u64, _>::with_clock(clock.clone());
    let limits = Limits::default();
    for key in 0..200_000u64 {
        assert!(limiter.check(&key, limits).is_admitted());
    }
    assert_eq!(limiter.len(), 200_000);
    let full_capacity = limiter.capacity();
    // Three days later only 100 keys are in use, for a little over a minute
    // (the pass sweeps a shard a second).
    clock.advance(Duration::from_secs(3 * 86_400));
    for _ in 0..70 {
        for key in 0..100u64 {
            let _ = limiter.check(&key, limits);
        }
        clock.advance(Duration::from_secs(1));
    }
    assert_eq!(limiter.len(), 100);
    assert!(
        limiter.capacity() * 20 < full_capacity,
        "the map keeps room for {} keys after holding {full_capacity}",
        limiter.capacity()
    );
}

#[test]
fn a_step_back_across_midnight_never_goes_back_a_day() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(1000, 2);
    assert!(limiter.check("k", limits).is_admitted());
    assert!(limiter.check("k", limits).is_admitted());
    clock.set("2026-11-28T00:00:00.001Z".parse().unwrap());
    assert!(limiter.check("k", limits).is_admitted());
    // A step back (or a stale `now`) before midnight: counted in the 28th,
    // whose count it neither loses nor overwrites.
    clock.set("2026-11-27T23:59:59.999Z".parse().unwrap());
    let late = limiter.check("k", limits);
    assert!(late.is_admitted());
    assert_eq!(late.snapshot().day.remaining, 0);
    assert_eq!(late.snapshot().day.reset, Duration::from_secs(86_400));
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Day);
    clock.set("2026-11-28T00:00:00.100Z".parse().unwrap());
    for _ in 0..2 {
        let denied = denial(limiter.check("k", limits));
        assert_eq!(denied.denied_by, DeniedBy::Day);
        assert_eq!(denied.snapshot.day.remaining, 0);
    }
    // And the 27th still had only its two.
    clock.set("2026-11-29T00:00:00Z".parse().unwrap());
    assert_eq!(limiter.peek("k", limits).day.remaining, 2);
}

#[test]
fn a_clock_advanced_to_the_end_of_time_does_not_panic() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = limits(1000, 10);
    assert!(limiter.check("k", limits).is_admitted());
    clock.advance(Duration::MAX);
    assert_eq!(clock.now().unix_micros(), u64::MAX);
    for _ in 0..3 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    let _ = limiter.peek("k", limits);
    assert_eq!(limiter.sweep(), 0);
}

#[tokio::test]
async fn the_memory_limiter_is_a_backend() {
    let clock = at("2026-11-27T10:00:00Z");
    let backend: Arc<dyn Backend> = Arc::new(MemoryLimiter::<String, _>::with_clock(clock));
    let limits = limits(1, 10);
    assert!(backend.check("k", limits).await.unwrap().is_admitted());
    assert!(!backend.check("k", limits).await.unwrap().is_admitted());
    assert_eq!(backend.peek("k", limits).await.unwrap().day.remaining, 9);
}

const MICROS_PER_MINUTE: u64 = 60_000_000;
const MICROS_PER_DAY: u64 = 86_400_000_000;

/// The obviously correct model, written from SPEC §2 and the documented
/// choices without the implementation's helpers. For each key:
///
/// * a leaky bucket: `pour = 60 s / rpm` (whole µs) of water per admitted
///   request, draining one µs per µs, holding `rpm` pours; a request is
///   admitted iff its pour fits. The level is known at the last admission; at
///   an earlier time (the clock stepped back) it reads as higher. After the
///   limits were lowered it can stand above the brim; it drains from there.
/// * a level above a minute, more than any bucket holds, means the clock is
///   behind the key: refused, with nothing given back, until the clock has
///   run a full bucket since it was first seen so (a record kept while the
///   bucket is unchanged and the clock stays behind: a check that finds it
///   back drops the record); then the bucket is empty from that moment on.
/// * a count per UTC day, and the latest day the key was admitted on: a time
///   before that day's start is taken as that day's start (the day never goes
///   backwards).
/// * a sweep forgets a key whose bucket is empty and whose latest day is past.
#[derive(Default)]
struct Model {
    /// (level just after the last admission, time of that admission)
    buckets: HashMap<u8, (u64, u64)>,
    latest_day: HashMap<u8, u64>,
    days: HashMap<(u8, u64), u32>,
    /// (since, the bucket then): when the clock was first seen behind.
    behind: HashMap<u8, (u64, Option<(u64, u64)>)>,
}

impl Model {
    /// The level at `now`, uncapped (above the brim after a step back or a
    /// lower rpm).
    fn level(&self, key: u8, now: u64) -> u64 {
        match self.buckets.get(&key) {
            None => 0,
            Some(&(level, last)) if now >= last => level.saturating_sub(now - last),
            Some(&(level, last)) => level + (last - now),
        }
    }

    fn effective_now(&self, key: u8, now: u64) -> u64 {
        match self.latest_day.get(&key) {
            Some(&day) => now.max(day * MICROS_PER_DAY),
            None => now,
        }
    }

    fn sweep(&mut self, now: u64) {
        let idle: Vec<u8> = self
            .latest_day
            .iter()
            .filter(|&(&key, &day)| {
                let (level, last) = self.buckets[&key];
                last + level <= now && day < now / MICROS_PER_DAY
            })
            .map(|(&key, _)| key)
            .collect();
        for key in idle {
            self.buckets.remove(&key);
            self.latest_day.remove(&key);
            self.behind.remove(&key);
            self.days.retain(|&(k, _), _| k != key);
        }
    }

    fn check(&mut self, key: u8, rpm: u32, daily: u32, now: u64) -> Decision {
        let pour = MICROS_PER_MINUTE / u64::from(rpm);
        let brim = pour * u64::from(rpm);
        let now = self.effective_now(key, now);
        let day = now / MICROS_PER_DAY;
        let count = self.days.get(&(key, day)).copied().unwrap_or(0);
        let to_midnight = (day + 1) * MICROS_PER_DAY - now;
        let day_ok = count < daily;
        let mut raw_level = self.level(key, now);
        if raw_level <= MICROS_PER_MINUTE {
            // The clock is back: a record of a step back no longer stands.
            self.behind.remove(&key);
        }

        if raw_level > MICROS_PER_MINUTE {
            let bucket = self.buckets.get(&key).copied();
            let since = match self.behind.get(&key) {
                Some(&(since, then)) if then == bucket && since <= now => since,
                _ => now,
            };
            if now - since < brim {
                self.behind.insert(key, (since, bucket));
                let wait = since + brim - now;
                let snapshot = Snapshot {
                    minute: PolicySnapshot {
                        limit: rpm,
                        remaining: 0,
                        reset: Duration::from_micros(wait),
                        next_quota_in: Duration::from_micros(wait),
                    },
                    day: PolicySnapshot {
                        limit: daily,
                        remaining: daily.saturating_sub(count),
                        reset: Duration::from_micros(to_midnight),
                        next_quota_in: Duration::from_micros(to_midnight),
                    },
                };
                let (denied_by, retry) = if day_ok {
                    (DeniedBy::Minute, wait)
                } else {
                    (DeniedBy::Both, wait.max(to_midnight))
                };
                return Decision::Denied(Denial {
                    denied_by,
                    retry_after: Duration::from_micros(retry),
                    snapshot,
                });
            }
            // Refilled, in the clock's own time, since the step back.
            self.buckets.insert(key, (0, since + brim));
            self.behind.remove(&key);
            raw_level = 0;
        }
        let level = raw_level;

        let minute_ok = level + pour <= brim;
        let (level, count) = if minute_ok && day_ok {
            self.days.insert((key, day), count + 1);
            self.buckets.insert(key, (level + pour, now));
            self.latest_day.insert(key, day);
            (level + pour, count + 1)
        } else {
            (level, count)
        };
        let remaining = brim.saturating_sub(level) / pour;
        let next_token = if level == 0 {
            0
        } else {
            level + (remaining + 1) * pour - brim
        };
        let snapshot = Snapshot {
            minute: PolicySnapshot {
                limit: rpm,
                remaining: remaining as u32,
                reset: Duration::from_micros(level),
                next_quota_in: Duration::from_micros(next_token),
            },
            day: PolicySnapshot {
                limit: daily,
                remaining: daily.saturating_sub(count),
                reset: Duration::from_micros(to_midnight),
                next_quota_in: Duration::from_micros(to_midnight),
            },
        };
        let minute_wait = (level + pour).saturating_sub(brim);
        let (denied_by, retry) = match (minute_ok, day_ok) {
            (true, true) => return Decision::Admitted(snapshot),
            (false, true) => (DeniedBy::Minute, minute_wait),
            (true, false) => (DeniedBy::Day, to_midnight),
            (false, false) => (DeniedBy::Both, minute_wait.max(to_midnight)),
        };
        Decision::Denied(Denial {
            denied_by,
            retry_after: Duration::from_micros(retry),
            snapshot,
        })
    }
}

#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    /// Advance to exactly when the last denied request would be admitted, or
    /// one microsecond before: the boundaries where off-by-one errors live.
    WaitForRetry {
        early: bool,
    },
    /// The clock steps back (NTP, a VM restored, a stale read).
    SetBack(u64),
    Sweep,
    Check {
        key: u8,
        rpm: u32,
        daily: u32,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<bool>().prop_map(|early| Op::WaitForRetry { early }),
        2 => (0u64..2_000).prop_map(Op::Advance),
        3 => (0u64..5_000_000).prop_map(Op::Advance),
        1 => (0u64..7_200_000_000).prop_map(Op::Advance),
        1 => (0u64..2_000_000).prop_map(Op::SetBack),
        1 => (0u64..3 * MICROS_PER_DAY).prop_map(Op::SetBack),
        1 => Just(Op::Sweep),
        8 => (0u8..3, prop_oneof![1u32..=10, Just(60), 1u32..=1000], 1u32..=30)
            .prop_map(|(key, rpm, daily)| Op::Check { key, rpm, daily }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_the_reference_model(
        start in 1_700_000_000_000_000u64..1_900_000_000_000_000,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let clock = ManualClock::default();
        clock.advance(Duration::from_micros(start));
        // Daily sweeps would forget idle keys at moments the model cannot
        // know; the model's sweeps are the explicit ones.
        let limiter = MemoryLimiter::<u8, _>::with_clock(clock.clone()).with_daily_sweeps(false);
        let mut model = Model::default();
        let mut now = start;
        let mut retry = 0;
        for op in ops {
            let advance = match op {
                Op::Advance(micros) => Some(micros),
                Op::WaitForRetry { early } => Some(retry - u64::from(early && retry > 0)),
                Op::SetBack(_) | Op::Sweep | Op::Check { .. } => None,
            };
            if let Some(micros) = advance {
                clock.advance(Duration::from_micros(micros));
                now += micros;
                retry = 0;
            }
            match op {
                Op::Advance(_) | Op::WaitForRetry { .. } => {}
                Op::SetBack(micros) => {
                    now -= micros;
                    clock.set(lumyx_ratelimit::Timestamp::from_unix_micros(now).to_utc());
                    prop_assert_eq!(clock.now().unix_micros(), now);
                    retry = 0;
                }
                Op::Sweep => {
                    limiter.sweep();
                    model.sweep(now);
                    prop_assert_eq!(limiter.len(), model.latest_day.len());
                }
                Op::Check { key, rpm, daily } => {
                    let expected = model.check(key, rpm, daily, now);
                    retry = expected.retry_after().map_or(0, |d| d.as_micros() as u64);
                    let limits = Limits::new(rpm, daily).unwrap();
                    prop_assert_eq!(limiter.check(&key, limits), expected);
                    // At the same instant, a peek sees what the decision left.
                    prop_assert_eq!(limiter.peek(&key, limits), *expected.snapshot());
                }
            }
        }
    }
}
