//! What the requests of one key came to, per UTC day: admitted, or refused,
//! and why. The limiter counts its own decisions; a caller adds the refusals
//! it makes before the limits (an expired, revoked or out-of-scope key).
//!
//! In memory a key's counts are a [`UsageCounter`]: relaxed atomic adds, and
//! a lock only for the first count of a new UTC day. In Redis they are a hash
//! beside the key's limiter state, written by the same script as the
//! decision (see `RedisLimiter::check_counted`). Both keep the last
//! [`USAGE_DAYS`] days and all-time totals.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::policy::day_of;
use crate::{Decision, DeniedBy, Timestamp};

/// How many UTC days of counts are kept, today included.
pub const USAGE_DAYS: usize = 31;

/// What one request came to, as usage counts tell it. The names are the
/// error codes an API answers with (`admitted` for success).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counted {
    /// Admitted by both limits.
    Admitted,
    /// Refused by the minute limit (`rate_limit_exceeded`).
    MinuteLimit,
    /// Refused by the day limit, alone or with the minute's
    /// (`daily_limit_exceeded`).
    DayLimit,
    /// Refused because the key had expired (`api_key_expired`).
    Expired,
    /// Refused because the key was revoked (`api_key_revoked`).
    Revoked,
    /// Refused because the key lacks the route's scope (`insufficient_scope`).
    OutOfScope,
}

impl Counted {
    /// Every kind, in the order of [`Counts`].
    pub const ALL: [Counted; 6] = [
        Counted::Admitted,
        Counted::MinuteLimit,
        Counted::DayLimit,
        Counted::Expired,
        Counted::Revoked,
        Counted::OutOfScope,
    ];

    /// The name: `admitted`, or the code of the refusal.
    pub const fn code(self) -> &'static str {
        match self {
            Counted::Admitted => "admitted",
            Counted::MinuteLimit => "rate_limit_exceeded",
            Counted::DayLimit => "daily_limit_exceeded",
            Counted::Expired => "api_key_expired",
            Counted::Revoked => "api_key_revoked",
            Counted::OutOfScope => "insufficient_scope",
        }
    }

    /// What a limiter decision came to.
    pub const fn of(decision: &Decision) -> Counted {
        match decision {
            Decision::Admitted(_) => Counted::Admitted,
            Decision::Denied(denial) => match denial.denied_by {
                DeniedBy::Minute => Counted::MinuteLimit,
                DeniedBy::Day | DeniedBy::Both => Counted::DayLimit,
            },
        }
    }

    /// The kind with this code.
    pub fn from_code(code: &str) -> Option<Counted> {
        Counted::ALL.into_iter().find(|kind| kind.code() == code)
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Counted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A count of each [`Counted`] kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Counts([u64; 6]);

impl Counts {
    /// The count of one kind.
    pub const fn get(&self, kind: Counted) -> u64 {
        self.0[kind.index()]
    }

    /// Admitted requests.
    pub const fn admitted(&self) -> u64 {
        self.get(Counted::Admitted)
    }

    /// Refused requests, for any reason.
    pub fn denied(&self) -> u64 {
        self.0[1..].iter().sum()
    }

    /// Every refusal reason with its count, zeros included.
    pub fn denied_by_reason(&self) -> impl Iterator<Item = (Counted, u64)> + '_ {
        Counted::ALL[1..].iter().map(|&kind| (kind, self.get(kind)))
    }

    /// Adds `n` of `kind`.
    pub fn add(&mut self, kind: Counted, n: u64) {
        self.0[kind.index()] = self.0[kind.index()].saturating_add(n);
    }

    /// Whether every count is zero.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&count| count == 0)
    }
}

/// The counts of one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DayUsage {
    /// The UTC day, in days since the Unix epoch.
    pub day: u32,
    /// What the day's requests came to.
    pub counts: Counts,
}

impl DayUsage {
    /// The day's date.
    pub fn date(&self) -> chrono::NaiveDate {
        chrono::DateTime::from_timestamp(i64::from(self.day) * 86_400, 0)
            .unwrap_or_default()
            .date_naive()
    }
}

/// The usage of one key: the last [`USAGE_DAYS`] UTC days, oldest first,
/// every day present; all-time totals; when it was last admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The last days, oldest first, ending today; days without requests have
    /// zero counts.
    pub days: Vec<DayUsage>,
    /// Since the key's first request.
    pub totals: Counts,
    /// The time of the last admitted request, if any.
    pub last_used: Option<Timestamp>,
}

impl Usage {
    /// Usage with `days` laid out for the [`USAGE_DAYS`] days ending on
    /// `today` (days not given count zero).
    pub fn new(
        today: u32,
        days: impl IntoIterator<Item = DayUsage>,
        totals: Counts,
        last_used: Option<Timestamp>,
    ) -> Usage {
        let first = today.saturating_sub(USAGE_DAYS as u32 - 1);
        let mut laid_out: Vec<DayUsage> = (first..=today)
            .map(|day| DayUsage {
                day,
                counts: Counts::default(),
            })
            .collect();
        for given in days {
            if let Some(slot) = given
                .day
                .checked_sub(first)
                .and_then(|at| laid_out.get_mut(at as usize))
            {
                slot.counts = given.counts;
            }
        }
        Usage {
            days: laid_out,
            totals,
            last_used,
        }
    }

    /// Today's counts (the last day).
    pub fn today(&self) -> Counts {
        self.days.last().map(|day| day.counts).unwrap_or_default()
    }
}

/// One counter tagged with the UTC day it counts: the day from bit
/// `DAY_SHIFT` up, the count below.
const DAY_SHIFT: u32 = 40;
const COUNT_MASK: u64 = (1 << DAY_SHIFT) - 1;

/// The in-memory usage counts of one key.
///
/// Counting is a relaxed atomic add on today's counter and on the total, and
/// a `fetch_max` for the last use; only the first count of a kind on a new
/// UTC day takes a lock, to move the past day's counts into the history.
/// Around midnight a request decided on one side of it may be counted on the
/// other, when threads disagree on the day by the time between their clock
/// reads.
///
/// ```
/// use lumyx_ratelimit::{Counted, Timestamp, UsageCounter};
///
/// let counter = UsageCounter::default();
/// let noon = Timestamp::from_unix_micros(20_000 * 86_400_000_000 + 43_200_000_000);
/// counter.count(Counted::Admitted, noon);
/// counter.count(Counted::MinuteLimit, noon);
/// let usage = counter.usage(noon);
/// assert_eq!(usage.today().admitted(), 1);
/// assert_eq!(usage.totals.denied(), 1);
/// assert_eq!(usage.days.len(), 31);
/// ```
pub struct UsageCounter {
    /// Today's count of each kind, tagged with its day.
    today: [AtomicU64; 6],
    totals: [AtomicU64; 6],
    /// µs since the epoch of the last admission; 0 for never.
    last_used: AtomicU64,
    /// Past days with any count, oldest first, at most [`USAGE_DAYS`].
    history: Mutex<Vec<DayUsage>>,
}

impl Default for UsageCounter {
    fn default() -> Self {
        UsageCounter {
            today: Default::default(),
            totals: Default::default(),
            last_used: AtomicU64::new(0),
            history: Mutex::new(Vec::new()),
        }
    }
}

impl UsageCounter {
    /// Counts one request of `kind` at `at`.
    #[inline]
    pub fn count(&self, kind: Counted, at: Timestamp) {
        let now = at.unix_micros();
        let day = u64::from(day_of(now));
        let counter = &self.today[kind.index()];
        let tagged = counter.load(Ordering::Relaxed);
        if tagged >> DAY_SHIFT == day {
            counter.fetch_add(1, Ordering::Relaxed);
        } else {
            self.start_day(kind, day);
        }
        self.totals[kind.index()].fetch_add(1, Ordering::Relaxed);
        if kind == Counted::Admitted {
            self.last_used.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// The first count of `kind` on `day`: the counter's past day goes into
    /// the history, under the lock, and the counter starts at one.
    #[cold]
    fn start_day(&self, kind: Counted, day: u64) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let counter = &self.today[kind.index()];
        let tagged = counter.load(Ordering::Relaxed);
        let counted_day = tagged >> DAY_SHIFT;
        if counted_day == day {
            // Another thread started the day meanwhile.
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if counted_day > day {
            // A request decided before midnight, counted after another
            // thread started the next day: it counts there.
            counter.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let previous = counter.swap(day << DAY_SHIFT | 1, Ordering::Relaxed);
        let (past_day, past_count) = (previous >> DAY_SHIFT, previous & COUNT_MASK);
        if past_count > 0 {
            let past_day = u32::try_from(past_day).unwrap_or(u32::MAX);
            let at = match history.binary_search_by_key(&past_day, |entry| entry.day) {
                Ok(at) => at,
                Err(at) => {
                    history.insert(
                        at,
                        DayUsage {
                            day: past_day,
                            counts: Counts::default(),
                        },
                    );
                    at
                }
            };
            history[at].counts.add(kind, past_count);
            let keep_from = u32::try_from(day)
                .unwrap_or(u32::MAX)
                .saturating_sub(USAGE_DAYS as u32 - 1);
            history.retain(|entry| entry.day >= keep_from);
        }
    }

    /// How many requests were counted in all, of every kind: it moves with
    /// every count, so a saver can tell at a glance whether to save again.
    pub fn counted(&self) -> u64 {
        self.totals
            .iter()
            .map(|total| total.load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// The usage as of `at`: the [`USAGE_DAYS`] days ending on its UTC day.
    pub fn usage(&self, at: Timestamp) -> Usage {
        let today = day_of(at.unix_micros());
        let history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        let mut days: Vec<DayUsage> = history.clone();
        drop(history);
        for kind in Counted::ALL {
            let tagged = self.today[kind.index()].load(Ordering::Relaxed);
            let (day, count) = (tagged >> DAY_SHIFT, tagged & COUNT_MASK);
            if count == 0 {
                continue;
            }
            let day = u32::try_from(day).unwrap_or(u32::MAX);
            match days.iter_mut().find(|entry| entry.day == day) {
                Some(entry) => entry.counts.add(kind, count),
                None => {
                    let mut counts = Counts::default();
                    counts.add(kind, count);
                    days.push(DayUsage { day, counts });
                }
            }
        }
        let mut totals = Counts::default();
        for kind in Counted::ALL {
            totals.add(kind, self.totals[kind.index()].load(Ordering::Relaxed));
        }
        let last_used = match self.last_used.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Timestamp::from_unix_micros(micros)),
        };
        Usage::new(today, days, totals, last_used)
    }

    /// Adds counts read from elsewhere (a saved copy loaded at start).
    pub fn restore(&self, usage: &Usage) {
        let mut history = self.history.lock().unwrap_or_else(PoisonError::into_inner);
        for day in usage.days.iter().filter(|day| !day.counts.is_empty()) {
            match history.binary_search_by_key(&day.day, |entry| entry.day) {
                Ok(at) => {
                    for kind in Counted::ALL {
                        history[at].counts.add(kind, day.counts.get(kind));
                    }
                }
                Err(at) => history.insert(at, *day),
            }
        }
        for kind in Counted::ALL {
            self.totals[kind.index()].fetch_add(usage.totals.get(kind), Ordering::Relaxed);
        }
        if let Some(last_used) = usage.last_used {
            self.last_used
                .fetch_max(last_used.unix_micros(), Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for UsageCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut totals = Counts::default();
        for kind in Counted::ALL {
            totals.add(kind, self.totals[kind.index()].load(Ordering::Relaxed));
        }
        f.debug_struct("UsageCounter")
            .field("totals", &totals)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MICROS_PER_DAY;

    fn at(day: u64, hour: u64) -> Timestamp {
        Timestamp::from_unix_micros(day * MICROS_PER_DAY + hour * 3_600_000_000)
    }

    #[test]
    fn days_roll_into_the_history_and_age_out() {
        let counter = UsageCounter::default();
        for day in 20_000..20_040u64 {
            for _ in 0..(day - 19_990) {
                counter.count(Counted::Admitted, at(day, 10));
            }
            counter.count(Counted::Revoked, at(day, 11));
        }
        let usage = counter.usage(at(20_039, 12));
        assert_eq!(usage.days.len(), USAGE_DAYS);
        assert_eq!(usage.days[0].day, 20_009);
        assert_eq!(usage.days[30].day, 20_039);
        for day in &usage.days {
            assert_eq!(day.counts.admitted(), u64::from(day.day) - 19_990);
            assert_eq!(day.counts.get(Counted::Revoked), 1);
        }
        let admitted: u64 = (20_000..20_040u64).map(|day| day - 19_990).sum();
        assert_eq!(usage.totals.admitted(), admitted);
        assert_eq!(usage.totals.denied(), 40);
        assert_eq!(usage.last_used, Some(at(20_039, 10)));
        // Seen a week later, the last week is empty.
        let later = counter.usage(at(20_046, 0));
        assert_eq!(later.days[30].counts, Counts::default());
        assert_eq!(later.days[23].day, 20_039);
        assert_eq!(later.days[23].counts.admitted(), 49);
    }

    #[test]
    fn threads_count_every_request() {
        let counter = UsageCounter::default();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for day in 0..3u64 {
                        for _ in 0..10_000 {
                            counter.count(Counted::MinuteLimit, at(20_000 + day, 1));
                        }
                    }
                });
            }
        });
        let usage = counter.usage(at(20_002, 2));
        let counts: Vec<u64> = usage.days[28..]
            .iter()
            .map(|day| day.counts.get(Counted::MinuteLimit))
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), 120_000);
        assert_eq!(usage.totals.get(Counted::MinuteLimit), 120_000);
    }

    #[test]
    fn every_kind_has_its_code() {
        for kind in Counted::ALL {
            assert_eq!(Counted::from_code(kind.code()), Some(kind));
        }
        assert_eq!(Counted::from_code("nope"), None);
    }
}
