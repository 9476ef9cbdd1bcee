#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connection;
mod failure;
mod report;
mod slot;
mod url;

pub use connection::{RedisConnection, RedisConnector, retry_if_refused};
pub use failure::{FailureClass, RedisFailure, classify};
pub use report::Report;
pub use slot::{CLUSTER_SLOTS, hash_slot};
pub use url::{RedisUrl, UrlError};
