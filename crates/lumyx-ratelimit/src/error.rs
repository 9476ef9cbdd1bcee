use std::error::Error as StdError;
use std::ops::RangeInclusive;

/// Why a limit could not be built or a decision could not be made.
///
/// A denied request is not an error: it is a [`Decision::Denied`](crate::Decision::Denied).
/// An `Error` means the limiter could not decide at all. Errors keep their
/// causes, reachable through [`source`](StdError::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A limit was outside its allowed range.
    #[error("{field} must be in {}..={}, got {value}", range.start(), range.end())]
    OutOfRange {
        /// The name of the field, as in the key record (`rate_limit_per_minute`, `daily_limit`).
        field: &'static str,
        /// The allowed range.
        range: RangeInclusive<u32>,
        /// The value that came.
        value: i64,
    },
    /// The shared backend cannot serve (unreachable, or it says it cannot
    /// serve now) and the outage policy is fail-closed: a server answers 503.
    #[error("the rate-limit backend is unavailable and the outage policy is fail-closed")]
    Unavailable {
        /// What went wrong.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The backend refused this one decision because of its key's data (in
    /// Redis: the key holds another type, or the script failed). Other keys
    /// are decided as usual; a server answers 503.
    #[error("the rate-limit backend could not decide this request")]
    Failed {
        /// What the backend answered.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The limiter's configuration cannot be used (e.g. connection settings
    /// the Redis client refuses).
    #[error("invalid rate-limit configuration: {what}")]
    Config {
        /// What was configured wrong.
        what: &'static str,
        /// Why it was refused.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}
