#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod authorization;
mod backend;
#[cfg(feature = "redis")]
mod follow;
mod gate;
mod keys;
#[cfg(feature = "tower")]
mod layer;
mod table;
mod verdict;
pub mod wire;

pub use authorization::{HeaderProblem, bearer_token};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use backend::RedisBackend;
pub use backend::{Backend, MemoryBackend, SyncBackend};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use follow::Following;
pub use gate::{Gate, LOG_TARGET};
pub use keys::Keys;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub use layer::{Authenticated, GateLayer, GateService, ResponseFuture};
pub use table::{KeyEntry, KeyTable};
pub use verdict::{Admitted, Denied, KEY_EXPIRES_AT, Refusal, Verdict};
