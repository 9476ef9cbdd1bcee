use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use lumyx_redis::{
    CLUSTER_SLOTS, FailureClass, RedisConnection, RedisConnector, RedisFailure, RedisUrl, Report,
    hash_slot, retry_if_refused,
};

use redis::{ErrorKind, RedisError, Script, ServerErrorKind};

use crate::outages::Outages;
use crate::policy;
use crate::{
    Backend, Clock, Counted, Counts, DayUsage, Decision, DeniedBy, Error, Limits, ManualClock,
    MemoryLimiter, Snapshot, SystemClock, Timestamp, Usage,
};

/// How long a cluster's layout (which master serves which slots) is used
/// before it is read again: 60 s.
const LAYOUT_MAX_AGE_MICROS: u64 = 60_000_000;

/// The decision script; see its header for the protocol.
const SCRIPT: &str = include_str!("ratelimit.lua");

/// What a [`RedisLimiter`] does while Redis cannot serve: it is unreachable
/// (the connection failed or no reply came within the timeout) or it says
/// it cannot serve now (`LOADING`, `READONLY`, `MASTERDOWN`, `OOM`, `BUSY`).
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
    connector: RedisConnector,
    outage_policy: OutagePolicy,
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
    /// the outage policy applies. Default: 250 ms. A decision that reaches
    /// Redis after its caller gave up on it changes nothing there.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.connector = self.connector.timeout(timeout);
        self
    }

    /// After a failure, how long decisions skip Redis and go straight to the
    /// outage policy before one tries Redis again. Default: 1 s. On a
    /// cluster this holds for the keys of the failed master's slots only,
    /// once the limiter has read which master serves which slots.
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
    /// production every instance must use Redis's clock, so that instances
    /// whose clocks disagree still decide alike.
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
    /// [`Error::Config`] when the Redis client refuses the URL's settings.
    pub async fn connect(self) -> Result<RedisLimiter, Error> {
        let manager = self.connector.connect_lazy().map_err(|err| Error::Config {
            what: "the Redis connection settings",
            source: Box::new(err),
        })?;
        let manager_is_cluster = manager.is_cluster();
        let local_clock: Arc<dyn Clock> = match &self.clock {
            Some(clock) => Arc::new(clock.clone()),
            None => Arc::new(SystemClock),
        };
        Ok(RedisLimiter {
            manager,
            script: Script::new(SCRIPT),
            usage_script: Script::new(USAGE_SCRIPT),
            url: self.connector.url().clone(),
            key_prefix: self.key_prefix,
            outage_policy: self.outage_policy,
            timeout: self.connector.timeout_value(),
            probe_interval: self.probe_interval,
            clock: self.clock,
            fallback: MemoryLimiter::with_clock(local_clock.clone()),
            local_clock,
            origin: Instant::now(),
            outages: Outages::new(manager_is_cluster),
            last_failure: Mutex::new(None),
            redis_clock: RedisClock::new(manager_is_cluster),
            script_loaded: AtomicBool::new(false),
        })
    }
}

/// A limiter whose state lives in Redis, shared by any number of server
/// instances, which together admit exactly what one instance would.
///
/// * One round trip per decision: one Lua script (`EVALSHA`, loaded on first
///   use and after a Redis restart) decides both policies atomically at
///   Redis's own `TIME`.
/// * One Redis key per limiter key, `lumyx:rl:{<key>}` (see
///   [`RedisLimiter::redis_key`]): a hash of the GCRA arrival time, the UTC
///   day and that day's count, expiring a minute after the next UTC midnight;
///   and with [`RedisLimiter::check_counted`] its usage,
///   `lumyx:rl:{<key>}:u`. The script touches only these, passed in `KEYS`,
///   and their hash tag `{<key>}` puts them in one cluster slot.
/// * On a Redis Cluster (a URL listing its nodes, comma-separated) each
///   decision is one call to the master of its key's slot. While a master
///   fails over, decisions follow the [`OutagePolicy`] and go back to Redis
///   by themselves once its replica is promoted, from the state the replica
///   holds. The limiter does not wait for replicas to confirm its writes, so
///   the counts a master took in its last moments (its replication lag) can
///   be lost with it, and a key admitted that many requests more, once.
/// * When Redis is unreachable, or answers that it cannot serve now
///   (`LOADING`, `READONLY`, `MASTERDOWN`, `OOM`, `BUSY`, `TRYAGAIN`,
///   `CLUSTERDOWN`), a decision returns within the
///   [timeout](RedisLimiterBuilder::timeout) under the [`OutagePolicy`], and
///   a `warn` log says why. Decisions then skip Redis; every
///   [probe interval](RedisLimiterBuilder::probe_interval) one decision
///   (only one, however many arrive) tries it again, and Redis is used again
///   as soon as it answers.
/// * An error caused by one key's data (its Redis key holds another type,
///   `WRONGTYPE`; a script error) fails that decision alone with
///   [`Error::Failed`] (a server answers 503), logged at `error`; other keys
///   are decided in Redis as usual.
/// * A decision that timed out is not made later: each call carries a
///   deadline in Redis's clock (estimated from the `TIME` of earlier replies
///   plus the local monotonic time since, so the hosts' clock skew does not
///   matter; on a cluster the clock of the master of the key's slot), and
///   the script changes nothing when it runs past it, so a call Redis held
///   (paused, busy, slow to read it) does not also count a request the
///   outage policy decided. A call that ran in time but whose
///   reply came too late has counted in Redis, and the outage policy decides
///   the request too. A limiter's first call, before any reply told Redis's
///   clock, carries no deadline.
/// * One round trip per decision, the first included: the script is sent by
///   its hash (`EVALSHA`) once Redis has it, and by its text (`EVAL`) on the
///   first call, which loads it in the same trip. A call that finds Redis
///   without it (after a restart; on a cluster, the first call to each other
///   master, and to a replica just promoted) takes a second trip: `EVALSHA`
///   answered `NOSCRIPT`, then `EVAL`.
/// * To one server, a failed call is re-sent only when the connection was
///   refused (so nothing was sent). Any other failure is not: when a
///   connection drops, Redis may have run the script before its reply was
///   lost, and re-sending would count the request twice. The connection is
///   remade in the background. A cluster's client also re-sends a call after
///   its node's connection dropped (see
///   [`RedisConnector::connect_lazy`](lumyx_redis::RedisConnector::connect_lazy)),
///   so there a request can be charged twice (never admitted beyond the
///   limits).
///
/// ```
/// use lumyx_ratelimit::{Limits, OutagePolicy, RedisLimiter};
///
/// # let Some(server) = lumyx_test_support::RedisServer::start_or_skip("doc") else { return Ok(()) };
/// # let url = server.url();
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // url = "redis://127.0.0.1:6379/", or a cluster's nodes:
/// // "redis://10.0.0.1:6379/,redis://10.0.0.2:6379/,redis://10.0.0.3:6379/"
/// let limiter = RedisLimiter::builder(url.parse()?)
///     .outage_policy(OutagePolicy::Fallback)
///     .connect()
///     .await?;
/// let limits = Limits::new(2, 1000)?;
/// assert!(limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// assert!(limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// assert!(!limiter.check("key_4e58d9f4757ccfc3", limits).await?.is_admitted());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RedisLimiter {
    manager: RedisConnection,
    script: Script,
    usage_script: Script,
    url: RedisUrl,
    key_prefix: String,
    outage_policy: OutagePolicy,
    timeout: Duration,
    probe_interval: Duration,
    clock: Option<ManualClock>,
    fallback: MemoryLimiter<String, Arc<dyn Clock>>,
    local_clock: Arc<dyn Clock>,
    origin: Instant,
    /// When Redis (each master, on a cluster) is tried again after a
    /// failure.
    outages: Outages,
    /// Why Redis was last found down, the source of errors while it is.
    last_failure: Mutex<Option<RedisFailure>>,
    /// Redis's clock as estimated here, for the deadlines of calls.
    redis_clock: RedisClock,
    /// Whether Redis is known to have the decision script (`EVALSHA` works).
    script_loaded: AtomicBool,
}

/// Redis's clock as seen from this process: its `TIME` at some reply, minus
/// the local monotonic time (µs since `origin`) at which that reply arrived.
/// Redis's time at a later local time is at least that much later, since the
/// reply was read after Redis ran the call: the estimate never runs ahead of
/// Redis's clock, so a deadline computed from it is never too late. Every
/// reply refreshes it, which also follows a Redis clock that was reset.
///
/// A cluster's masters run on hosts whose clocks disagree, and a call runs on
/// the master of its key's hash slot, so there the clock is kept per slot:
/// one estimate for all would follow whichever master answered last, and a
/// call to a master whose clock is ahead would carry a deadline already past
/// in its clock and be refused as late, again and again.
#[derive(Debug)]
struct RedisClock {
    /// `redis_time - local_elapsed`, wrapping; 0 while unknown. One for a
    /// single server; on a cluster one per hash slot (128 KiB).
    offsets: Box<[AtomicU64]>,
    /// The highest offset any reply gave: the estimate of a slot no reply has
    /// come from yet. It is at least the clock of every master that has
    /// answered, so a deadline from it can be late (for a master whose clock
    /// is behind) but does not make a timely call to one of them look late.
    highest: AtomicU64,
}

/// How far back a reply may put Redis's clock before the estimate follows
/// it: further back than any reply's delay, so it is Redis's clock that
/// moved (NTP, or a failover to a host whose clock is behind).
const CLOCK_STEP_BACK_MICROS: u64 = 1_000_000;

impl RedisClock {
    /// The clock of a single server, or of each hash slot of a cluster.
    fn new(cluster: bool) -> RedisClock {
        let slots = if cluster {
            usize::from(CLUSTER_SLOTS)
        } else {
            1
        };
        RedisClock {
            offsets: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            highest: AtomicU64::new(0),
        }
    }

    /// Which clock a call on `redis_key` runs by: its hash slot's on a
    /// cluster, the only one otherwise.
    fn slot_of(&self, redis_key: &str) -> usize {
        if self.offsets.len() == 1 {
            0
        } else {
            usize::from(hash_slot(redis_key.as_bytes()))
        }
    }

    /// Takes in the `TIME` of a reply from `slot` read at local time
    /// `local_elapsed`. Each reply gives a lower bound of Redis's clock
    /// (Redis read it before the reply left); the estimate keeps the
    /// highest, the tightest, so a reply that was read late (the runtime was
    /// busy) does not make timely calls look late. Only a reply that puts the
    /// clock more than [`CLOCK_STEP_BACK_MICROS`] back moves the estimate
    /// back.
    fn observe(&self, slot: usize, redis_time: u64, local_elapsed: u64) {
        let offset = redis_time.wrapping_sub(local_elapsed).max(1);
        self.highest.fetch_max(offset, Ordering::Relaxed);
        let _ = self.offsets[slot].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
            let moved_back = current.saturating_sub(offset) > CLOCK_STEP_BACK_MICROS;
            (current == 0 || offset > current || moved_back).then_some(offset)
        });
    }

    /// The time of `slot`'s Redis at local time `local_elapsed`, if known
    /// (for a slot no reply came from yet, the highest estimate of any).
    fn estimate(&self, slot: usize, local_elapsed: u64) -> Option<u64> {
        match self.offsets[slot].load(Ordering::Relaxed) {
            0 => match self.highest.load(Ordering::Relaxed) {
                0 => None,
                highest => Some(local_elapsed.wrapping_add(highest)),
            },
            offset => Some(local_elapsed.wrapping_add(offset)),
        }
    }
}

/// `EVAL` or `EVALSHA` (`script` being the text or the hash) of the decision
/// script with `keys` and its arguments.
fn script_command(
    command: &str,
    script: &str,
    keys: &[String],
    args: &(u32, u32, u8, u64, String, &str),
) -> redis::Cmd {
    let mut cmd = redis::cmd(command);
    cmd.arg(script)
        .arg(keys.len())
        .arg(keys)
        .arg(args.0)
        .arg(args.1)
        .arg(args.2)
        .arg(args.3)
        .arg(&args.4)
        .arg(args.5);
    cmd
}

/// What a call counts in the key's usage.
#[derive(Debug, Clone, Copy)]
enum Tally {
    Nothing,
    /// What the decision came to.
    Decision,
    /// A refusal made before the limits.
    Refusal(Counted),
}

/// Reads a key's usage hash with Redis's `TIME`, in one call.
const USAGE_SCRIPT: &str = "local t = redis.call('TIME') \
    return {t[1], t[2], redis.call('HGETALL', KEYS[1])}";

/// The error of a usage read.
fn usage_error(failure: RedisFailure) -> Error {
    match failure.class() {
        FailureClass::Data => Error::Failed {
            source: Box::new(failure),
        },
        _ => Error::Unavailable {
            source: Box::new(failure),
        },
    }
}

/// The usage in a usage hash (see the script's header), as of `today`.
fn usage_from_fields(today: u32, fields: &[(String, String)]) -> Usage {
    let number = |text: &str| text.parse::<u64>().unwrap_or(0);
    let mut slots: [(Option<u32>, Counts); 32] = [(None, Counts::default()); 32];
    let mut totals = Counts::default();
    let mut last_used = None;
    for (field, value) in fields {
        if field == "last" {
            last_used = Some(Timestamp::from_unix_micros(number(value)));
        } else if let Some(what) = field.strip_prefix("t:") {
            if let Some(kind) = Counted::from_code(what) {
                totals.add(kind, number(value));
            }
        } else if let Some((slot, what)) = field.split_once(':') {
            let Some(slot) = slot.parse::<usize>().ok().filter(|slot| *slot < 32) else {
                continue;
            };
            if what == "day" {
                slots[slot].0 = u32::try_from(number(value)).ok();
            } else if let Some(kind) = Counted::from_code(what) {
                slots[slot].1.add(kind, number(value));
            }
        }
    }
    let days = slots
        .into_iter()
        .filter_map(|(day, counts)| day.map(|day| DayUsage { day, counts }));
    Usage::new(today, days, totals, last_used)
}

/// A script reply: the decision's parts, or too late to count.
struct Reply {
    decision: Option<Decision>,
    redis_time: u64,
    /// Whose clock `redis_time` is (see [`RedisClock::slot_of`]).
    slot: usize,
}

impl RedisLimiter {
    /// A builder with the defaults: fallback outage policy, 250 ms timeout,
    /// 1 s probe interval, prefix `lumyx:rl:`.
    pub fn builder(url: RedisUrl) -> RedisLimiterBuilder {
        RedisLimiterBuilder {
            connector: RedisConnector::new(url),
            outage_policy: OutagePolicy::default(),
            probe_interval: Duration::from_secs(1),
            key_prefix: "lumyx:rl:".to_owned(),
            clock: None,
        }
    }

    /// The outage policy.
    pub fn outage_policy(&self) -> OutagePolicy {
        self.outage_policy
    }

    /// Whether Redis, or on a cluster any of its masters, is marked down
    /// after a failure: its keys' decisions go to the outage policy until a
    /// probe succeeds.
    pub fn is_degraded(&self) -> bool {
        self.outages.any_down()
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
    /// let limiter = RedisLimiter::builder(server.url().parse()?).connect().await?;
    /// assert_eq!(limiter.redis_key("key_4e58d9f4757ccfc3"), "lumyx:rl:{key_4e58d9f4757ccfc3}");
    /// assert_eq!(limiter.redis_key("a{b}"), "lumyx:rl:{a%7Bb%7D}");
    /// assert_eq!(limiter.redis_key(""), "lumyx:rl:{%}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// [`Error::Unavailable`] when Redis cannot serve and the outage policy
    /// is [`OutagePolicy::Closed`]; [`Error::Failed`] when Redis refused this
    /// key's call (its data is of the wrong type, say).
    pub async fn check(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        self.decide(key, limits, true, Tally::Nothing).await
    }

    /// The state of `key` under `limits`, consuming nothing.
    ///
    /// # Errors
    /// As [`RedisLimiter::check`].
    pub async fn peek(&self, key: &str, limits: Limits) -> Result<Snapshot, Error> {
        Ok(*self
            .decide(key, limits, false, Tally::Nothing)
            .await?
            .snapshot())
    }

    /// [`RedisLimiter::check`], counting what the decision came to in the
    /// key's usage (see [`RedisLimiter::usage`]) in the same script, so in
    /// the same round trip. While Redis cannot serve, decisions made under
    /// the outage policy are not counted.
    ///
    /// # Errors
    /// As [`RedisLimiter::check`].
    pub async fn check_counted(&self, key: &str, limits: Limits) -> Result<Decision, Error> {
        self.decide(key, limits, true, Tally::Decision).await
    }

    /// [`RedisLimiter::peek`], counting a refusal made before the limits
    /// (`what`: an expired, revoked or out-of-scope key) in the key's usage,
    /// in the same round trip.
    ///
    /// # Errors
    /// As [`RedisLimiter::check`].
    pub async fn peek_counted(
        &self,
        key: &str,
        limits: Limits,
        what: Counted,
    ) -> Result<Snapshot, Error> {
        let decision = self
            .decide(key, limits, false, Tally::Refusal(what))
            .await?;
        Ok(*decision.snapshot())
    }

    /// The usage counts of `key`: the last 31 UTC days (by Redis's clock),
    /// totals, last admission.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when Redis cannot be reached, [`Error::Failed`]
    /// when it refuses the call; usage has no outage policy.
    pub async fn usage(&self, key: &str) -> Result<Usage, Error> {
        let usage_key = self.usage_key(key);
        let read = retry_if_refused(|| async {
            let mut connection = self.manager.clone();
            let (secs, micros, fields): (u64, u64, Vec<(String, String)>) = self
                .usage_script
                .key(&usage_key)
                .invoke_async(&mut connection)
                .await?;
            Ok((secs * 1_000_000 + micros, fields))
        });
        let (redis_now, fields) = match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => return Err(usage_error(RedisFailure::from(err))),
            Err(_) => return Err(usage_error(RedisFailure::timed_out(self.timeout))),
        };
        let now = match &self.clock {
            Some(clock) => clock.now().unix_micros(),
            None => redis_now,
        };
        Ok(usage_from_fields(policy::day_of(now), &fields))
    }

    /// The Redis key of `key`'s usage counts: its state key and `:u`, in the
    /// same hash slot.
    pub fn usage_key(&self, key: &str) -> String {
        usage_key_of(&self.redis_key(key))
    }

    /// Decides (or peeks, when `consume` is false) in Redis, or under the
    /// outage policy when Redis cannot serve.
    async fn decide(
        &self,
        key: &str,
        limits: Limits,
        consume: bool,
        tally: Tally,
    ) -> Result<Decision, Error> {
        let redis_key = self.redis_key(key);
        let slot = self.redis_clock.slot_of(&redis_key);
        let outage = self.outages.of_slot(slot);
        let down_until = outage.load(Ordering::Relaxed);
        if down_until != 0 {
            let elapsed = self.elapsed_micros();
            if elapsed < down_until {
                return self.outage(key, limits, consume, None);
            }
            // Time to probe: the one request that moves the next probe on
            // probes, the others keep to the outage policy instead of all
            // waiting out the timeout together.
            let claimed = outage.compare_exchange(
                down_until,
                self.next_probe(elapsed),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if claimed.is_err() {
                return self.outage(key, limits, consume, None);
            }
        }
        let started = self.elapsed_micros();
        let reply = match tokio::time::timeout(
            self.timeout,
            self.call(redis_key, slot, limits, consume, tally, started),
        )
        .await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => return self.failed(key, outage, limits, consume, err.into()),
            Err(_) => {
                let failure = RedisFailure::timed_out(self.timeout);
                return self.failed(key, outage, limits, consume, failure);
            }
        };
        self.redis_clock
            .observe(reply.slot, reply.redis_time, self.elapsed_micros());
        let Some(decision) = reply.decision else {
            // The script ran after this call's deadline (a reply that came
            // just in time from a call that ran just too late): nothing was
            // counted, and Redis is as good as unreachable for it.
            let failure = RedisFailure::timed_out(self.timeout);
            return self.failed(key, outage, limits, consume, failure);
        };
        if down_until != 0 {
            outage.store(0, Ordering::Relaxed);
            tracing::info!(redis = %self.url, "Redis serves again; rate limits are shared again");
        }
        if self.manager.is_cluster()
            && self
                .outages
                .layout_due(self.elapsed_micros(), LAYOUT_MAX_AGE_MICROS)
        {
            self.read_layout().await;
        }
        Ok(decision)
    }

    /// One call with its deadline; sent again by this code only when the
    /// connection was refused (see [`retry_if_refused`]), and by a cluster
    /// client as its connection says.
    async fn call(
        &self,
        redis_key: String,
        slot: usize,
        limits: Limits,
        consume: bool,
        tally: Tally,
        started: u64,
    ) -> Result<Reply, RedisError> {
        let mut keys = vec![redis_key];
        let tally = match tally {
            Tally::Nothing => "",
            Tally::Decision => "decision",
            Tally::Refusal(what) => what.code(),
        };
        if !tally.is_empty() {
            keys.push(usage_key_of(&keys[0]));
        }
        // No deadline until a reply has told Redis's clock: only a limiter's
        // first call goes without one.
        let deadline = self
            .redis_clock
            .estimate(slot, started)
            .map_or(0, |started| {
                started.saturating_add(duration_micros(self.timeout))
            });
        let manual_now = self
            .clock
            .as_ref()
            .map(|clock| clock.now().unix_micros().to_string())
            .unwrap_or_default();
        let args = (
            limits.rate_limit_per_minute(),
            limits.daily_limit(),
            u8::from(consume),
            deadline,
            manual_now,
            tally,
        );
        let reply: (i64, i64, i64, i64, i64, i64) = retry_if_refused(|| async {
            let mut connection = self.manager.clone();
            // The script by its hash once Redis has it; its text on the
            // first call and after Redis lost it (a restart), which loads it
            // in the same round trip.
            if self.script_loaded.load(Ordering::Relaxed) {
                let by_hash = script_command("EVALSHA", self.script.get_hash(), &keys, &args)
                    .query_async(&mut connection)
                    .await;
                match by_hash {
                    Err(err) if err.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                        self.script_loaded.store(false, Ordering::Relaxed);
                    }
                    other => return other,
                }
            }
            let reply = script_command("EVAL", SCRIPT, &keys, &args)
                .query_async(&mut connection)
                .await?;
            self.script_loaded.store(true, Ordering::Relaxed);
            Ok(reply)
        })
        .await?;
        let (code, debt, count, now, redis_time, since) = reply;
        Ok(Reply {
            decision: parse_reply(limits, code, debt, count, now, since),
            redis_time: redis_time.max(0) as u64,
            slot,
        })
    }

    /// After a failed call: an outage (unreachable, or Redis cannot serve
    /// now) marks Redis down and applies the outage policy; an error of this
    /// key's data fails this decision alone.
    fn failed(
        &self,
        key: &str,
        outage: &AtomicU64,
        limits: Limits,
        consume: bool,
        failure: RedisFailure,
    ) -> Result<Decision, Error> {
        if failure.class() == FailureClass::Data {
            // Redis answered: it is up, for every other key.
            if outage.swap(0, Ordering::Relaxed) != 0 {
                tracing::info!(redis = %self.url, "Redis serves again; rate limits are shared again");
            }
            tracing::error!(
                redis = %self.url,
                redis_key = %self.redis_key(key),
                "Redis refused a rate-limit decision; this request is not decided: {}",
                Report(&failure)
            );
            return Err(Error::Failed {
                source: Box::new(failure),
            });
        }
        let next_probe = self.next_probe(self.elapsed_micros());
        if outage.swap(next_probe, Ordering::Relaxed) == 0 {
            tracing::warn!(
                redis = %self.url,
                policy = ?self.outage_policy,
                "Redis cannot serve rate limits, which follow the outage policy: {}",
                Report(&failure)
            );
        }
        *self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(failure.clone());
        self.outage(key, limits, consume, Some(failure))
    }

    /// A decision under the outage policy; `failure` is the failure of this
    /// call, or `None` when Redis is known down and was not tried.
    fn outage(
        &self,
        key: &str,
        limits: Limits,
        consume: bool,
        failure: Option<RedisFailure>,
    ) -> Result<Decision, Error> {
        match self.outage_policy {
            OutagePolicy::Fallback if consume => Ok(self.fallback.check(key, limits)),
            OutagePolicy::Fallback => Ok(Decision::Admitted(self.fallback.peek(key, limits))),
            OutagePolicy::Open => {
                let now = self.local_clock.now().unix_micros();
                Ok(Decision::Admitted(policy::snapshot(limits, now, 0, 0)))
            }
            OutagePolicy::Closed => {
                let failure = failure.or_else(|| {
                    self.last_failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone()
                });
                Err(Error::Unavailable {
                    source: match failure {
                        Some(failure) => Box::new(failure),
                        None => "Redis was found down".into(),
                    },
                })
            }
        }
    }

    /// Reads which master serves which slots (`CLUSTER SLOTS`, from any
    /// node), so that a failure marks down the slots of its master only
    /// (see [`Outages`]). A failure to read changes nothing: until a read
    /// succeeds, a failure marks every slot down, as on one server.
    async fn read_layout(&self) {
        let mut connection = self.manager.clone();
        let read = tokio::time::timeout(
            self.timeout,
            redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async::<redis::Value>(&mut connection),
        )
        .await;
        if let Ok(Ok(reply)) = read {
            self.outages.set_layout(&reply, self.elapsed_micros());
        }
    }

    /// The time of the next probe, never 0 (which means "up").
    fn next_probe(&self, elapsed: u64) -> u64 {
        let interval = duration_micros(self.probe_interval).min(u64::MAX / 4);
        elapsed.saturating_add(interval).clamp(1, u64::MAX / 2)
    }

    fn elapsed_micros(&self) -> u64 {
        duration_micros(self.origin.elapsed()).min(u64::MAX / 2)
    }
}

/// The usage key beside the state key `redis_key` (see
/// [`RedisLimiter::usage_key`]).
fn usage_key_of(redis_key: &str) -> String {
    format!("{redis_key}:u")
}

fn duration_micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The decision a script reply stands for (see the script's header); `None`
/// when the script ran too late to decide.
fn parse_reply(
    limits: Limits,
    code: i64,
    debt: i64,
    count: i64,
    now: i64,
    since: i64,
) -> Option<Decision> {
    let denied_by = match code {
        -1 => return None,
        0 => None,
        1 => Some(DeniedBy::Minute),
        2 => Some(DeniedBy::Day),
        _ => Some(DeniedBy::Both),
    };
    let (debt, now) = (debt.max(0) as u64, now.max(0) as u64);
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    Some(if since >= 0 {
        policy::stepped_back(limits, now, since as u64, count)
    } else {
        policy::decision(limits, now, debt, count, denied_by)
    })
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
            .field("url", &self.url)
            .field("key_prefix", &self.key_prefix)
            .field("outage_policy", &self.outage_policy)
            .field("timeout", &self.timeout)
            .field("probe_interval", &self.probe_interval)
            .field("clock", &self.clock)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_server_has_one_clock() {
        let clock = RedisClock::new(false);
        assert_eq!(clock.slot_of("lumyx:rl:{a}"), 0);
        assert_eq!(clock.slot_of("lumyx:rl:{b}"), 0);
        assert_eq!(clock.estimate(0, 10), None);
        clock.observe(0, 5_000_000, 1_000);
        assert_eq!(clock.estimate(0, 2_000), Some(5_001_000));
        // A reply read late does not move it back; a step back of Redis's
        // clock does.
        clock.observe(0, 5_000_500, 2_000);
        assert_eq!(clock.estimate(0, 2_000), Some(5_001_000));
        clock.observe(0, 3_000_000, 3_000);
        assert_eq!(clock.estimate(0, 4_000), Some(3_001_000));
    }

    #[test]
    fn each_slot_of_a_cluster_keeps_its_masters_clock() {
        let clock = RedisClock::new(true);
        let ahead = clock.slot_of("lumyx:rl:{key_4e58d9f4757ccfc3}");
        let behind = clock.slot_of("lumyx:rl:{foo}");
        let unseen = clock.slot_of("lumyx:rl:{123456789}");
        assert_ne!(ahead, behind);
        assert_eq!(clock.estimate(ahead, 0), None);
        // Two masters whose clocks are 2 s apart answer in turn: neither
        // moves the other's estimate (one clock for both would jump back
        // and forth, and put a deadline of the master ahead in its past).
        for round in 0..3_u64 {
            let local = round * 1_000;
            clock.observe(ahead, 12_000_000 + local, local);
            clock.observe(behind, 10_000_000 + local, local);
            assert_eq!(clock.estimate(ahead, local), Some(12_000_000 + local));
            assert_eq!(clock.estimate(behind, local), Some(10_000_000 + local));
        }
        // A slot that has not answered yet takes the highest clock.
        assert_eq!(clock.estimate(unseen, 5_000), Some(12_005_000));
    }
}
