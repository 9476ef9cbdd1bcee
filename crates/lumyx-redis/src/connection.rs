//! How the Lumyx crates connect to Redis: one multiplexed connection per
//! value, made lazily by its first call and remade after every failure, with
//! bounded waits.

use std::future::Future;
use std::time::Duration;

use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::RedisUrl;

/// Where Redis is and how long to wait for it: what both Redis types of the
/// workspace (the key store and the limiter) are built from, so they take
/// the same URLs and the same timeout.
///
/// ```
/// use std::time::Duration;
/// use lumyx_redis::RedisConnector;
///
/// let connector = RedisConnector::new("redis://:secret@127.0.0.1:6379/".parse()?)
///     .timeout(Duration::from_millis(100));
/// assert_eq!(connector.timeout_value(), Duration::from_millis(100));
/// assert!(!format!("{connector:?}").contains("secret"));
/// # Ok::<(), lumyx_redis::UrlError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConnector {
    url: RedisUrl,
    timeout: Duration,
}

impl RedisConnector {
    /// The default of [`RedisConnector::timeout`]: 250 ms.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

    /// A connector to `url` with the default timeout.
    pub fn new(url: RedisUrl) -> RedisConnector {
        RedisConnector {
            url,
            timeout: RedisConnector::DEFAULT_TIMEOUT,
        }
    }

    /// The longest a connection attempt, and then a reply, may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> RedisConnector {
        self.timeout = timeout;
        self
    }

    /// The timeout.
    pub fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// The URL.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// A connection that is made by its first call, not now, so a service
    /// starts while Redis is down. After a failure it is remade in the
    /// background; no call is sent twice (see [`retry_if_refused`]).
    /// Clones share one multiplexed connection.
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// When the client refuses the configuration.
    pub fn connect_lazy(&self) -> Result<ConnectionManager, RedisError> {
        let client = redis::Client::open(self.url.connection_info().clone())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        ConnectionManager::new_lazy_with_config(client, config)
    }
}

/// Runs `call`, and once more when the connection was refused: then nothing
/// was sent, so the second attempt (on the connection remade meanwhile)
/// cannot run anything twice. Any other failure, a dropped connection or a
/// timeout, may have lost the reply of a call Redis ran, and is not retried.
pub async fn retry_if_refused<T, F, Fut>(mut call: F) -> Result<T, RedisError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, RedisError>>,
{
    match call().await {
        Err(err) if err.is_connection_refusal() => call().await,
        other => other,
    }
}
