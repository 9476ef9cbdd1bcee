//! The pure arithmetic of both policies, shared by the in-memory limiter and
//! mirrored line by line by the Redis script.
//!
//! Time is in microseconds since the Unix epoch. The minute policy is GCRA: a
//! key stores its theoretical arrival time `tat`; its *debt* `tat - now` is
//! how far ahead of the steady rate it has run. With the emission interval
//! `T = 60 s / rpm` (whole microseconds, rounded down) and the capacity
//! `rpm * T`, a request fits iff `debt + T <= capacity`. The day policy is a
//! counter tagged with its UTC day number. Time that runs backwards is
//! handled in [`KeyState::observe`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::{Decision, Denial, DeniedBy, Limits, PolicySnapshot, Snapshot};

pub(crate) const MICROS_PER_DAY: u64 = 86_400_000_000;

/// The whole state of one key (stored packed in 8 bytes as [`PackedState`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KeyState {
    /// GCRA theoretical arrival time, µs since the Unix epoch.
    tat: u64,
    /// The UTC day (days since the Unix epoch) that `count` belongs to.
    day: u32,
    /// Requests admitted on `day`.
    count: u32,
}

/// The emission interval: one request regenerates every `60 s / rpm`.
#[inline]
pub(crate) fn interval(limits: Limits) -> u64 {
    u64::from(limits.interval_micros())
}

/// The bucket's capacity, `rpm * T` (at most one minute).
#[inline]
fn capacity(limits: Limits) -> u64 {
    interval(limits) * u64::from(limits.rate_limit_per_minute())
}

#[inline]
pub(crate) fn day_of(now: u64) -> u32 {
    u32::try_from(now / MICROS_PER_DAY).unwrap_or(u32::MAX)
}

/// Which policies refuse one more request, given the debt and today's count.
#[inline]
pub(crate) fn verdict(limits: Limits, debt: u64, count: u32) -> Option<DeniedBy> {
    let minute_ok = debt + interval(limits) <= capacity(limits);
    let day_ok = count < limits.daily_limit();
    match (minute_ok, day_ok) {
        (true, true) => None,
        (false, true) => Some(DeniedBy::Minute),
        (true, false) => Some(DeniedBy::Day),
        (false, false) => Some(DeniedBy::Both),
    }
}

/// The snapshot of a key whose debt and count (after the decision) are given.
#[inline]
pub(crate) fn snapshot(limits: Limits, now: u64, debt: u64, count: u32) -> Snapshot {
    // The room is at most a minute in µs: it fits in u32, and below 2^26 as
    // `per_interval` requires.
    let room = capacity(limits).saturating_sub(debt) as u32;
    Snapshot {
        minute: PolicySnapshot {
            limit: limits.rate_limit_per_minute(),
            remaining: limits.per_interval(room),
            reset: Duration::from_micros(debt),
        },
        day: PolicySnapshot {
            limit: limits.daily_limit(),
            remaining: limits.daily_limit().saturating_sub(count),
            reset: Duration::from_micros(until_midnight(now)),
        },
    }
}

/// The decision, given the state after it: for a denial the state is
/// unchanged, so `debt` and `count` are also the state before it.
#[inline]
pub(crate) fn decision(
    limits: Limits,
    now: u64,
    debt: u64,
    count: u32,
    denied_by: Option<DeniedBy>,
) -> Decision {
    let snapshot = snapshot(limits, now, debt, count);
    let Some(denied_by) = denied_by else {
        return Decision::Admitted(snapshot);
    };
    let minute_wait = (debt + interval(limits)).saturating_sub(capacity(limits));
    let day_wait = until_midnight(now);
    let retry_after = match denied_by {
        DeniedBy::Minute => minute_wait,
        DeniedBy::Day => day_wait,
        DeniedBy::Both => minute_wait.max(day_wait),
    };
    Decision::Denied(Denial {
        denied_by,
        retry_after: Duration::from_micros(retry_after),
        snapshot,
    })
}

/// The time until the next 00:00:00 UTC, in (0, 1 day].
#[inline]
pub(crate) fn until_midnight(now: u64) -> u64 {
    MICROS_PER_DAY - now % MICROS_PER_DAY
}

/// What one request did to a key: the effective time it was decided at (see
/// [`KeyState::observe`]), the debt and count it left, and the policy that
/// denied it, if any.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    now: u64,
    debt: u64,
    count: u32,
    denied_by: Option<DeniedBy>,
    /// Whether a denial capped a debt larger than the bucket (see
    /// [`KeyState::apply`]), so the state must be written.
    rewound: bool,
}

impl Outcome {
    #[inline]
    pub(crate) fn decision(self, limits: Limits) -> Decision {
        decision(limits, self.now, self.debt, self.count, self.denied_by)
    }
}

impl KeyState {
    /// The effective time, the debt and that day's count as seen at `now`.
    ///
    /// Two guards against a clock that steps back (or a `now` read before a
    /// concurrent request wrote a later state):
    /// * the effective time is never before the start of the stored day, so
    ///   the day never goes backwards: a count is neither carried into an
    ///   earlier day nor overwritten by one, and a request at such a `now` is
    ///   counted in the stored (later) day;
    /// * the debt is capped at the bucket's capacity, so a step back costs at
    ///   most one full bucket and the minute reset never exceeds a minute.
    ///
    /// A count from a past day is zero.
    #[inline]
    fn observe(&self, limits: Limits, now: u64) -> (u64, u64, u32) {
        let today = day_of(now);
        let now = now.max(u64::from(self.day).saturating_mul(MICROS_PER_DAY));
        let debt = self.tat.saturating_sub(now).min(capacity(limits));
        // The stored day is past iff it is before the day of the effective
        // time `now`, which is today unless the stored day is later (then
        // it is the stored day, or less if its start saturates): the same as
        // comparing with today, with no second day computation. (The Redis
        // script compares with the day of the effective time: same result.)
        let count = if self.day < today { 0 } else { self.count };
        (now, debt, count)
    }

    /// Decides one request at `now` and consumes from both policies iff both
    /// admit it.
    #[cfg(test)]
    pub(crate) fn decide(&mut self, limits: Limits, now: u64) -> Decision {
        self.apply(limits, now).decision(limits)
    }

    /// The state change of one request: the cheap part of a decision, done
    /// under the shard's lock.
    #[inline]
    pub(crate) fn apply(&mut self, limits: Limits, now: u64) -> Outcome {
        let (now, debt, count) = self.observe(limits, now);
        let denied_by = verdict(limits, debt, count);
        if denied_by.is_some() {
            // After a step back the stored debt can exceed a full bucket: keep
            // only the full bucket, so the key is served again one interval
            // from now, not when the clock has caught up. This gives back,
            // never consumes; an ordinary denial writes nothing.
            let rewound = self.tat.saturating_sub(now) > debt;
            if rewound {
                self.tat = now + debt;
            }
            return Outcome {
                now,
                debt,
                count,
                denied_by,
                rewound,
            };
        }
        let debt = debt + interval(limits);
        *self = KeyState {
            // Saturating: a manual clock can be advanced to the end of time.
            tat: now.saturating_add(debt),
            day: day_of(now),
            count: count + 1,
        };
        Outcome {
            now,
            debt,
            count: count + 1,
            denied_by: None,
            rewound: false,
        }
    }

    /// The state at `now`, consuming nothing.
    pub(crate) fn peek(&self, limits: Limits, now: u64) -> Snapshot {
        let (now, debt, count) = self.observe(limits, now);
        snapshot(limits, now, debt, count)
    }

    /// Whether this state is indistinguishable from no state at all: the bucket
    /// is full and nothing was counted today. Such a key can be forgotten.
    pub(crate) fn is_idle(&self, now: u64) -> bool {
        self.tat <= now && (self.day < day_of(now) || self.count == 0)
    }
}

/// A [`KeyState`] as stored by the in-memory limiter: 8 bytes, so a slot of a
/// `u64` key is 16 bytes, as small as governor's.
///
/// | bits | field |
/// |---|---|
/// | 0..37 | `tat` minus the start of `day`, µs (at most a day and a minute) |
/// | 37..51 | `count` (at most the largest daily limit, 10,000) |
/// | 51..64 | `day` modulo 8192 |
///
/// `tat` is written only on an admission, as `now + debt` with `day` the day
/// of `now` (the effective time, never before the stored day), so it is never
/// before the start of `day`. The day is read back as the one
/// nearest to today with those 13 bits: exact for states up to 11 years old
/// (older ones are swept long before) or a clock step back of up to 11 years.
/// The all-zero word is a fresh key (a written state has `count >= 1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PackedState(u64);

const OFFSET_BITS: u32 = 37;
const COUNT_BITS: u32 = 14;
const DAY_MODULUS: u32 = 1 << 13;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

const _: () = assert!(MICROS_PER_DAY + 60_000_000 <= OFFSET_MASK);
const _: () = assert!(*Limits::DAILY_LIMIT_RANGE.end() as u64 <= COUNT_MASK);

impl PackedState {
    #[inline]
    fn pack(state: KeyState) -> Self {
        let day_start = u64::from(state.day).saturating_mul(MICROS_PER_DAY);
        let offset = state.tat.saturating_sub(day_start).min(OFFSET_MASK);
        let count = u64::from(state.count).min(COUNT_MASK);
        let day = u64::from(state.day % DAY_MODULUS);
        Self(day << (OFFSET_BITS + COUNT_BITS) | count << OFFSET_BITS | offset)
    }

    #[inline]
    fn unpack(self, now: u64) -> KeyState {
        if self.0 == 0 {
            return KeyState::default();
        }
        let today = day_of(now);
        let stored = (self.0 >> (OFFSET_BITS + COUNT_BITS)) as u32;
        let behind = today.wrapping_sub(stored) % DAY_MODULUS;
        let day = if behind < DAY_MODULUS / 2 {
            today.saturating_sub(behind)
        } else {
            today.saturating_add(DAY_MODULUS - behind)
        };
        KeyState {
            tat: u64::from(day)
                .saturating_mul(MICROS_PER_DAY)
                .saturating_add(self.0 & OFFSET_MASK),
            day,
            count: ((self.0 >> OFFSET_BITS) & COUNT_MASK) as u32,
        }
    }

    /// [`KeyState::apply`] on the stored form.
    #[inline]
    fn apply(&mut self, limits: Limits, now: u64) -> Outcome {
        let mut state = self.unpack(now);
        let outcome = state.apply(limits, now);
        if outcome.denied_by.is_none() || outcome.rewound {
            *self = Self::pack(state);
        }
        outcome
    }

    /// [`KeyState::apply`] on a shared stored form: a compare-and-swap loop,
    /// so concurrent requests of one key never wait on each other. A denial
    /// writes nothing (unless it caps a debt left by a clock step back).
    #[inline]
    pub(crate) fn apply_shared(cell: &AtomicU64, limits: Limits, now: u64) -> Outcome {
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let mut packed = Self(current);
            let outcome = packed.apply(limits, now);
            if outcome.denied_by.is_some() && !outcome.rewound {
                return outcome;
            }
            match cell.compare_exchange_weak(current, packed.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }

    /// The stored form of a shared cell.
    #[inline]
    pub(crate) fn load(cell: &AtomicU64) -> Self {
        Self(cell.load(Ordering::Acquire))
    }

    /// [`KeyState::peek`] on the stored form.
    pub(crate) fn peek(self, limits: Limits, now: u64) -> Snapshot {
        self.unpack(now).peek(limits, now)
    }

    /// [`KeyState::is_idle`] on the stored form.
    pub(crate) fn is_idle(self, now: u64) -> bool {
        self.unpack(now).is_idle(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let day = 19_000 + (seed % 3000) as u32;
            let tat =
                u64::from(day) * MICROS_PER_DAY + (seed >> 20) % (MICROS_PER_DAY + 60_000_000);
            let state = KeyState {
                tat,
                day,
                count: 1 + (seed >> 8) as u32 % 10_000,
            };
            let packed = PackedState::pack(state);
            // Read back any time from the same day to 4000 days later, or
            // after a clock step back of up to 4000 days.
            let ahead = (seed >> 40) % 4000;
            for now_day in [
                u64::from(day),
                u64::from(day) + ahead,
                u64::from(day) - ahead,
            ] {
                let now = now_day * MICROS_PER_DAY + (seed >> 3) % MICROS_PER_DAY;
                assert_eq!(packed.unpack(now), state, "{state:?} read on day {now_day}");
            }
        }
        assert_eq!(PackedState::default().unpack(NOON), KeyState::default());
        assert_eq!(std::mem::size_of::<PackedState>(), 8);
    }

    const NOON: u64 = 20_000 * MICROS_PER_DAY + MICROS_PER_DAY / 2;

    #[test]
    fn state_is_small() {
        assert_eq!(std::mem::size_of::<KeyState>(), 16);
    }

    #[test]
    fn burst_then_one_per_interval() {
        let limits = Limits::new(4, 100).unwrap();
        let mut state = KeyState::default();
        for left in (0..4).rev() {
            let d = state.decide(limits, NOON);
            assert!(d.is_admitted());
            assert_eq!(d.snapshot().minute.remaining, left);
        }
        let d = state.decide(limits, NOON);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(15)));
        assert_eq!(d.denial().unwrap().denied_by, DeniedBy::Minute);
        assert_eq!(d.snapshot().minute.reset, Duration::from_secs(60));
        assert_eq!(d.snapshot().day.remaining, 96);
        let later = NOON + 15 * 1_000_000;
        assert!(!state.decide(limits, later - 1).is_admitted());
        assert!(state.decide(limits, later).is_admitted());
    }

    #[test]
    fn idle_only_when_full_and_from_a_past_day() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        assert!(state.is_idle(NOON));
        let _ = state.decide(limits, NOON);
        assert!(!state.is_idle(NOON));
        assert!(!state.is_idle(NOON + 60_000_000));
        assert!(state.is_idle(NOON + MICROS_PER_DAY));
    }

    #[test]
    fn a_clock_step_back_costs_at_most_one_full_bucket() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        assert!(state.decide(limits, NOON).is_admitted());
        // An hour back: a full bucket of debt, not an hour of it.
        let d = state.decide(limits, NOON - 3_600_000_000);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(d.snapshot().minute.reset, Duration::from_secs(60));
        assert_eq!(d.snapshot().minute.remaining, 0);
        let d = state.decide(limits, NOON - 3_600_000_000 + 1_000_000);
        assert!(d.is_admitted());
        assert!(d.snapshot().minute.reset <= Duration::from_secs(60));
    }

    #[test]
    fn a_manual_clock_at_the_end_of_time_does_not_overflow() {
        let limits = Limits::new(1, 1).unwrap();
        let mut state = KeyState::default();
        let d = state.decide(limits, u64::MAX);
        assert!(d.is_admitted());
        let packed = PackedState::pack(state);
        assert_eq!(packed.unpack(u64::MAX).count, 1);
        assert!(!state.decide(limits, u64::MAX).is_admitted());
        assert!(!PackedState::pack(state).is_idle(u64::MAX));
    }

    #[test]
    fn a_past_day_is_judged_against_the_effective_time() {
        let limits = Limits::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let day = (seed % 30) as u32 + 19_990;
            let state = KeyState {
                tat: u64::from(day) * MICROS_PER_DAY + (seed >> 20) % MICROS_PER_DAY,
                day,
                count: 5,
            };
            let now = 20_000 * MICROS_PER_DAY + (seed >> 3) % (20 * MICROS_PER_DAY);
            let (effective, _, count) = state.observe(limits, now);
            let past = state.day < day_of(effective);
            assert_eq!(count, if past { 0 } else { 5 }, "{state:?} at {now}");
        }
        for now in [u64::MAX, u64::MAX - MICROS_PER_DAY] {
            let state = KeyState {
                tat: 0,
                day: u32::MAX,
                count: 5,
            };
            assert_eq!(state.observe(limits, now).2, 5);
        }
    }

    #[test]
    fn a_clock_step_back_keeps_the_day() {
        let limits = Limits::new(1000, 1).unwrap();
        let mut state = KeyState::default();
        assert!(state.decide(limits, NOON).is_admitted());
        let d = state.decide(limits, NOON - MICROS_PER_DAY);
        assert!(d.denial().unwrap().denied_by.includes_day());
    }
}
