//! Every numeric range the API enforces, in one place.
//!
//! The four key limits are defined once, in [`lumyx_ratelimit::Limits`], and
//! re-exported here; the other ranges belong to this crate. Servers and
//! clients should read the ranges from here rather than repeat the numbers.

use std::ops::RangeInclusive;

use lumyx_ratelimit::Limits;

/// Allowed values of a key's `rate_limit_per_minute`: 1 to 1000 requests a
/// minute.
pub const RATE_LIMIT_PER_MINUTE_RANGE: RangeInclusive<u32> = Limits::RATE_LIMIT_PER_MINUTE_RANGE;

/// `rate_limit_per_minute` of a key created without one: 60.
pub const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = Limits::DEFAULT_RATE_LIMIT_PER_MINUTE;

/// Allowed values of a key's `daily_limit`: 1 to 10000 requests a UTC day.
pub const DAILY_LIMIT_RANGE: RangeInclusive<u32> = Limits::DAILY_LIMIT_RANGE;

/// `daily_limit` of a key created without one: 1000.
pub const DEFAULT_DAILY_LIMIT: u32 = Limits::DEFAULT_DAILY_LIMIT;

/// Allowed values of the `limit` query parameter of list endpoints: 1 to 100
/// items a page.
pub const LIST_LIMIT_RANGE: RangeInclusive<u32> = 1..=100;

/// `limit` of a list request that gives none: 20.
pub const DEFAULT_LIST_LIMIT: u32 = 20;

/// Allowed values of a chat request's `temperature` (as OpenAI documents it).
pub const TEMPERATURE_RANGE: RangeInclusive<f64> = 0.0..=2.0;

/// Allowed values of a chat request's `top_p` (as OpenAI documents it).
pub const TOP_P_RANGE: RangeInclusive<f64> = 0.0..=1.0;

/// Allowed values of a chat request's `n`, the number of choices to generate
/// (OpenAI's own cap is 128).
pub const CHOICES_RANGE: RangeInclusive<u32> = 1..=128;

/// Smallest `n` (number of choices) a chat request may ask for: the start of
/// [`CHOICES_RANGE`].
pub const MIN_CHOICES: u32 = *CHOICES_RANGE.start();

/// Most key-value pairs a `metadata` map may hold (as OpenAI documents it).
pub const METADATA_MAX_PAIRS: usize = 16;

/// Longest `metadata` key, in characters (as OpenAI documents it).
pub const METADATA_MAX_KEY_CHARS: usize = 64;

/// Longest `metadata` value, in characters (as OpenAI documents it).
pub const METADATA_MAX_VALUE_CHARS: usize = 512;

/// Longest `grace_period_seconds` of a key rotation: 30 days, during which
/// the old key stays valid beside the new one. Longer would leave a key that
/// is meant to be replaced usable for good.
pub const MAX_GRACE_PERIOD_SECONDS: u64 = 30 * 24 * 60 * 60;

/// Allowed values of a key's `expires_at`, in Unix seconds: from 1
/// (1970-01-01T00:00:01Z) to 253402300799 (9999-12-31T23:59:59Z), the latest
/// time a key record holds and RFC 3339 can write. A key that should never
/// expire has no `expires_at`. Whether the time is still in the future needs
/// a clock, so the server checks that when it creates the key.
pub const EXPIRES_AT_RANGE: RangeInclusive<i64> = 1..=253_402_300_799;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_expiry_is_the_latest_time_a_key_record_holds() {
        assert_eq!(
            *EXPIRES_AT_RANGE.end(),
            lumyx_keys::KeyRecord::MAX_TIME.timestamp()
        );
    }
}
