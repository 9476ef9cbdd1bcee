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
fn a_clock_step_back_costs_at_most_one_full_bucket() {
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = Limits::default();
    assert!(limiter.check("k", limits).is_admitted());
    clock.set("2026-11-27T11:00:00Z".parse().unwrap());
    let denied = denial(limiter.check("k", limits));
    assert_eq!(denied.denied_by, DeniedBy::Minute);
    assert_eq!(denied.retry_after, Duration::from_secs(1));
    assert_eq!(denied.snapshot.minute.reset, Duration::from_secs(60));
    let headers = Decision::Denied(denied).headers();
    assert!(
        headers.contains(&("x-ratelimit-reset-requests", "1m0s".to_owned())),
        "{headers:?}"
    );
    assert_eq!(
        limiter.peek("k", limits).minute.reset,
        Duration::from_secs(60)
    );
    // One interval later the key is served again, not an hour later.
    clock.advance(Duration::from_secs(1));
    let admitted = limiter.check("k", limits);
    assert!(admitted.is_admitted());
    assert!(admitted.snapshot().minute.reset <= Duration::from_secs(60));
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
///   an earlier time (the clock stepped back) it reads as higher. It never
///   reads as more than full: an overfull bucket is set to full at that time.
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
            self.days.retain(|&(k, _), _| k != key);
        }
    }

    fn check(&mut self, key: u8, rpm: u32, daily: u32, now: u64) -> Decision {
        let pour = MICROS_PER_MINUTE / u64::from(rpm);
        let brim = pour * u64::from(rpm);
        let now = self.effective_now(key, now);
        let raw_level = self.level(key, now);
        let level = raw_level.min(brim);
        let day = now / MICROS_PER_DAY;
        let count = self.days.get(&(key, day)).copied().unwrap_or(0);
        let to_midnight = (day + 1) * MICROS_PER_DAY - now;

        if level < raw_level {
            // Overfull (the clock stepped back): drain from full, from now on.
            self.buckets.insert(key, (level, now));
        }

        let minute_ok = level + pour <= brim;
        let day_ok = count < daily;
        let (level, count) = if minute_ok && day_ok {
            self.days.insert((key, day), count + 1);
            self.buckets.insert(key, (level + pour, now));
            self.latest_day.insert(key, day);
            (level + pour, count + 1)
        } else {
            (level, count)
        };
        let snapshot = Snapshot {
            minute: PolicySnapshot {
                limit: rpm,
                remaining: ((brim - level) / pour) as u32,
                reset: Duration::from_micros(level),
            },
            day: PolicySnapshot {
                limit: daily,
                remaining: daily.saturating_sub(count),
                reset: Duration::from_micros(to_midnight),
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
        let limiter = MemoryLimiter::<u8, _>::with_clock(clock.clone());
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
