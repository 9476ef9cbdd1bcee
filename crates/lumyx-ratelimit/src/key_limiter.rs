//! The limits of one key, for callers that keep each key's data themselves:
//! the same decision as [`MemoryLimiter`](crate::MemoryLimiter), without its
//! map, so a caller that has already found the key (in its own table) pays
//! no second lookup.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::policy::{PackedState, StepBack};
use crate::{Clock, Decision, Limits, Snapshot};

/// Both policies of one key, in one atomic word, decided exactly as
/// [`MemoryLimiter`](crate::MemoryLimiter) decides (the same arithmetic, the
/// same guards against a clock that runs back).
///
/// A decision is a compare-and-swap of the word; the mutex beside it is
/// taken only while the clock is more than a minute behind the key's state
/// (a step back), to keep the key's record of it.
///
/// ```
/// use std::time::Duration;
/// use lumyx_ratelimit::{KeyLimiter, Limits, ManualClock};
///
/// let clock = ManualClock::at("2026-11-27T12:00:00Z".parse()?);
/// let key = KeyLimiter::default();
/// let limits = Limits::new(2, 100)?;
/// assert!(key.check(limits, &clock).is_admitted());
/// assert!(key.check(limits, &clock).is_admitted());
/// assert_eq!(key.check(limits, &clock).retry_after(), Some(Duration::from_secs(30)));
/// assert_eq!(key.peek(limits, &clock).day.remaining, 98);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Default)]
pub struct KeyLimiter {
    state: AtomicU64,
    step_back: Mutex<Option<StepBack>>,
    /// Whether `step_back` holds a record, read without its lock.
    recorded: AtomicBool,
}

impl KeyLimiter {
    /// Decides one request under `limits` at the time `clock` reads,
    /// consuming from both policies iff both admit it.
    #[inline]
    pub fn check<C: Clock + ?Sized>(&self, limits: Limits, clock: &C) -> Decision {
        let read_before = clock.now().unix_micros();
        let outcome = PackedState::apply_shared(&self.state, limits, clock, read_before);
        if outcome.behind_since().is_none() {
            if self.recorded.load(Ordering::Relaxed) {
                // The clock is back: the record of the step back no longer
                // stands.
                self.record(None);
            }
            return outcome.decision(limits);
        }
        self.check_behind(limits, clock)
    }

    /// Keeps `record` as the key's record of a step back.
    #[cold]
    fn record(&self, record: Option<StepBack>) {
        let mut recorded = self
            .step_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *recorded = record;
        self.recorded.store(record.is_some(), Ordering::Relaxed);
    }

    /// [`KeyLimiter::check`] while the clock is behind the state: with the
    /// key's record of the step back, under its lock.
    #[cold]
    fn check_behind<C: Clock + ?Sized>(&self, limits: Limits, clock: &C) -> Decision {
        let mut recorded = self
            .step_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = clock.now().unix_micros();
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let mut state = PackedState::from_word(current);
            let outcome = state.apply(limits, now, *recorded);
            let written = !outcome.changed
                || self
                    .state
                    .compare_exchange(current, state.word(), Ordering::AcqRel, Ordering::Acquire)
                    .map_err(|actual| current = actual)
                    .is_ok();
            if written {
                *recorded = outcome.step_back_of(state, now);
                self.recorded.store(recorded.is_some(), Ordering::Relaxed);
                return outcome.decision(limits);
            }
        }
    }

    /// The key's state as one word, to keep across a restart with
    /// [`KeyLimiter::restore`]: the minute bucket and the day's count, in
    /// absolute time, so a word saved yesterday restores as a fresh day and
    /// one saved a second ago as the quota it left.
    ///
    /// ```
    /// use lumyx_ratelimit::{KeyLimiter, Limits, ManualClock};
    ///
    /// let clock = ManualClock::at("2026-11-27T12:00:00Z".parse()?);
    /// let limits = Limits::new(60, 100)?;
    /// let before = KeyLimiter::default();
    /// for _ in 0..3 {
    ///     assert!(before.check(limits, &clock).is_admitted());
    /// }
    /// let after = KeyLimiter::default();
    /// after.restore(before.saved());
    /// assert_eq!(after.peek(limits, &clock).day.remaining, 97);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn saved(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// Puts back a state that [`KeyLimiter::saved`] gave, in place of the
    /// key's (0 is a fresh key).
    pub fn restore(&self, saved: u64) {
        self.state.store(saved, Ordering::Release);
        self.record(None);
    }

    /// The state under `limits` at the time `clock` reads, consuming nothing.
    pub fn peek<C: Clock + ?Sized>(&self, limits: Limits, clock: &C) -> Snapshot {
        let recorded = *self
            .step_back
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = clock.now().unix_micros();
        PackedState::from_word(self.state.load(Ordering::Acquire)).peek(limits, now, recorded)
    }
}

impl fmt::Debug for KeyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLimiter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{ManualClock, MemoryLimiter};

    #[test]
    fn a_saved_state_restores_the_quota_it_left_and_a_day_old_one_is_fresh() {
        let clock = ManualClock::at("2026-11-27T23:59:00Z".parse().unwrap());
        let limits = Limits::new(5, 10).unwrap();
        let before = KeyLimiter::default();
        for _ in 0..5 {
            assert!(before.check(limits, &clock).is_admitted());
        }
        assert!(!before.check(limits, &clock).is_admitted());
        let saved = before.saved();

        let after = KeyLimiter::default();
        after.restore(saved);
        assert!(
            !after.check(limits, &clock).is_admitted(),
            "the minute stays spent"
        );
        assert_eq!(after.peek(limits, &clock).day.remaining, 5);

        clock.advance(Duration::from_secs(120));
        let next_day = KeyLimiter::default();
        next_day.restore(saved);
        assert_eq!(next_day.peek(limits, &clock).day.remaining, 10);
        assert!(next_day.check(limits, &clock).is_admitted());
    }

    #[test]
    fn decides_as_the_memory_limiter_does() {
        let clock = ManualClock::at("2026-11-27T23:58:30Z".parse().unwrap());
        let limiter = MemoryLimiter::<u8, _>::with_clock(clock.clone()).with_daily_sweeps(false);
        let key = KeyLimiter::default();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let limits =
                Limits::new(1 + (seed >> 8) as u32 % 12, 1 + (seed >> 20) as u32 % 40).unwrap();
            if seed.is_multiple_of(4) {
                clock.advance(Duration::from_micros((seed >> 32) % 9_000_000));
            } else if seed % 16 == 1 || seed % 16 == 5 {
                let back = (seed >> 32) % 4_000_000_000;
                let now = crate::Clock::now(&clock).unix_micros().saturating_sub(back);
                clock.set(crate::Timestamp::from_unix_micros(now).to_utc());
            }
            assert_eq!(key.check(limits, &clock), limiter.check(&0, limits));
            assert_eq!(key.peek(limits, &clock), limiter.peek(&0, limits));
        }
    }
}
