#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
mod clock;
mod decision;
mod error;
mod hasher;
mod headers;
mod limits;
mod memory;
mod policy;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
mod redis;

pub use backend::Backend;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use decision::{Decision, Denial, DeniedBy, PolicySnapshot, Snapshot};
pub use error::Error;
pub use hasher::{FastHashBuilder, FastHasher};
pub use headers::GoDuration;
pub use limits::Limits;
pub use memory::{DefaultMemoryLimiter, MemoryLimiter};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::{OutagePolicy, RedisLimiter, RedisLimiterBuilder};
