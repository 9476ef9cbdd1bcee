//! The rate-limit headers of every response to a request with a valid key:
//! OpenAI's `x-ratelimit-*` pair of policies, the IETF draft's `ratelimit`
//! and `ratelimit-policy`, and on a refusal `retry-after`, `retry-after-ms`
//! and `x-should-retry`. Written into an `http::HeaderMap` by copying a map
//! that already holds their names (so that no name is hashed per response);
//! the values are formatted on the stack, with no intermediate `String`.

use std::cell::RefCell;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::{Decision, DeniedBy, Snapshot};

/// A duration written the way Go's `time.Duration` prints it, as OpenAI's
/// `x-ratelimit-reset-*` headers do: under a second in whole milliseconds
/// (`850ms`), otherwise whole seconds rounded up (`1s`, `6m0s`,
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
        let mut writer = ValueWriter::new();
        writer.go_duration(self.0);
        // ASCII only.
        f.write_str(std::str::from_utf8(writer.as_bytes()).unwrap_or_default())
    }
}

/// Whole seconds, rounded up.
pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

/// Whole milliseconds, rounded up (in 64 bits: a 128-bit division costs as
/// much as the rest of a header).
fn ceil_millis(d: Duration) -> u64 {
    d.as_secs()
        .saturating_mul(1000)
        .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)))
}

/// The rate-limit headers of one response, as a value: build it with
/// [`Snapshot::headers`] or [`Decision::headers`], then
/// [`write_to`](RateLimitHeaders::write_to) a response's `HeaderMap`.
///
/// For every request whose key is valid:
///
/// | header | value |
/// |---|---|
/// | `x-ratelimit-limit-requests` | requests per minute |
/// | `x-ratelimit-remaining-requests` | requests left in the minute bucket |
/// | `x-ratelimit-reset-requests` | time until the bucket is full again, as a [`GoDuration`] |
/// | `x-ratelimit-limit-requests-day` | requests per UTC day |
/// | `x-ratelimit-remaining-requests-day` | requests left today |
/// | `x-ratelimit-reset-requests-day` | time until 00:00:00 UTC, as a [`GoDuration`] |
/// | `ratelimit-policy` | `"minute";q=60;w=60, "day";q=1000;w=86400` |
/// | `ratelimit` | `"minute";r=59;t=1, "day";r=998;t=41000`: remaining and seconds until more quota (rounded up) |
///
/// The last two follow the IETF draft `draft-ietf-httpapi-ratelimit-headers-10`
/// (structured field lists): there `t` is the time until *more* quota is
/// made available (the next request of the minute bucket, zero when it is
/// full; the next midnight for the day), while OpenAI's
/// `x-ratelimit-reset-requests` is the time until the bucket is *full*.
///
/// A refusal (a 429) adds `retry-after` (whole seconds, rounded up, at least
/// 1, never earlier than the refusing policy's `t`) and `retry-after-ms`
/// (whole milliseconds, rounded up, at least 1); a refusal by the day limit
/// also `x-should-retry: false`, so clients that retry 429s on their own (as
/// OpenAI's official ones do) do not retry until midnight.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use lumyx_ratelimit::{PolicySnapshot, RateLimitHeaders, Snapshot};
///
/// let snapshot = Snapshot {
///     minute: PolicySnapshot {
///         limit: 60,
///         remaining: 50,
///         reset: Duration::from_secs(10),
///         next_quota_in: Duration::from_secs(1),
///     },
///     day: PolicySnapshot {
///         limit: 1000,
///         remaining: 990,
///         reset: Duration::from_secs(41_000),
///         next_quota_in: Duration::from_secs(41_000),
///     },
/// };
/// let mut headers = HeaderMap::new();
/// snapshot.headers().write_to(&mut headers);
/// assert_eq!(headers[RateLimitHeaders::RESET_REQUESTS], "10s");
/// assert_eq!(headers[RateLimitHeaders::RATELIMIT], r#""minute";r=50;t=1, "day";r=990;t=41000"#);
/// assert_eq!(headers.len(), 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitHeaders {
    snapshot: Snapshot,
    refusal: Option<Refusal>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Refusal {
    denied_by: DeniedBy,
    retry_after: Duration,
}

impl RateLimitHeaders {
    /// `x-ratelimit-limit-requests`.
    pub const LIMIT_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
    /// `x-ratelimit-remaining-requests`.
    pub const REMAINING_REQUESTS: HeaderName =
        HeaderName::from_static("x-ratelimit-remaining-requests");
    /// `x-ratelimit-reset-requests`.
    pub const RESET_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
    /// `x-ratelimit-limit-requests-day`.
    pub const LIMIT_REQUESTS_DAY: HeaderName =
        HeaderName::from_static("x-ratelimit-limit-requests-day");
    /// `x-ratelimit-remaining-requests-day`.
    pub const REMAINING_REQUESTS_DAY: HeaderName =
        HeaderName::from_static("x-ratelimit-remaining-requests-day");
    /// `x-ratelimit-reset-requests-day`.
    pub const RESET_REQUESTS_DAY: HeaderName =
        HeaderName::from_static("x-ratelimit-reset-requests-day");
    /// `ratelimit-policy`.
    pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
    /// `ratelimit`.
    pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
    /// `retry-after` (on a refusal).
    pub const RETRY_AFTER: HeaderName = RETRY_AFTER;
    /// `retry-after-ms` (on a refusal).
    pub const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
    /// `x-should-retry` (on a refusal by the day limit).
    pub const SHOULD_RETRY: HeaderName = HeaderName::from_static("x-should-retry");

    /// The headers of a response that consumed nothing or was admitted.
    pub fn of_snapshot(snapshot: Snapshot) -> RateLimitHeaders {
        RateLimitHeaders {
            snapshot,
            refusal: None,
        }
    }

    /// The value of `ratelimit-policy` for these limits, e.g.
    /// `"minute";q=60;w=60, "day";q=1000;w=86400`. It changes only with the
    /// limits, so a caller that keeps one per key passes it to
    /// [`RateLimitHeaders::write_to_with_policy`] and the headers need not
    /// format it.
    pub fn policy_value(rate_limit_per_minute: u32, daily_limit: u32) -> HeaderValue {
        ValueWriter::new()
            .text("\"minute\";q=")
            .number(rate_limit_per_minute)
            .text(";w=60, \"day\";q=")
            .number(daily_limit)
            .text(";w=86400")
            .value()
    }

    /// The headers of a decision: a refusal adds the retry headers.
    pub fn of_decision(decision: &Decision) -> RateLimitHeaders {
        RateLimitHeaders {
            snapshot: *decision.snapshot(),
            refusal: decision.denial().map(|denial| Refusal {
                denied_by: denial.denied_by,
                retry_after: denial.retry_after,
            }),
        }
    }

    /// The snapshot the headers describe.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The value of `retry-after` in seconds, on a refusal: the wait rounded
    /// up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.refusal
            .map(|refusal| ceil_secs(refusal.retry_after).max(1))
    }

    /// The value of `retry-after-ms`, on a refusal: the wait in whole
    /// milliseconds rounded up, at least 1.
    pub fn retry_after_millis(&self) -> Option<u64> {
        self.refusal
            .map(|refusal| ceil_millis(refusal.retry_after).max(1))
    }

    /// Whether a client should retry on its own: `Some(false)` on a refusal
    /// by the day limit (sent as `x-should-retry: false`).
    pub fn should_retry(&self) -> Option<bool> {
        self.refusal
            .filter(|refusal| refusal.denied_by.includes_day())
            .map(|_| false)
    }

    /// How many headers [`write_to`](RateLimitHeaders::write_to) writes: 8,
    /// 10 on a refusal by the minute limit, 11 on one by the day limit.
    pub fn len(&self) -> usize {
        8 + 2 * usize::from(self.refusal.is_some()) + usize::from(self.should_retry().is_some())
    }

    /// Always `false`: there are at least the eight policy headers.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Inserts every header into `headers`, replacing values of the same
    /// names.
    ///
    /// The names are long and none is among `http`'s standard ones, so
    /// hashing them is most of the cost of inserting them one by one. The
    /// headers are instead written into a copy of a map that holds the same
    /// names already (hashed once for the process), and whatever `headers`
    /// held is put back into it, ours replacing any value of the same name.
    pub fn write_to(&self, headers: &mut HeaderMap) {
        self.render(None, headers);
    }

    /// [`write_to`](RateLimitHeaders::write_to), with `policy` as the value
    /// of `ratelimit-policy`: the value [`RateLimitHeaders::policy_value`]
    /// made for the snapshot's limits, kept by the caller (it changes only
    /// with the limits) so that it is not formatted again.
    pub fn write_to_with_policy(&self, policy: &HeaderValue, headers: &mut HeaderMap) {
        self.render(Some(policy), headers);
    }

    fn render(&self, policy: Option<&HeaderValue>, headers: &mut HeaderMap) {
        let count = self.len();
        let Some(templates) = templates() else {
            self.insert_each(policy, headers);
            return;
        };
        let mut rendered = templates[count - 8].clone();
        // The template holds the names in the order the values come.
        let mut slots = rendered.values_mut();
        self.for_each_value(policy, |value| {
            if let Some(slot) = slots.next() {
                *slot = value;
            }
        });
        let theirs = std::mem::replace(headers, rendered);
        if theirs.is_empty() {
            return;
        }
        headers.reserve(theirs.keys_len());
        let mut last_name: Option<HeaderName> = None;
        for (name, value) in theirs {
            // A name comes once, before all of its values.
            if name.is_some() {
                last_name = name;
            }
            if let Some(name) = &last_name
                && !NAMES[..count].contains(name)
            {
                headers.append(name.clone(), value);
            }
        }
    }

    /// The headers inserted one by one, each name hashed: what
    /// [`write_to`](RateLimitHeaders::write_to) does when `http` does not
    /// keep a map's order.
    fn insert_each(&self, policy: Option<&HeaderValue>, headers: &mut HeaderMap) {
        headers.reserve(self.len());
        let mut names = NAMES.iter();
        self.for_each_value(policy, |value| {
            if let Some(name) = names.next() {
                headers.insert(name.clone(), value);
            }
        });
    }

    /// The headers as a new map.
    pub fn to_header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        self.write_to(&mut headers);
        headers
    }

    /// Calls `f` with the value of every header written, in the order of
    /// [`NAMES`]; `ratelimit-policy` is a copy of `policy` when given.
    fn for_each_value(&self, policy: Option<&HeaderValue>, mut f: impl FnMut(HeaderValue)) {
        let (minute, day) = (&self.snapshot.minute, &self.snapshot.day);
        f(number(minute.limit.into()));
        f(number(minute.remaining.into()));
        f(go_duration(minute.reset));
        f(number(day.limit.into()));
        f(number(day.remaining.into()));
        f(day_reset(day.reset));
        f(policy.map_or_else(
            || RateLimitHeaders::policy_value(minute.limit, day.limit),
            HeaderValue::clone,
        ));
        f(ValueWriter::new()
            .text("\"minute\";r=")
            .number(minute.remaining)
            .text(";t=")
            .number(ceil_secs(minute.next_quota_in))
            .text(", \"day\";r=")
            .number(day.remaining)
            .text(";t=")
            .number(ceil_secs(day.next_quota_in))
            .value());
        if let (Some(secs), Some(millis)) = (self.retry_after_secs(), self.retry_after_millis()) {
            f(number(secs));
            f(ValueWriter::new().number(millis).value());
        }
        if self.should_retry() == Some(false) {
            f(HeaderValue::from_static("false"));
        }
    }
}

impl fmt::Display for RateLimitHeaders {
    /// One `name: value` line per header, each ending in `\n`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        let mut names = NAMES.iter();
        self.for_each_value(None, |value| {
            if let (Ok(()), Some(name)) = (&result, names.next()) {
                // Every value is ASCII: it was formatted here.
                let value = value.to_str().unwrap_or_default();
                result = writeln!(f, "{name}: {value}");
            }
        });
        result
    }
}

/// The largest number whose header value is made once and shared: every
/// limit and remaining count of real limits.
const SHARED_NUMBERS: u64 = 10_000;

/// The header value of `n`; up to [`SHARED_NUMBERS`] a shared static one,
/// whose clone allocates nothing.
fn number(n: u64) -> HeaderValue {
    static SHARED: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| static_values((0..=SHARED_NUMBERS).map(|n| n.to_string())));
    usize::try_from(n)
        .ok()
        .and_then(|n| shared.get(n))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(n))
}

/// The header value of a Go-style duration; up to a minute (every minute
/// `reset`) a shared static one: `0s`, `1ms` to `999ms`, `1s` to `59s`, `1m0s`.
fn go_duration(d: Duration) -> HeaderValue {
    static SHARED: OnceLock<Box<[HeaderValue]>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        let zero = std::iter::once(Duration::ZERO);
        let millis = (1..1000).map(Duration::from_millis);
        let secs = (1..=60).map(Duration::from_secs);
        static_values(
            zero.chain(millis)
                .chain(secs)
                .map(|d| GoDuration(d).to_string()),
        )
    });
    let index = if d.is_zero() {
        Some(0)
    } else if ceil_millis(d) < 1000 {
        Some(ceil_millis(d) as usize)
    } else {
        usize::try_from(ceil_secs(d))
            .ok()
            .map(|secs| secs.saturating_add(999))
    };
    index
        .and_then(|index| shared.get(index))
        .cloned()
        .unwrap_or_else(|| ValueWriter::new().go_duration(d).value())
}

/// The header value of the time to midnight, which changes once a second:
/// each thread keeps the last one it made and hands out copies of it (a
/// reference count, no allocation) for the rest of that second.
fn day_reset(d: Duration) -> HeaderValue {
    thread_local! {
        static LAST: RefCell<Option<(u64, HeaderValue)>> = const { RefCell::new(None) };
    }
    if ceil_millis(d) < 1000 {
        // The last second before midnight, written in milliseconds.
        return go_duration(d);
    }
    let secs = ceil_secs(d);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((kept, value)) if *kept == secs => value.clone(),
            _ => {
                let value = go_duration(d);
                *last = Some((secs, value.clone()));
                value
            }
        }
    })
}

/// Every name of the headers, in the order they are written: the eight
/// policy headers, then those of a refusal (`retry-after`, `retry-after-ms`)
/// and of a refusal by the day limit (`x-should-retry`).
static NAMES: [HeaderName; 11] = [
    RateLimitHeaders::LIMIT_REQUESTS,
    RateLimitHeaders::REMAINING_REQUESTS,
    RateLimitHeaders::RESET_REQUESTS,
    RateLimitHeaders::LIMIT_REQUESTS_DAY,
    RateLimitHeaders::REMAINING_REQUESTS_DAY,
    RateLimitHeaders::RESET_REQUESTS_DAY,
    RateLimitHeaders::RATELIMIT_POLICY,
    RateLimitHeaders::RATELIMIT,
    RateLimitHeaders::RETRY_AFTER,
    RateLimitHeaders::RETRY_AFTER_MS,
    RateLimitHeaders::SHOULD_RETRY,
];

/// The maps [`RateLimitHeaders::write_to`] copies: the first 8 to 11
/// [`NAMES`] with empty values, indexed by the count less 8; `None` when a
/// map made so does not give back its names in the order they went in
/// (`http` 1.x does, as its maps keep their entries in a vector, but does not
/// promise it), and the values would not land under their names.
fn templates() -> Option<&'static [HeaderMap; 4]> {
    static TEMPLATES: OnceLock<Option<[HeaderMap; 4]>> = OnceLock::new();
    TEMPLATES
        .get_or_init(|| {
            let templates: [HeaderMap; 4] = std::array::from_fn(|extra| {
                let names = &NAMES[..8 + extra];
                let mut map = HeaderMap::with_capacity(names.len());
                for name in names {
                    map.insert(name.clone(), HeaderValue::from_static(""));
                }
                map
            });
            let in_order = templates.iter().all(|map| {
                let copy = map.clone();
                copy.len() == copy.keys_len() && copy.keys().eq(NAMES[..copy.len()].iter())
            });
            in_order.then_some(templates)
        })
        .as_ref()
}

/// Static header values of `texts`: made once for the process, so their
/// text is leaked on purpose (a few tens of kilobytes, never freed).
fn static_values(texts: impl Iterator<Item = String>) -> Box<[HeaderValue]> {
    texts
        .map(|text| HeaderValue::from_static(Box::leak(text.into_boxed_str())))
        .collect()
}

/// A header value being written: text and numbers pushed into a buffer on
/// the stack (no `core::fmt`), then copied once into the value's own
/// allocation, of exactly its length.
struct ValueWriter {
    buffer: [u8; ValueWriter::CAPACITY],
    len: usize,
}

impl ValueWriter {
    /// Longer than any value written here: the longest, `ratelimit` with
    /// every number at its type's maximum, is 87 bytes.
    const CAPACITY: usize = 96;

    fn new() -> ValueWriter {
        ValueWriter {
            buffer: [0; ValueWriter::CAPACITY],
            len: 0,
        }
    }

    fn text(&mut self, text: &str) -> &mut ValueWriter {
        let end = self.len + text.len();
        self.buffer[self.len..end].copy_from_slice(text.as_bytes());
        self.len = end;
        self
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buffer[..self.len]
    }

    fn number(&mut self, n: impl itoa::Integer) -> &mut ValueWriter {
        self.text(itoa::Buffer::new().format(n))
    }

    /// A Go-style duration (see [`GoDuration`]).
    fn go_duration(&mut self, d: Duration) -> &mut ValueWriter {
        if d.is_zero() {
            return self.text("0s");
        }
        let millis = ceil_millis(d);
        if millis < 1000 {
            return self.number(millis).text("ms");
        }
        let secs = ceil_secs(d);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            self.number(h).text("h");
        }
        if h > 0 || m > 0 {
            self.number(m).text("m");
        }
        self.number(s).text("s")
    }

    fn value(&self) -> HeaderValue {
        // Digits, letters and punctuation only: always a valid value.
        HeaderValue::from_bytes(self.as_bytes())
            .expect("a rate-limit header value is visible ASCII")
    }
}

impl Snapshot {
    /// The rate-limit headers of a response that consumed nothing or was
    /// admitted with this snapshot; see [`RateLimitHeaders`].
    pub fn headers(&self) -> RateLimitHeaders {
        RateLimitHeaders::of_snapshot(*self)
    }
}

impl Decision {
    /// The rate-limit headers of this decision, the retry headers included
    /// when it is a refusal; see [`RateLimitHeaders`]. `x-request-id` is the
    /// server's to add.
    pub fn headers(&self) -> RateLimitHeaders {
        RateLimitHeaders::of_decision(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(d: Duration) -> String {
        GoDuration(d).to_string()
    }

    #[test]
    fn the_maps_of_names_keep_their_order_so_the_copies_are_used() {
        // Were this to fail after an update of `http`, the headers would
        // still be right (one insertion each), only slower.
        assert!(templates().is_some());
    }

    #[test]
    fn copying_the_names_writes_what_inserting_them_writes() {
        let policy = crate::PolicySnapshot {
            limit: 60,
            remaining: 0,
            reset: Duration::from_secs(61),
            next_quota_in: Duration::from_millis(1500),
        };
        let refusals = [DeniedBy::Minute, DeniedBy::Day].map(|denied_by| {
            Decision::Denied(crate::Denial {
                denied_by,
                retry_after: Duration::from_millis(1500),
                snapshot: Snapshot {
                    minute: policy,
                    day: policy,
                },
            })
        });
        let kept = RateLimitHeaders::policy_value(60, 60);
        for decision in refusals {
            for policy in [None, Some(&kept)] {
                let theirs = || {
                    let mut map = HeaderMap::new();
                    map.insert("content-type", HeaderValue::from_static("application/json"));
                    map.append("retry-after", HeaderValue::from_static("999"));
                    map.append("retry-after", HeaderValue::from_static("998"));
                    map.insert("x-should-retry", HeaderValue::from_static("true"));
                    map.insert("ratelimit-policy", HeaderValue::from_static("old"));
                    map
                };
                let (mut copied, mut inserted) = (theirs(), theirs());
                decision.headers().render(policy, &mut copied);
                decision.headers().insert_each(policy, &mut inserted);
                let sorted = |map: &HeaderMap| {
                    let mut pairs: Vec<_> = map
                        .iter()
                        .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
                        .collect();
                    pairs.sort();
                    pairs
                };
                assert_eq!(sorted(&copied), sorted(&inserted));
                assert_eq!(copied.get_all("retry-after").iter().count(), 1);
                assert_eq!(copied["retry-after"], "2");
                assert_eq!(
                    copied["ratelimit-policy"],
                    r#""minute";q=60;w=60, "day";q=60;w=86400"#
                );
                assert_eq!(copied["content-type"], "application/json");
                // Ours for a refusal by the day; theirs kept for the minute's.
                let day = decision
                    .denial()
                    .is_some_and(|denial| denial.denied_by == DeniedBy::Day);
                assert_eq!(copied["x-should-retry"], if day { "false" } else { "true" });
            }
        }
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

    #[test]
    fn hand_made_snapshots_beyond_real_limits_still_render() {
        let huge = crate::PolicySnapshot {
            limit: u32::MAX,
            remaining: u32::MAX,
            reset: Duration::MAX,
            next_quota_in: Duration::MAX,
        };
        let decision = Decision::Denied(crate::Denial {
            denied_by: DeniedBy::Both,
            retry_after: Duration::MAX,
            snapshot: Snapshot {
                minute: huge,
                day: huge,
            },
        });
        let headers = decision.headers().to_header_map();
        assert_eq!(headers[RateLimitHeaders::RETRY_AFTER], u64::MAX.to_string());
        assert_eq!(
            headers[RateLimitHeaders::RATELIMIT],
            format!(
                "\"minute\";r={0};t={1}, \"day\";r={0};t={1}",
                u32::MAX,
                u64::MAX
            )
        );
    }

    #[test]
    fn the_longest_values_fit() {
        let long = Duration::from_secs(86_400);
        let policy = crate::PolicySnapshot {
            limit: 10_000,
            remaining: 10_000,
            reset: long,
            next_quota_in: long,
        };
        let snapshot = Snapshot {
            minute: policy,
            day: policy,
        };
        let decision = Decision::Denied(crate::Denial {
            denied_by: DeniedBy::Both,
            retry_after: long,
            snapshot,
        });
        let headers = decision.headers().to_header_map();
        assert_eq!(headers.len(), 11);
        assert_eq!(
            headers[RateLimitHeaders::RATELIMIT],
            "\"minute\";r=10000;t=86400, \"day\";r=10000;t=86400"
        );
        assert_eq!(headers[RateLimitHeaders::RETRY_AFTER_MS], "86400000");
    }

    #[test]
    fn len_counts_what_is_written() {
        let policy = crate::PolicySnapshot {
            limit: 10,
            remaining: 0,
            reset: Duration::from_secs(5),
            next_quota_in: Duration::from_secs(5),
        };
        let snapshot = Snapshot {
            minute: policy,
            day: policy,
        };
        let refused = |denied_by| {
            Decision::Denied(crate::Denial {
                denied_by,
                retry_after: Duration::from_secs(5),
                snapshot,
            })
        };
        let decisions = [
            (Decision::Admitted(snapshot), 8),
            (refused(DeniedBy::Minute), 10),
            (refused(DeniedBy::Day), 11),
            (refused(DeniedBy::Both), 11),
        ];
        for (decision, expected) in decisions {
            let headers = decision.headers();
            assert_eq!(headers.len(), expected, "{decision:?}");
            assert_eq!(headers.to_header_map().len(), expected, "{decision:?}");
            assert_eq!(headers.to_string().lines().count(), expected);
        }
    }
}
