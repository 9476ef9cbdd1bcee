//! How the Lumyx crates connect to Redis: one multiplexed connection per
//! value (to the one server, or to each node of a Redis Cluster), made
//! lazily by its first call and remade after every failure, with bounded
//! waits.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};

use crate::RedisUrl;

/// How often a cluster call is sent again after an answer that proves it
/// did not run (`MOVED`, `ASK`, `TRYAGAIN`, `CLUSTERDOWN`, `READONLY` from a
/// node demoted by a failover) or after its node's connection dropped;
/// every try shares the one timeout.
const CLUSTER_RETRIES: u32 = 3;

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
    /// background. Clones share one multiplexed connection (one per node of
    /// a cluster).
    ///
    /// To one server, no call is sent twice (see [`retry_if_refused`]). To a
    /// cluster (a URL listing several nodes), the client follows `MOVED` and
    /// `ASK` redirections and topology changes by itself, and sends a call
    /// again, up to 3 times within the one timeout, after an answer that
    /// proves it did not run, and after its node's connection dropped: a
    /// call whose reply was lost in a dropped connection may then run twice
    /// (see [`RedisConnection`]).
    ///
    /// Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// When the client refuses the configuration.
    pub fn connect_lazy(&self) -> Result<RedisConnection, RedisError> {
        if self.url.is_cluster() {
            let client = ClusterClientBuilder::new(self.url.nodes().to_vec())
                .retries(CLUSTER_RETRIES)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()?;
            let config = ClusterConfig::new()
                .set_connection_timeout(self.timeout)
                .set_response_timeout(self.timeout);
            return Ok(RedisConnection {
                inner: Inner::Cluster(client.get_pending_async_connection_with_config(config)),
            });
        }
        let client = redis::Client::open(self.url.connection_info().clone())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        Ok(RedisConnection {
            inner: Inner::Single(ConnectionManager::new_lazy_with_config(client, config)?),
        })
    }
}

/// A connection to one Redis server or to a Redis Cluster, made by
/// [`RedisConnector::connect_lazy`]: what every Redis type of the workspace
/// talks through, so that each runs on either.
///
/// It is a [`redis::aio::ConnectionLike`], so commands, pipelines and
/// scripts run on it as on any `redis` connection. On a cluster, each
/// command goes to the node that serves its keys' slot; a pipeline goes
/// whole to the node of its first keyed command, so all of its keys must
/// share one slot, and a script's keys must too (Redis refuses otherwise
/// with `CROSSSLOT`).
///
/// Cloning is cheap: clones share the connection.
#[derive(Clone)]
pub struct RedisConnection {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            Inner::Single(_) => "single server",
            Inner::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisConnection")
            .field("to", &kind)
            .finish()
    }
}

impl RedisConnection {
    /// Whether this is a connection to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// Runs the write `command`, then waits until at least `replicas`
    /// replicas hold every write its connection made (`WAIT`), or until
    /// `timeout`; answers the command's reply and how many replicas hold
    /// the write.
    ///
    /// Both go in one pipeline, so they reach the same server over the same
    /// connection, and a cluster client that sends them again (a dropped
    /// connection, a redirection) sends them together: `WAIT` always counts
    /// replicas of the write that was answered. A write that Redis answered
    /// is on its master; one that a replica also holds survives the
    /// master's failover (Redis promotes the most up-to-date replica).
    ///
    /// A command sent again that finds its work done must still write
    /// something (rewrite a value with itself), or the `WAIT` after it
    /// counts a connection that wrote nothing: Redis orders replication per
    /// master, so that write is held only after the earlier ones are.
    ///
    /// # Errors
    /// As any call: no reply within the connection's timeout (which must
    /// be longer than `timeout`), a refused connection, an error reply of
    /// the command.
    pub async fn query_confirmed<T: FromRedisValue>(
        &mut self,
        command: &Cmd,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(T, u32), RedisError> {
        let millis = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut pipeline = redis::pipe();
        pipeline
            .add_command(command.clone())
            .cmd("WAIT")
            .arg(replicas)
            .arg(millis);
        pipeline.query_async(self).await
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(connection) => connection.req_packed_command(cmd),
            Inner::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Inner::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(connection) => connection.get_db(),
            Inner::Cluster(connection) => connection.get_db(),
        }
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
