#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod clock;
mod decision;
mod error;
mod headers;
mod key_limiter;
mod limits;
mod memory;
#[cfg(feature = "redis")]
mod outages;
mod policy;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;
mod usage;

pub use backend::Backend;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use decision::{Decision, Denial, DeniedBy, PolicySnapshot, Snapshot};
pub use error::Error;
pub use headers::{GoDuration, RateLimitHeaders};
pub use key_limiter::KeyLimiter;
pub use limits::Limits;
pub use memory::{DefaultMemoryLimiter, MemoryLimiter};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{OutagePolicy, RedisLimiter, RedisLimiterBuilder};
pub use usage::{Counted, Counts, DayUsage, USAGE_DAYS, Usage, UsageCounter};

/// The default key hasher of [`MemoryLimiter`]: `foldhash`'s fast hasher,
/// randomly seeded per limiter.
///
/// Several times faster than std's SipHash on short keys, which is much of
/// the cost of a decision, with good spread and per-limiter seeds. It is not
/// a keyed PRF: for keys an attacker can choose freely, pass std's
/// [`RandomState`](std::hash::RandomState) to
/// [`MemoryLimiter::with_clock_and_hasher`]. Limiter keys are normally key
/// ids that passed verification, which an attacker cannot pick.
pub type FastHashBuilder = foldhash::fast::RandomState;

/// The hasher built by [`FastHashBuilder`].
pub type FastHasher = foldhash::fast::FoldHasher<'static>;
