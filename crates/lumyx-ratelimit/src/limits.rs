use std::fmt;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The two limits of one key: requests per minute and requests per UTC day.
///
/// Both are validated on construction (and on deserialization), so a `Limits`
/// value is always within [`Limits::RATE_LIMIT_PER_MINUTE_RANGE`] and
/// [`Limits::DAILY_LIMIT_RANGE`]. Missing fields take the defaults (60 and 1000).
///
/// ```
/// use lumyx_ratelimit::Limits;
///
/// let limits = Limits::new(120, 5_000)?;
/// assert_eq!(limits.rate_limit_per_minute(), 120);
/// assert_eq!(Limits::default(), Limits::new(60, 1000)?);
///
/// let err = Limits::new(0, 1000).unwrap_err();
/// assert_eq!(err.to_string(), "rate_limit_per_minute must be in 1..=1000, got 0");
///
/// let parsed: Limits = serde_json::from_str(r#"{"daily_limit": 10}"#)?;
/// assert_eq!(parsed, Limits::new(60, 10)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawLimits")]
pub struct Limits {
    rate_limit_per_minute: u32,
    daily_limit: u32,
    /// `60 s / rate_limit_per_minute` in whole µs, computed once here rather
    /// than divided out on every decision.
    #[serde(skip)]
    interval_micros: u32,
    /// The bucket's capacity, `rate_limit_per_minute * interval_micros` (at
    /// most a minute in µs), computed once here.
    #[serde(skip)]
    capacity_micros: u32,
    /// `2^52 / interval_micros + 1`: a multiplier that divides by the interval
    /// exactly for any dividend below 2^26 (see [`Limits::per_interval`]), so
    /// a decision needs no division instruction.
    #[serde(skip)]
    interval_reciprocal: u64,
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("daily_limit", &self.daily_limit)
            .finish()
    }
}

impl Limits {
    /// The allowed values of `rate_limit_per_minute`.
    pub const RATE_LIMIT_PER_MINUTE_RANGE: RangeInclusive<u32> = 1..=1000;
    /// The allowed values of `daily_limit`.
    pub const DAILY_LIMIT_RANGE: RangeInclusive<u32> = 1..=10_000;
    /// The default `rate_limit_per_minute`.
    pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 60;
    /// The default `daily_limit`.
    pub const DEFAULT_DAILY_LIMIT: u32 = 1000;

    /// Validates both limits.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] naming the first field out of its range.
    pub fn new(rate_limit_per_minute: u32, daily_limit: u32) -> Result<Self, Error> {
        check(
            "rate_limit_per_minute",
            Self::RATE_LIMIT_PER_MINUTE_RANGE,
            i64::from(rate_limit_per_minute),
        )?;
        check(
            "daily_limit",
            Self::DAILY_LIMIT_RANGE,
            i64::from(daily_limit),
        )?;
        Ok(Self::new_unchecked(rate_limit_per_minute, daily_limit))
    }

    const fn new_unchecked(rate_limit_per_minute: u32, daily_limit: u32) -> Self {
        let interval_micros = 60_000_000 / rate_limit_per_minute;
        Self {
            rate_limit_per_minute,
            daily_limit,
            interval_micros,
            capacity_micros: interval_micros * rate_limit_per_minute,
            interval_reciprocal: (1 << RECIPROCAL_SHIFT) / interval_micros as u64 + 1,
        }
    }

    /// The emission interval of the minute bucket in microseconds.
    #[inline]
    pub(crate) const fn interval_micros(self) -> u32 {
        self.interval_micros
    }

    /// The capacity of the minute bucket in microseconds: `rpm` intervals.
    #[inline]
    pub(crate) const fn capacity_micros(self) -> u32 {
        self.capacity_micros
    }

    /// `micros / interval_micros`, rounded down, for `micros < 2^26` (above
    /// a minute): with `m = 2^52 / d + 1 = (2^52 + e) / d`, `0 < e <= d`, the
    /// product `micros * m / 2^52` exceeds `micros / d` by less than
    /// `micros * d / 2^52 / d < 1 / d`, too little to reach the next integer.
    #[inline]
    pub(crate) const fn per_interval(self, micros: u32) -> u32 {
        ((micros as u64 * self.interval_reciprocal) >> RECIPROCAL_SHIFT) as u32
    }

    /// Requests per minute: the capacity of the token bucket.
    #[inline]
    pub const fn rate_limit_per_minute(self) -> u32 {
        self.rate_limit_per_minute
    }

    /// Requests per UTC calendar day.
    #[inline]
    pub const fn daily_limit(self) -> u32 {
        self.daily_limit
    }
}

/// The shift of [`Limits::per_interval`]: the dividend and the interval
/// are both below 2^26, so their product is below 2^52, which makes the
/// quotient exact; the product of the dividend and the multiplier (below
/// 2^36) is below 2^62.
const RECIPROCAL_SHIFT: u32 = 52;

impl Default for Limits {
    fn default() -> Self {
        Self::new_unchecked(
            Self::DEFAULT_RATE_LIMIT_PER_MINUTE,
            Self::DEFAULT_DAILY_LIMIT,
        )
    }
}

fn check(field: &'static str, range: RangeInclusive<u32>, value: i64) -> Result<(), Error> {
    let inside = u32::try_from(value).is_ok_and(|v| range.contains(&v));
    if inside {
        Ok(())
    } else {
        Err(Error::OutOfRange {
            field,
            range,
            value,
        })
    }
}

/// The wire form, wide enough that a negative or huge value still gets the
/// error naming the field and its range instead of serde's "expected u32".
#[derive(Deserialize)]
struct RawLimits {
    #[serde(default = "default_rpm")]
    rate_limit_per_minute: i64,
    #[serde(default = "default_daily")]
    daily_limit: i64,
}

fn default_rpm() -> i64 {
    i64::from(Limits::DEFAULT_RATE_LIMIT_PER_MINUTE)
}

fn default_daily() -> i64 {
    i64::from(Limits::DEFAULT_DAILY_LIMIT)
}

impl TryFrom<RawLimits> for Limits {
    type Error = Error;

    fn try_from(raw: RawLimits) -> Result<Self, Error> {
        check(
            "rate_limit_per_minute",
            Self::RATE_LIMIT_PER_MINUTE_RANGE,
            raw.rate_limit_per_minute,
        )?;
        check("daily_limit", Self::DAILY_LIMIT_RANGE, raw.daily_limit)?;
        // Both fit in u32: `check` accepted them.
        Self::new(raw.rate_limit_per_minute as u32, raw.daily_limit as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive() {
        assert!(Limits::new(1, 1).is_ok());
        assert!(Limits::new(1000, 10_000).is_ok());
        assert_eq!(
            Limits::new(1001, 1).unwrap_err().to_string(),
            "rate_limit_per_minute must be in 1..=1000, got 1001"
        );
        assert_eq!(
            Limits::new(60, 10_001).unwrap_err().to_string(),
            "daily_limit must be in 1..=10000, got 10001"
        );
        assert!(matches!(
            Limits::new(60, 0).unwrap_err(),
            Error::OutOfRange {
                field: "daily_limit",
                range,
                value: 0
            } if range == (1..=10_000)
        ));
    }

    #[test]
    fn per_interval_divides_exactly() {
        for rpm in Limits::RATE_LIMIT_PER_MINUTE_RANGE {
            let limits = Limits::new(rpm, 1).unwrap();
            let d = limits.interval_micros();
            for k in 0..=rpm + 1 {
                for micros in [(k * d).saturating_sub(1), k * d, k * d + 1, k * d + d / 2] {
                    assert_eq!(limits.per_interval(micros), micros / d, "{micros} / {d}");
                }
            }
            let top = (1 << 26) - 1;
            assert_eq!(limits.per_interval(top), top / d);
        }
    }

    #[test]
    fn serde_validates_and_defaults() {
        let limits: Limits = serde_json::from_str("{}").unwrap();
        assert_eq!(limits, Limits::default());
        let json = serde_json::to_string(&Limits::new(7, 70).unwrap()).unwrap();
        assert_eq!(json, r#"{"rate_limit_per_minute":7,"daily_limit":70}"#);
        assert_eq!(
            serde_json::from_str::<Limits>(&json).unwrap(),
            Limits::new(7, 70).unwrap()
        );
        let err = serde_json::from_str::<Limits>(r#"{"rate_limit_per_minute":-5}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("rate_limit_per_minute must be in 1..=1000, got -5"),
            "{err}"
        );
        let err = serde_json::from_str::<Limits>(r#"{"daily_limit":99999999999}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("daily_limit must be in 1..=10000, got 99999999999"),
            "{err}"
        );
    }
}
