use std::hash::BuildHasher;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{Clock, Decision, Error, Limits, MemoryLimiter, Snapshot};

/// A place where limiter state lives: this process's memory
/// ([`MemoryLimiter`]) or Redis (`RedisLimiter`, feature `redis`).
///
/// Servers hold an `Arc<dyn Backend>` and do not care which one it is.
///
/// ```
/// use std::sync::Arc;
/// use lumyx_ratelimit::{Backend, Limits, MemoryLimiter};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let backend: Arc<dyn Backend> = Arc::new(MemoryLimiter::new());
/// let decision = backend.check("key_4e58d9f4757ccfc3", Limits::default()).await?;
/// assert_eq!(decision.snapshot().minute.remaining, 59);
/// # Ok::<(), lumyx_ratelimit::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Decides one request of `key` under `limits`, consuming from both
    /// policies iff both admit it.
    ///
    /// # Errors
    /// Only when no decision can be made (a shared backend is down and the
    /// outage policy is fail-closed): [`Error::Unavailable`], answered 503.
    async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error>;

    /// The state of `key` under `limits`, consuming nothing.
    ///
    /// # Errors
    /// As [`Backend::check`].
    async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error>;
}

#[async_trait]
impl<C, S> Backend for MemoryLimiter<String, C, S>
where
    C: Clock,
    S: BuildHasher + Send + Sync,
{
    async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        Ok(MemoryLimiter::check(self, key, limits))
    }

    async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error> {
        Ok(MemoryLimiter::peek(self, key, limits))
    }
}

#[async_trait]
impl<B: Backend + ?Sized> Backend for Arc<B> {
    async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        (**self).check(key, limits).await
    }

    async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error> {
        (**self).peek(key, limits).await
    }
}
