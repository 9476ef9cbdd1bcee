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

use crate::{Clock, Decision, Denial, DeniedBy, Limits, PolicySnapshot, Snapshot};

pub(crate) const MICROS_PER_DAY: u64 = 86_400_000_000;

/// The most debt an admission can leave, under any limits: one minute (the
/// capacity `rpm * T` is at most that). A key found with more is ahead of the
/// clock, which must have stepped back (or been read late).
const MAX_DEBT: u64 = 60_000_000;

/// [`Outcome::behind_since`] of a key the clock is not behind. No step back
/// starts then: a debt above a minute needs a `now` at least a minute before
/// the end of time.
const NOT_BEHIND: u64 = u64::MAX;

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
    u64::from(limits.capacity_micros())
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

/// The snapshot of a key whose debt (at most a minute: it can exceed the
/// capacity after the limits were lowered) and count (after the decision)
/// are given.
#[inline]
pub(crate) fn snapshot(limits: Limits, now: u64, debt: u64, count: u32) -> Snapshot {
    // The room is at most a minute in µs: it fits in u32, and below 2^26 as
    // `per_interval` requires.
    let room = capacity(limits).saturating_sub(debt) as u32;
    let remaining = limits.per_interval(room);
    let midnight = Duration::from_micros(until_midnight(now));
    // A refusal's retry times are these same durations (see `decision`).
    Snapshot {
        minute: PolicySnapshot {
            limit: limits.rate_limit_per_minute(),
            remaining,
            reset: Duration::from_micros(debt),
            next_quota_in: Duration::from_micros(next_token(limits, debt)),
        },
        day: PolicySnapshot {
            limit: limits.daily_limit(),
            remaining: limits.daily_limit().saturating_sub(count),
            reset: midnight,
            next_quota_in: midnight,
        },
    }
}

/// The time until the bucket holds one more request than it does with
/// `debt`: zero when it is full; when it has no room, the time until one
/// request fits, `debt + T - capacity`; else the part of the debt above its
/// last whole interval, `debt - T * floor((debt - 1) / T)`, in `(0, T]`.
/// (Computed from the debt alone, not from `remaining`, so the two products
/// run side by side.)
#[inline]
fn next_token(limits: Limits, debt: u64) -> u64 {
    if debt == 0 {
        0
    } else if debt + interval(limits) > capacity(limits) {
        debt + interval(limits) - capacity(limits)
    } else {
        // Below the capacity, so below 2^26 as `per_interval` requires.
        debt - interval(limits) * u64::from(limits.per_interval((debt - 1) as u32))
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
    // Refused by the minute, the bucket has no room: the next request
    // regenerates when this one fits. Refused by the day: at midnight.
    let (minute_wait, day_wait) = (snapshot.minute.next_quota_in, snapshot.day.reset);
    let retry_after = match denied_by {
        DeniedBy::Minute => minute_wait,
        DeniedBy::Day => day_wait,
        DeniedBy::Both => minute_wait.max(day_wait),
    };
    Decision::Denied(Denial {
        denied_by,
        retry_after,
        snapshot,
    })
}

/// The time until the next 00:00:00 UTC, in (0, 1 day].
#[inline]
pub(crate) fn until_midnight(now: u64) -> u64 {
    MICROS_PER_DAY - now % MICROS_PER_DAY
}

/// A key's record of a clock step back: the clock read `since` when the key
/// was first found more than a minute (any bucket) ahead of it, with its `tat` of
/// then. The key is refused until the clock has run a full bucket from
/// `since`; then its bucket has refilled in the clock's own time.
///
/// A record is only trusted while the key's `tat` is still the one it was
/// made with and `since` is not after `now`: any admission in between, or a
/// further step back, starts a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StepBack {
    pub(crate) since: u64,
    pub(crate) tat: u64,
}

/// What one request did to a key: the effective time it was decided at (see
/// [`KeyState::observe`]), the debt and count it left, the policy that
/// denied it, if any, and whether the state changed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    now: u64,
    /// The minute debt after the decision, at most a minute.
    debt: u64,
    count: u32,
    denied_by: Option<DeniedBy>,
    /// When the clock is behind the key's state by more than a minute, the
    /// start of that step back as the key now records it (see [`StepBack`],
    /// whose `tat` is the unchanged state's); [`NOT_BEHIND`] otherwise. A
    /// plain word keeps the outcome small on the hot path.
    behind_since: u64,
    /// Whether the state was changed and must be written.
    pub(crate) changed: bool,
}

impl Outcome {
    #[inline]
    pub(crate) fn decision(self, limits: Limits) -> Decision {
        match self.behind_since() {
            None => decision(limits, self.now, self.debt, self.count, self.denied_by),
            Some(since) => stepped_back(limits, self.now, since, self.count),
        }
    }

    /// The effective time of the decision.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.now
    }

    /// The record of a step back the key keeps after this outcome, `state`
    /// being the key's state after it (a refusal while behind leaves it as
    /// it was): the step back's start and the state's arrival time; none
    /// when the clock is not behind.
    pub(crate) fn step_back_of(&self, state: PackedState, now: u64) -> Option<StepBack> {
        self.behind_since().map(|since| StepBack {
            since,
            tat: state.tat(now),
        })
    }

    /// The start of the step back the key must record, when the clock is
    /// behind it.
    #[inline]
    pub(crate) fn behind_since(&self) -> Option<u64> {
        (self.behind_since != NOT_BEHIND).then_some(self.behind_since)
    }
}

/// The decision for a key whose state is more than a minute ahead of
/// the clock since `since`: denied by the minute (and the day, if used up)
/// until a full bucket of the clock's time has passed.
pub(crate) fn stepped_back(limits: Limits, now: u64, since: u64, count: u32) -> Decision {
    let wait = Duration::from_micros(since.saturating_add(capacity(limits)).saturating_sub(now));
    let mut snapshot = snapshot(limits, now, capacity(limits), count);
    snapshot.minute.reset = wait;
    snapshot.minute.next_quota_in = wait;
    let (denied_by, retry_after) = if count < limits.daily_limit() {
        (DeniedBy::Minute, wait)
    } else {
        (DeniedBy::Both, wait.max(snapshot.day.reset))
    };
    Decision::Denied(Denial {
        denied_by,
        retry_after,
        snapshot,
    })
}

impl KeyState {
    /// The effective time, the minute debt (not capped) and that day's count
    /// as seen at `now`.
    ///
    /// The effective time is never before the start of the stored day, so
    /// the day never goes backwards after a clock step back: a count is
    /// neither carried into an earlier day nor overwritten by one, and a
    /// request at such a `now` is counted in the stored (later) day. A count
    /// from a past day is zero.
    #[inline]
    fn observe(&self, now: u64, today: u32) -> (u64, u64, u32) {
        let now = now.max(u64::from(self.day).saturating_mul(MICROS_PER_DAY));
        let debt = self.tat.saturating_sub(now);
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
    pub(crate) fn decide(
        &mut self,
        limits: Limits,
        now: u64,
        step_back: Option<StepBack>,
    ) -> (Decision, Option<StepBack>) {
        let outcome = self.apply(limits, now, step_back);
        let recorded = outcome.behind_since().map(|since| StepBack {
            since,
            tat: self.tat,
        });
        (outcome.decision(limits), recorded)
    }

    /// The state change of one request: the cheap part of a decision, done
    /// under the shard's lock. `recorded` is the key's record of a clock step
    /// back, if it has one.
    ///
    /// Time that runs backwards never gives back spent quota: a `now` at
    /// which the key's debt exceeds a minute, more than any bucket holds (a
    /// clock that stepped back, or a clock read that came late), is refused
    /// without writing anything, so when the clock is back the key is exactly
    /// where it was. Only if the clock stays behind for a full bucket of its
    /// own time (a real step back) is the bucket refilled, from the moment the
    /// step back was first seen: a real step back costs at most one bucket.
    #[inline]
    pub(crate) fn apply(
        &mut self,
        limits: Limits,
        now: u64,
        recorded: Option<StepBack>,
    ) -> Outcome {
        self.apply_on(limits, now, day_of(now), recorded)
    }

    /// [`KeyState::apply`], given `today = day_of(now)`.
    #[inline]
    fn apply_on(
        &mut self,
        limits: Limits,
        now: u64,
        today: u32,
        recorded: Option<StepBack>,
    ) -> Outcome {
        let (now, mut debt, count) = self.observe(now, today);
        // The day of the effective time: the stored day when that is later
        // than today (the clock stepped back), else today.
        let day = today.max(self.day);
        let mut changed = false;
        if debt > MAX_DEBT {
            let since = recorded
                .filter(|step_back| step_back.tat == self.tat && step_back.since <= now)
                .map_or(now, |step_back| step_back.since);
            if now - since < capacity(limits) {
                return Outcome {
                    now,
                    debt: capacity(limits),
                    count,
                    denied_by: Some(DeniedBy::Minute),
                    behind_since: since,
                    changed: false,
                };
            }
            // The bucket has refilled in the clock's own time since `since`.
            self.tat = since + capacity(limits);
            debt = 0;
            changed = true;
        }
        let denied_by = verdict(limits, debt, count);
        if denied_by.is_some() {
            return Outcome {
                now,
                debt,
                count,
                denied_by,
                behind_since: NOT_BEHIND,
                changed,
            };
        }
        let debt = debt + interval(limits);
        *self = KeyState {
            // Saturating: a manual clock can be advanced to the end of time.
            tat: now.saturating_add(debt),
            day,
            count: count + 1,
        };
        Outcome {
            now,
            debt,
            count: count + 1,
            denied_by: None,
            behind_since: NOT_BEHIND,
            changed: true,
        }
    }

    /// The state at `now`, consuming nothing.
    pub(crate) fn peek(&self, limits: Limits, now: u64, recorded: Option<StepBack>) -> Snapshot {
        let mut state = *self;
        let outcome = state.apply_peek(limits, now, recorded);
        *outcome.decision(limits).snapshot()
    }

    /// [`KeyState::apply`] without consuming: the outcome of a request that
    /// is never admitted.
    fn apply_peek(&mut self, limits: Limits, now: u64, recorded: Option<StepBack>) -> Outcome {
        let mut outcome = self.apply(limits, now, recorded);
        if outcome.denied_by.is_none() {
            // Admitted: report the state before the admission.
            outcome.debt -= interval(limits);
            outcome.count -= 1;
        }
        outcome
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
        self.unpack_on(day_of(now))
    }

    /// [`PackedState::unpack`], given `today`, the day of the time it is read at.
    #[inline]
    fn unpack_on(self, today: u32) -> KeyState {
        if self.0 == 0 {
            return KeyState::default();
        }
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
    pub(crate) fn apply(
        &mut self,
        limits: Limits,
        now: u64,
        recorded: Option<StepBack>,
    ) -> Outcome {
        let today = day_of(now);
        let mut state = self.unpack_on(today);
        let outcome = state.apply_on(limits, now, today, recorded);
        if outcome.changed {
            *self = Self::pack(state);
        }
        outcome
    }

    /// [`KeyState::apply`] on a shared stored form: a compare-and-swap loop,
    /// so concurrent requests of one key never wait on each other. A denial
    /// writes nothing.
    ///
    /// `read_before` is the clock read before the state was loaded, so it may
    /// be older than the time of the request that wrote the state. That is
    /// harmless while the bucket holds debt (`tat > read_before`): an older
    /// time only sees more debt, so it may refuse a little early but never
    /// admits what a fresh read would not, and an admission moves `tat` on by
    /// one interval either way. Only an idle bucket would start its debt too
    /// early from an old time, so then the clock is read again, after the
    /// load: no request is decided on a state written at a later time than
    /// its own, and a late clock read cannot hand out quota.
    #[inline]
    pub(crate) fn apply_shared<C: Clock + ?Sized>(
        cell: &AtomicU64,
        limits: Limits,
        clock: &C,
        read_before: u64,
    ) -> Outcome {
        let mut current = cell.load(Ordering::Acquire);
        loop {
            let (mut now, mut today) = (read_before, day_of(read_before));
            let mut state = Self(current).unpack_on(today);
            if state.tat <= now {
                now = clock.now().unix_micros();
                if day_of(now) != today {
                    today = day_of(now);
                    state = Self(current).unpack_on(today);
                }
            }
            let outcome = state.apply_on(limits, now, today, None);
            if !outcome.changed {
                return outcome;
            }
            let packed = Self::pack(state);
            match cell.compare_exchange_weak(current, packed.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return outcome,
                Err(actual) => current = actual,
            }
        }
    }

    /// The stored form a shared cell holds as `word`.
    #[inline]
    pub(crate) fn from_word(word: u64) -> Self {
        Self(word)
    }

    /// The word stored in a shared cell.
    #[inline]
    pub(crate) fn word(self) -> u64 {
        self.0
    }

    /// The stored form of a shared cell.
    #[inline]
    pub(crate) fn load(cell: &AtomicU64) -> Self {
        Self(cell.load(Ordering::Acquire))
    }

    /// [`KeyState::peek`] on the stored form.
    pub(crate) fn peek(self, limits: Limits, now: u64, recorded: Option<StepBack>) -> Snapshot {
        self.unpack(now).peek(limits, now, recorded)
    }

    /// The arrival time the state holds, as a [`StepBack`] records it.
    pub(crate) fn tat(self, now: u64) -> u64 {
        self.unpack(now).tat
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
            let (d, _) = state.decide(limits, NOON, None);
            assert!(d.is_admitted());
            assert_eq!(d.snapshot().minute.remaining, left);
        }
        let (d, _) = state.decide(limits, NOON, None);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(15)));
        assert_eq!(d.denial().unwrap().denied_by, DeniedBy::Minute);
        assert_eq!(d.snapshot().minute.reset, Duration::from_secs(60));
        assert_eq!(d.snapshot().day.remaining, 96);
        let later = NOON + 15 * 1_000_000;
        assert!(!state.decide(limits, later - 1, None).0.is_admitted());
        assert!(state.decide(limits, later, None).0.is_admitted());
    }

    #[test]
    fn idle_only_when_full_and_from_a_past_day() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        assert!(state.is_idle(NOON));
        let _ = state.decide(limits, NOON, None);
        assert!(!state.is_idle(NOON));
        assert!(!state.is_idle(NOON + 60_000_000));
        assert!(state.is_idle(NOON + MICROS_PER_DAY));
    }

    #[test]
    fn time_that_runs_back_gives_nothing_back() {
        // 60 admitted at t; one request whose clock reads t - 30 s (late, or
        // a step back undone at once); then back at t: nothing is left.
        let limits = Limits::new(60, 1000).unwrap();
        let mut state = KeyState::default();
        for _ in 0..60 {
            assert!(state.decide(limits, NOON, None).0.is_admitted());
        }
        let before = state;
        let (d, step_back) = state.decide(limits, NOON - 30_000_000, None);
        assert!(!d.is_admitted());
        assert_eq!(state, before, "a refusal writes nothing");
        assert_eq!(step_back.map(|s| s.since), Some(NOON - 30_000_000));
        for _ in 0..30 {
            assert!(!state.decide(limits, NOON, step_back).0.is_admitted());
        }
        assert!(state.decide(limits, NOON + 1_000_000, None).0.is_admitted());
    }

    #[test]
    fn a_real_step_back_costs_at_most_one_full_bucket() {
        let limits = Limits::default();
        let mut state = KeyState::default();
        assert!(state.decide(limits, NOON, None).0.is_admitted());
        // An hour back: refused for one bucket of the clock's own time, not an hour.
        let back = NOON - 3_600_000_000;
        let (d, recorded) = state.decide(limits, back, None);
        assert_eq!(d.retry_after(), Some(Duration::from_secs(60)));
        assert_eq!(d.snapshot().minute.reset, Duration::from_secs(60));
        assert_eq!(d.snapshot().minute.remaining, 0);
        let (d, recorded) = state.decide(limits, back + 59_999_999, recorded);
        assert_eq!(d.retry_after(), Some(Duration::from_micros(1)));
        let (d, recorded) = state.decide(limits, back + 60_000_000, recorded);
        assert!(d.is_admitted(), "{d:?}");
        assert_eq!(recorded, None);
        assert_eq!(d.snapshot().minute.remaining, 59);
        // A record from before an admission is not trusted again.
        let stale = StepBack {
            since: back - 600_000_000,
            tat: 0,
        };
        let (d, _) = state.decide(limits, back - 1_000_000, Some(stale));
        assert!(!d.is_admitted());
    }

    #[test]
    fn a_manual_clock_at_the_end_of_time_does_not_overflow() {
        let limits = Limits::new(1, 1).unwrap();
        let mut state = KeyState::default();
        let (d, _) = state.decide(limits, u64::MAX, None);
        assert!(d.is_admitted());
        let packed = PackedState::pack(state);
        assert_eq!(packed.unpack(u64::MAX).count, 1);
        assert!(!state.decide(limits, u64::MAX, None).0.is_admitted());
        assert!(!PackedState::pack(state).is_idle(u64::MAX));
    }

    #[test]
    fn a_past_day_is_judged_against_the_effective_time() {
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
            let (effective, _, count) = state.observe(now, day_of(now));
            let past = state.day < day_of(effective);
            assert_eq!(count, if past { 0 } else { 5 }, "{state:?} at {now}");
        }
        for now in [u64::MAX, u64::MAX - MICROS_PER_DAY] {
            let state = KeyState {
                tat: 0,
                day: u32::MAX,
                count: 5,
            };
            assert_eq!(state.observe(now, day_of(now)).2, 5);
        }
    }

    #[test]
    fn a_clock_step_back_keeps_the_day() {
        let limits = Limits::new(1000, 1).unwrap();
        let mut state = KeyState::default();
        assert!(state.decide(limits, NOON, None).0.is_admitted());
        let (d, _) = state.decide(limits, NOON - MICROS_PER_DAY, None);
        assert!(d.denial().unwrap().denied_by.includes_day());
    }
}
