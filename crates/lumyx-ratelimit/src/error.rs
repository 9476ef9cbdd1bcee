use std::ops::RangeInclusive;

/// Why a limit could not be built or a decision could not be made.
///
/// A denied request is not an error: it is a [`Decision::Denied`](crate::Decision::Denied).
/// An `Error` means the limiter could not decide at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
    /// The shared backend could not be reached and the outage policy is
    /// [`OutagePolicy::Closed`](crate::OutagePolicy): the server answers 503.
    #[error("the rate-limit backend is unavailable (outage policy: closed): {reason}")]
    Unavailable {
        /// What went wrong, for logs.
        reason: String,
    },
    /// The Redis connection URL could not be used.
    #[error(
        "expected a Redis URL such as redis://127.0.0.1:6379/, got one that does not parse: {reason}"
    )]
    InvalidUrl {
        /// Why the URL was refused.
        reason: String,
    },
}
