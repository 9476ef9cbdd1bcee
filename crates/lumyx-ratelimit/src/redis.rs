use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};

use crate::policy;
use crate::{
    Backend, Clock, Decision, DeniedBy, Error, Limits, ManualClock, MemoryLimiter, Snapshot,
    SystemClock,
};

/// The decision script; see its header for the protocol.
const SCRIPT: &str = include_str!("ratelimit.lua");

/// What a [`RedisLimiter`] does when Redis cannot be reached (refused,
/// timed out, or any error).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OutagePolicy {
    /// Decide with a local in-memory limiter (the default): each server
    /// instance then enforces the limits on its own, so N instances admit up
    /// to N times the limit until Redis is back.
    #[default]
    Fallback,
    /// Admit every request; the snapshot reports full quotas.
    Open,
    /// Refuse to decide: [`Error::Unavailable`], which a server answers 503.
    Closed,
}

/// Configures and connects a [`RedisLimiter`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisLimiterBuilder {
    url: String,
    outage_policy: OutagePolicy,
    timeout: Duration,
    probe_interval: Duration,
    key_prefix: String,
    clock: Option<ManualClock>,
}

impl RedisLimiterBuilder {
    /// What to do while Redis is unreachable. Default: [`OutagePolicy::Fallback`].
    pub fn outage_policy(mut self, policy: OutagePolicy) -> Self {
        self.outage_policy = policy;
        self
    }

    /// The longest a decision waits for Redis (connecting included) before
    /// the outage policy applies. Default: 250 ms.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After a failure, how long decisions skip Redis and go straight to the
    /// outage policy before one tries Redis again. Default: 1 s.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = interval;
        self
    }

    /// The prefix of every Redis key. Default: `lumyx:rl:`, giving
    /// `lumyx:rl:{<key>}`. Braces in the prefix would move the cluster hash
    /// tag, so they are written as `%7B` and `%7D`.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into().replace('{', "%7B").replace('}', "%7D");
        self
    }

    /// **Tests and benches only.** Decide at this clock's time instead of
    /// Redis's `TIME`, so time-dependent behaviour can be tested exactly. In
    /// production every instance must use Redis's clock (SPEC §2.1).
    pub fn clock(mut self, clock: ManualClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Builds the limiter. Must run inside a Tokio runtime. It does not wait
    /// for Redis: the connection is made by the first decision and remade
    /// after every failure, so a server starts (and degrades under its outage
    /// policy) while Redis is down.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] when the URL does not parse.
    pub async fn connect(self) -> Result<RedisLimiter, Error> {
        let client = redis::Client::open(self.url.as_str()).map_err(|err| Error::InvalidUrl {
            reason: err.to_string(),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(client, config).map_err(|err| {
            Error::InvalidUrl {
                reason: err.to_string(),
            }
        })?;
        let local_clock: Arc<dyn Clock> = match &self.clock {
            Some(clock) => Arc::new(clock.clone()),
            None => Arc::new(SystemClock),
        };
        Ok(RedisLimiter {
            manager,
            script: Script::new(SCRIPT),
            key_prefix: self.key_prefix,
            outage_policy: self.outage_policy,
            timeout: self.timeout,
            probe_interval: self.probe_interval,
            clock: self.clock,
            fallback: MemoryLimiter::with_clock(local_clock.clone()),
            local_clock,
            origin: Instant::now(),
            down_until: AtomicU64::new(0),
        })
    }
}

/// A limiter whose state lives in Redis, shared by any number of server
/// instances (SPEC §2.1).
///
/// * One round trip per decision: one Lua script (`EVALSHA`, loaded on first
///   use and after a Redis restart) decides both policies atomically at
///   Redis's own `TIME`.
/// * One Redis key per limiter key, `lumyx:rl:{<key>}` (see
///   [`RedisLimiter::redis_key`]): a hash of the GCRA arrival time, the UTC
///   day and that day's count, expiring a minute after the next UTC midnight.
///   The script touches only that key, passed in `KEYS`, so it runs in a
///   cluster.
/// * When Redis is unreachable a decision returns within the
///   [timeout](RedisLimiterBuilder::timeout) under the [`OutagePolicy`].
///   Decisions then skip Redis; every [probe interval](RedisLimiterBuilder::probe_interval)
///   one decision (only one, however many arrive) tries it again, and Redis
///   is used again as soon as it answers.
/// * A failed call is re-sent only when the connection was refused (so
///   nothing was sent). Any other failure is not: when a connection drops,
///   Redis may have run the script before its reply was lost, and re-sending
///   would count the request twice. The connection is remade in the
///   background.
///
/// ```
/// use lumyx_ratelimit::{Limits, OutagePolicy, RedisLimiter};
///
/// # let Some(server) = lumyx_test_support::RedisServer::start_or_skip("doc") else { return Ok(()) };
/// # let url = server.url();
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // url = "redis://127.0.0.1:6379/"
/// let limiter = RedisLimiter::builder(url)
///     .outage_policy(OutagePolicy::Fallback)
///     .connect()
///     .await?;
/// let limits = Limits::new(2, 1000)?;
/// assert!(limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// assert!(limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// assert!(!limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// # Ok::<(), lumyx_ratelimit::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisLimiter {
    manager: ConnectionManager,
    script: Script,
    key_prefix: String,
    outage_policy: OutagePolicy,
    timeout: Duration,
    probe_interval: Duration,
    clock: Option<ManualClock>,
    fallback: MemoryLimiter<String, Arc<dyn Clock>>,
    local_clock: Arc<dyn Clock>,
    origin: Instant,
    /// Microseconds after `origin` before which Redis is not tried; 0 when up.
    down_until: AtomicU64,
}

impl RedisLimiter {
    /// A builder with the defaults: fallback outage policy, 250 ms timeout,
    /// 1 s probe interval, prefix `lumyx:rl:`.
    pub fn builder(url: impl Into<String>) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            url: url.into(),
            outage_policy: OutagePolicy::default(),
            timeout: Duration::from_millis(250),
            probe_interval: Duration::from_secs(1),
            key_prefix: "lumyx:rl:".to_owned(),
            clock: None,
        }
    }

    /// The outage policy.
    pub fn outage_policy(&self) -> OutagePolicy {
        self.outage_policy
    }

    /// Whether the last attempt to reach Redis failed (decisions currently go
    /// to the outage policy).
    pub fn is_degraded(&self) -> bool {
        self.down_until.load(Ordering::Relaxed) != 0
    }

    /// The Redis key holding the state of `key`: the prefix and `key` in
    /// braces, the cluster hash tag. So that the tag is always exactly `key`
    /// and two keys never share a Redis key, `%`, `{` and `}` in `key` are
    /// written as `%25`, `%7B` and `%7D`, and the empty key as `%`.
    ///
    /// ```
    /// # let Some(server) = lumyx_test_support::RedisServer::start_or_skip("doc") else { return Ok(()) };
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// use lumyx_ratelimit::RedisLimiter;
    ///
    /// let limiter = RedisLimiter::builder(server.url()).connect().await?;
    /// assert_eq!(limiter.redis_key("key_4e58d9f4757ccfc3"), "lumyx:rl:{key_4e58d9f4757ccfc3}");
    /// assert_eq!(limiter.redis_key("a{b}"), "lumyx:rl:{a%7Bb%7D}");
    /// assert_eq!(limiter.redis_key(""), "lumyx:rl:{%}");
    /// # Ok::<(), lumyx_ratelimit::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn redis_key(&self, key: &str) -> String {
        let mut redis_key = String::with_capacity(self.key_prefix.len() + key.len() + 3);
        redis_key.push_str(&self.key_prefix);
        redis_key.push('{');
        if key.is_empty() {
            redis_key.push('%');
        }
        for c in key.chars() {
            match c {
                '%' => redis_key.push_str("%25"),
                '{' => redis_key.push_str("%7B"),
                '}' => redis_key.push_str("%7D"),
                c => redis_key.push(c),
            }
        }
        redis_key.push('}');
        redis_key
    }

    /// Decides one request of `key` under `limits` in Redis, consuming from
    /// both policies iff both admit it; under the outage policy when Redis
    /// cannot be reached within the timeout.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis is unreachable and the outage policy
    /// is [`OutagePolicy::Closed`].
    pub async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        self.decide(key, limits, true).await
    }

    /// The state of `key` under `limits`, consuming nothing.
    ///
    /// # Errors
    /// As [`RedisLimiter::check`].
    pub async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error> {
        Ok(*self.decide(key, limits, false).await?.snapshot())
    }

    /// Decides (or peeks, when `consume` is false) in Redis, or under the
    /// outage policy when Redis is down.
    async fn decide(&self, key: &str, limits: Limits, consume: bool) -> Result<Decision, Error> {
        let down_until = self.down_until.load(Ordering::Relaxed);
        if down_until != 0 {
            let elapsed = self.elapsed_micros();
            if elapsed < down_until {
                return self.outage(
                    key,
                    limits,
                    consume,
                    "Redis is down; waiting to probe it again",
                );
            }
            // Time to probe: the one request that moves the next probe on
            // probes, the others keep to the outage policy instead of all
            // waiting out the timeout together.
            let claimed = self.down_until.compare_exchange(
                down_until,
                self.next_probe(elapsed),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if claimed.is_err() {
                return self.outage(
                    key,
                    limits,
                    consume,
                    "Redis is down; another request is probing it",
                );
            }
        }
        match tokio::time::timeout(self.timeout, self.call(key, limits, consume)).await {
            Ok(Ok(decision)) => {
                if down_until != 0 {
                    self.down_until.store(0, Ordering::Relaxed);
                    tracing::info!("Redis answers again; rate limits are shared again");
                }
                Ok(decision)
            }
            Ok(Err(err)) => self.failed(key, limits, consume, &err.to_string()),
            Err(_) => self.failed(
                key,
                limits,
                consume,
                &format!("no answer within {:?}", self.timeout),
            ),
        }
    }

    /// One call, sent again only when the connection was refused: then the
    /// script was certainly not sent, while any other failure (a dropped
    /// connection, a timeout) may have lost the reply of a script Redis ran,
    /// and a re-send would count the request twice. The one retry uses the
    /// connection the manager remakes after the refusal, so a Redis that
    /// has just (re)started is used at once.
    async fn call(&self, key: &str, limits: Limits, consume: bool) -> Result<Decision, RedisError> {
        match self.invoke(key, limits, consume).await {
            Err(err) if err.is_connection_refusal() => self.invoke(key, limits, consume).await,
            other => other,
        }
    }

    async fn invoke(
        &self,
        key: &str,
        limits: Limits,
        consume: bool,
    ) -> Result<Decision, RedisError> {
        let mut invocation = self.script.key(self.redis_key(key));
        invocation
            .arg(limits.rate_limit_per_minute())
            .arg(limits.daily_limit())
            .arg(u8::from(consume));
        if let Some(clock) = &self.clock {
            invocation.arg(clock.now().unix_micros());
        }
        let mut connection = self.manager.clone();
        let (code, debt, count, now): (i64, i64, i64, i64) =
            invocation.invoke_async(&mut connection).await?;
        let denied_by = match code {
            0 => None,
            1 => Some(DeniedBy::Minute),
            2 => Some(DeniedBy::Day),
            _ => Some(DeniedBy::Both),
        };
        let (debt, now) = (debt.max(0) as u64, now.max(0) as u64);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(policy::decision(limits, now, debt, count, denied_by))
    }

    fn failed(
        &self,
        key: &str,
        limits: Limits,
        consume: bool,
        reason: &str,
    ) -> Result<Decision, Error> {
        let next_probe = self.next_probe(self.elapsed_micros());
        if self.down_until.swap(next_probe, Ordering::Relaxed) == 0 {
            tracing::warn!(
                policy = ?self.outage_policy,
                "Redis is unreachable, rate limits follow the outage policy: {reason}"
            );
        }
        self.outage(key, limits, consume, reason)
    }

    fn outage(
        &self,
        key: &str,
        limits: Limits,
        consume: bool,
        reason: &str,
    ) -> Result<Decision, Error> {
        match self.outage_policy {
            OutagePolicy::Fallback if consume => Ok(self.fallback.check(key, limits)),
            OutagePolicy::Fallback => Ok(Decision::Admitted(self.fallback.peek(key, limits))),
            OutagePolicy::Open => {
                let now = self.local_clock.now().unix_micros();
                Ok(Decision::Admitted(policy::snapshot(limits, now, 0, 0)))
            }
            OutagePolicy::Closed => Err(Error::Unavailable {
                reason: reason.to_owned(),
            }),
        }
    }

    /// The time of the next probe, never 0 (which means "up").
    fn next_probe(&self, elapsed: u64) -> u64 {
        let interval = u64::try_from(self.probe_interval.as_micros()).unwrap_or(u64::MAX / 4);
        elapsed.saturating_add(interval).clamp(1, u64::MAX / 2)
    }

    fn elapsed_micros(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX / 2)
    }
}

#[async_trait]
impl Backend for RedisLimiter {
    async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        RedisLimiter::check(self, key, limits).await
    }

    async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error> {
        RedisLimiter::peek(self, key, limits).await
    }
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("key_prefix", &self.key_prefix)
            .field("outage_policy", &self.outage_policy)
            .field("timeout", &self.timeout)
            .field("probe_interval", &self.probe_interval)
            .field("clock", &self.clock)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}
