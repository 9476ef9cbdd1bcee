use std::fmt;
use std::time::Duration;

use crate::{Decision, Snapshot};

/// A duration written the way Go's `time.Duration` prints it, as OpenAI's
/// `x-ratelimit-reset-*` headers do (SPEC §3): under a second in whole
/// milliseconds (`850ms`), otherwise whole seconds rounded up (`1s`, `6m0s`,
/// `11h23m20s`). Zero is `0s`; any non-zero time under a millisecond is `1ms`.
///
/// ```
/// use std::time::Duration;
/// use lumyx_ratelimit::GoDuration;
///
/// assert_eq!(GoDuration(Duration::from_millis(850)).to_string(), "850ms");
/// assert_eq!(GoDuration(Duration::from_millis(1001)).to_string(), "2s");
/// assert_eq!(GoDuration(Duration::from_secs(360)).to_string(), "6m0s");
/// assert_eq!(GoDuration(Duration::from_secs(41_000)).to_string(), "11h23m20s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GoDuration(pub Duration);

impl fmt::Display for GoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let millis = ceil_millis(d);
        if millis < 1000 {
            return write!(f, "{millis}ms");
        }
        let secs = ceil_secs(d);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            write!(f, "{h}h{m}m{s}s")
        } else if m > 0 {
            write!(f, "{m}m{s}s")
        } else {
            write!(f, "{s}s")
        }
    }
}

/// Whole seconds, rounded up.
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Whole milliseconds, rounded up.
fn ceil_millis(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

impl Snapshot {
    /// The rate-limit headers of SPEC §3 for this snapshot, in order, as
    /// lower-case name and value pairs (no web framework needed).
    ///
    /// ```
    /// use std::time::Duration;
    /// use lumyx_ratelimit::{PolicySnapshot, Snapshot};
    ///
    /// let snapshot = Snapshot {
    ///     minute: PolicySnapshot { limit: 60, remaining: 59, reset: Duration::from_secs(1) },
    ///     day: PolicySnapshot { limit: 1000, remaining: 998, reset: Duration::from_secs(41_000) },
    /// };
    /// let headers = snapshot.headers();
    /// assert_eq!(headers[0], ("x-ratelimit-limit-requests", "60".to_string()));
    /// assert_eq!(headers[5], ("x-ratelimit-reset-requests-day", "11h23m20s".to_string()));
    /// assert_eq!(headers[7].1, r#""minute";r=59;t=1, "day";r=998;t=41000"#);
    /// ```
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let (minute, day) = (&self.minute, &self.day);
        vec![
            ("x-ratelimit-limit-requests", minute.limit.to_string()),
            (
                "x-ratelimit-remaining-requests",
                minute.remaining.to_string(),
            ),
            (
                "x-ratelimit-reset-requests",
                GoDuration(minute.reset).to_string(),
            ),
            ("x-ratelimit-limit-requests-day", day.limit.to_string()),
            (
                "x-ratelimit-remaining-requests-day",
                day.remaining.to_string(),
            ),
            (
                "x-ratelimit-reset-requests-day",
                GoDuration(day.reset).to_string(),
            ),
            (
                "ratelimit-policy",
                format!(
                    "\"minute\";q={};w=60, \"day\";q={};w=86400",
                    minute.limit, day.limit
                ),
            ),
            (
                "ratelimit",
                format!(
                    "\"minute\";r={};t={}, \"day\";r={};t={}",
                    minute.remaining,
                    ceil_secs(minute.reset),
                    day.remaining,
                    ceil_secs(day.reset)
                ),
            ),
        ]
    }
}

impl Decision {
    /// The headers of SPEC §3 for this decision: the snapshot's eight, and for
    /// a denial (a 429) also `retry-after` (whole seconds rounded up, at least
    /// 1) and `retry-after-ms` (whole milliseconds rounded up, at least 1).
    ///
    /// `x-request-id` is the server's to add.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = self.snapshot().headers();
        if let Some(retry_after) = self.retry_after() {
            headers.push(("retry-after", ceil_secs(retry_after).max(1).to_string()));
            headers.push((
                "retry-after-ms",
                ceil_millis(retry_after).max(1).to_string(),
            ));
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(d: Duration) -> String {
        GoDuration(d).to_string()
    }

    #[test]
    fn go_durations() {
        assert_eq!(go(Duration::ZERO), "0s");
        assert_eq!(go(Duration::from_nanos(1)), "1ms");
        assert_eq!(go(Duration::from_micros(999_001)), "1s");
        assert_eq!(go(Duration::from_millis(999)), "999ms");
        assert_eq!(go(Duration::from_secs(1)), "1s");
        assert_eq!(go(Duration::from_millis(59_001)), "1m0s");
        assert_eq!(go(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go(Duration::from_secs(86_400)), "24h0m0s");
    }
}
