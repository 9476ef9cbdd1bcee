//! A [`KeyStore`] in Redis, shared by every server instance: one server, or
//! a Redis Cluster (see [`RedisKeyStore::builder`]).
//!
//! Layout, under a namespace `<ns>` (default `lumyx:keys`):
//! - `<ns>:record:{<id>}`: a hash per record (fields below), in the cluster
//!   slot of its key id (`key_` and 16 hex digits), which is also the hash
//!   tag of the key's limiter state and usage in `lumyx-ratelimit`
//!   (`lumyx:rl:{<id>}`), so a key's record, limits and usage share one
//!   slot. The id is derived from the key's digest, so a lookup by digest
//!   knows the record's name without an index. Records spread over every
//!   slot of a cluster.
//! - `{<ns>}:index`: a hash from key id to digest hex: the listing index,
//!   read only by [`KeyStore::list`];
//! - `{<ns>}:changes`: a stream, the change log: one entry per write
//!   (insert, update, revoke) of a stored key, with the fields `seq` and `id`
//!   (the key id), capped at about [`RedisKeyStoreBuilder::change_log_len`]
//!   entries (`XADD … MAXLEN ~`), so the oldest are trimmed;
//! - `{<ns>}:changes:seq`: the number of the last change, counted by `INCR`
//!   from 1; each entry carries its number as `seq`, so a follower that
//!   finds a number skipped knows it missed changes.
//!
//! The index and the change log share the slot of `{<ns>}`: they are the
//! only keys every management write touches, and no request's verification
//! reads them (a verification is one `HGETALL` of a record, and a server
//! that keeps a local copy of the records does not even do that).
//!
//! # Writes
//! A write is two scripts, each atomic on one slot and declaring every key
//! it touches: first the record's (insert, replace, revoke), then the
//! index's and the change log's (index the id, append the change). The
//! record is written first, so a follower that reads a change always finds
//! the record as written. When the second step fails (Redis down, the
//! process killed), the call answers an error although the record is
//! written: a retry of the call completes it (an update or a revocation
//! writes the record again, the same way, and logs the change; an insert of
//! the same record finds it unindexed and indexes it), and until then other
//! instances' copies miss the write and a listing does not show an insert.
//!
//! With [`RedisKeyStoreBuilder::replicas_to_confirm`] (1 by default on a
//! cluster), each step goes in one pipeline with a `WAIT` for that many
//! replicas, within half the timeout, so a write the API answered as made
//! survives the failover of its master: a created key is not lost and a
//! revoked key is not revived. When the replicas do not confirm a step, the
//! master has it all the same: the second step still runs (every instance
//! obeys the write), then the call answers an error (`NOREPLICAS`, Redis
//! cannot serve now), since a failover could still lose it. A master with
//! no replica left (after a failover, until the failed node rejoins) thus
//! answers every write of its slots with that error, although it makes
//! them. Reads wait for nothing.
//!
//! # Followers
//! A follower of the log ([`KeyChanges`]) remembers the stream id and the
//! number of the last change it answered. It reads the counter and the
//! entries after its stream id in one round trip (`GET`, then
//! `XREAD BLOCK`): the first entry must carry the next number, and with no
//! entry the counter must not have moved; anything else (entries trimmed
//! away, a counter that went back because Redis lost its data or failed over
//! to a replica without the latest changes) is a gap.
//!
//! # Upgrading from the single-slot layout
//! Versions before 0.2 kept each record at `{<ns>}:record:<digest hex>`, in
//! the namespace's slot with everything else. The index and the change log
//! keep their names and formats; [`RedisKeyStore::migrate_single_slot_layout`]
//! moves the records (a server runs it at every start), and a record not
//! moved yet is not found, so run it before serving.
//!
//! # Times
//! A time is two integer fields, `<name>_secs` (seconds since the Unix
//! epoch, negative before 1970) and `<name>_nanos` (the nanoseconds within
//! that second), both absent when the record has no such time. Integers
//! compare exactly in the scripts: one number of nanoseconds would not, as
//! Lua numbers are doubles, exact only up to 2^53 (about 104 days after
//! 1970 in nanoseconds, 285 years in microseconds), while seconds of any
//! time a record may hold are below 2^38 and nanoseconds below 2^31. The
//! pair keeps every time exactly, nanoseconds included.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;
use lumyx_redis::{RedisConnection, RedisConnector, RedisFailure, RedisUrl, retry_if_refused};
use redis::{AsyncCommands, Cmd, FromRedisValue, RedisResult};

use crate::stored::{NANOS, SCOPES, SECONDS, corrupt, scopes_text, stored_scopes, stored_time};
use crate::{Error, KeyDigest, KeyId, KeyRecord, KeyStore, Limits, Scopes};

/// The stream id before every entry: where a follower of an empty change log
/// starts.
const BEFORE_FIRST_ENTRY: &str = "0-0";

/// How many records [`KeyStore::list`] and the migration ask for at once:
/// each is its own command (records lie in many slots), sent together on
/// the multiplexed connection.
const RECORDS_PER_BATCH: usize = 512;

/// A Lua function that the record scripts share: rewrites a record's `id`
/// with itself. It changes nothing, but it is a write, so Redis replicates
/// it after every earlier write of the record's master: a script sent again
/// after a dropped connection, which finds its first send's work done and
/// would write nothing, still gives the `WAIT` after it something to count
/// (see `RedisConnection::query_confirmed`).
const TOUCH: &str = r"
local function touch(record)
  local id = redis.call('HGET', record, 'id')
  if id then redis.call('HSET', record, 'id', id) end
end
";

/// Writes a new record unless one is stored under its id. KEYS: record.
/// ARGV: digest hex, then field/value pairs. Answers 1 when written, 2 when
/// the same record (the same digest) is stored already, 0 when another is.
const INSERT_RECORD: &str = r"
local stored = redis.call('HGET', KEYS[1], 'digest')
if stored then
  if stored == ARGV[1] then
    touch(KEYS[1])
    return 2
  end
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1";

/// A Lua function that the scripts which log share: appends a changed id to
/// the change log, numbered by the sequence counter, and trims the log to
/// about `len` entries.
const APPEND_CHANGE: &str = r"
local function append_change(changes, counter, id, len)
  local seq = redis.call('INCR', counter)
  redis.call('XADD', changes, 'MAXLEN', '~', len, '*', 'seq', seq, 'id', id)
end
";

/// Indexes an inserted record and logs the change, unless the record was
/// stored and indexed before (a duplicate insert changes nothing). KEYS:
/// change log, counter, index. ARGV: id, change log length, digest hex,
/// `1` when the first step wrote the record. Answers 1 when the id was not
/// indexed before, 0 when it was.
const INDEX_INSERT: &str = r"
local added = redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
if added == 1 or ARGV[4] == '1' then
  append_change(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
end
return added";

/// Logs the change of a record. KEYS: change log, counter. ARGV: id, change
/// log length.
const LOG_CHANGE: &str = r"
append_change(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return 1";

/// A Lua function that the scripts which revoke share: sets a record's
/// revocation unless it is revoked at that time or earlier already. Times are
/// compared as numbers, seconds first, then nanoseconds: both are integers
/// below 2^53 (seconds of years 0 to 9999 are below 2^38), so a Lua number
/// (a double) holds them exactly. The text that came is what is written, so
/// no number is formatted back into text.
const REVOKE_UNLESS_EARLIER: &str = r"
local function revoke_unless_earlier(record, secs, nanos)
  local stored = redis.call('HMGET', record, 'revoked_at_secs', 'revoked_at_nanos')
  local stored_secs, stored_nanos = tonumber(stored[1]), tonumber(stored[2])
  local new_secs, new_nanos = tonumber(secs), tonumber(nanos)
  if stored_secs and stored_nanos and (stored_secs < new_secs
      or (stored_secs == new_secs and stored_nanos <= new_nanos)) then
    return
  end
  redis.call('HSET', record, 'revoked_at_secs', secs, 'revoked_at_nanos', nanos)
end
";

/// Replaces a stored record, keeping an earlier revocation (see
/// `KeyStore::update`). KEYS: record. ARGV: field/value pairs. Answers 0
/// when no record is stored.
const UPDATE_RECORD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local earlier = redis.call('HMGET', KEYS[1], 'revoked_at_secs', 'revoked_at_nanos')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV))
if earlier[1] and earlier[2] then
  revoke_unless_earlier(KEYS[1], earlier[1], earlier[2])
end
return 1";

/// Revokes a stored record unless it is revoked earlier, and answers the
/// record; nothing when none is stored. KEYS: record. ARGV: revocation
/// seconds, revocation nanoseconds.
const REVOKE_RECORD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
revoke_unless_earlier(KEYS[1], ARGV[1], ARGV[2])
touch(KEYS[1])
return redis.call('HGETALL', KEYS[1])";

/// Copies a record of the single-slot layout to its new place; when a
/// record is there already (copied by an earlier run, or written since),
/// keeps it and takes only the old record's revocation when it is earlier,
/// so that a key revoked in the old place (by an instance of the older
/// version) stays revoked. KEYS: new record. ARGV: the old revocation's
/// seconds and nanoseconds (empty when none), then the old field/value
/// pairs. Answers 1 when copied.
const MOVE_RECORD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  if ARGV[1] ~= '' then revoke_unless_earlier(KEYS[1], ARGV[1], ARGV[2]) end
  touch(KEYS[1])
  return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1";

/// Deletes a record of the single-slot layout if it still holds what was
/// copied. KEYS: old record. ARGV: the field/value pairs copied. Answers 1
/// when deleted, 0 when it changed (it is then copied again).
const DELETE_IF_UNCHANGED: &str = r"
local stored = redis.call('HGETALL', KEYS[1])
if #stored ~= #ARGV then return 0 end
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) ~= ARGV[i + 1] then return 0 end
end
redis.call('DEL', KEYS[1])
return 1";

/// Configures a [`RedisKeyStore`]; made by [`RedisKeyStore::builder`].
///
/// `Debug` shows the URL with its password replaced by `***`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisKeyStoreBuilder {
    connector: RedisConnector,
    namespace: String,
    change_log_len: usize,
    replicas_to_confirm: u32,
}

impl RedisKeyStoreBuilder {
    /// The longest a connection attempt, and then each reply, may take
    /// before the call fails with an error, so that an outage answers
    /// promptly instead of hanging a request. Default:
    /// [`RedisKeyStore::DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.connector = self.connector.timeout(timeout);
        self
    }

    /// The namespace of every Redis key of the store. Default:
    /// [`RedisKeyStore::DEFAULT_NAMESPACE`]. It must be non-empty and hold
    /// no `{` or `}`: it becomes the hash tag of the index and the change
    /// log. Stores under different namespaces on one server are separate.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// About how many changes the change log keeps (`XADD … MAXLEN ~`):
    /// Redis trims whole blocks of entries, so the log may hold somewhat
    /// more. A follower ([`RedisKeyStore::changes`]) that falls further
    /// behind than this is told that it lost changes. Default:
    /// [`RedisKeyStore::DEFAULT_CHANGE_LOG_LEN`]; it must be at least 1.
    pub fn change_log_len(mut self, len: usize) -> Self {
        self.change_log_len = len;
        self
    }

    /// How many replicas must hold each write (`WAIT`) before it is
    /// answered as made; within half the timeout, or the write answers
    /// [`Error::Store`] (`NOREPLICAS`, class unavailable), although the
    /// master made it. Default: 1 for a cluster URL (its masters have
    /// replicas, and a write only the master held would be lost by its
    /// failover), 0 for one server. 0 waits for nothing.
    pub fn replicas_to_confirm(mut self, replicas: u32) -> Self {
        self.replicas_to_confirm = replicas;
        self
    }

    /// Builds the store. Must run inside a Tokio runtime. It does not
    /// contact Redis: the connection is made by the first call and remade
    /// after every failure, so a service starts while Redis is down and its
    /// calls answer errors until Redis is back.
    ///
    /// # Errors
    /// [`Error::Config`] when the namespace is empty or holds a brace, when
    /// the change log length is 0, or when the Redis client refuses the
    /// URL's settings.
    pub async fn connect(self) -> Result<RedisKeyStore, Error> {
        let namespace = self.namespace;
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(Error::Config {
                setting: "Redis namespace",
                expected: "non-empty text without `{` or `}`",
                got: namespace,
                source: None,
            });
        }
        if self.change_log_len == 0 {
            return Err(Error::Config {
                setting: "Redis change log length",
                expected: "at least 1",
                got: self.change_log_len.to_string(),
                source: None,
            });
        }
        Ok(RedisKeyStore {
            connection: lazy_connection(&self.connector)?,
            connector: self.connector,
            index_key: format!("{{{namespace}}}:index"),
            changes_key: format!("{{{namespace}}}:changes"),
            counter_key: format!("{{{namespace}}}:changes:seq"),
            change_log_len: self.change_log_len,
            replicas_to_confirm: self.replicas_to_confirm,
            namespace,
            scripts: Arc::new(Scripts {
                insert_record: [TOUCH, INSERT_RECORD].concat(),
                index_insert: [APPEND_CHANGE, INDEX_INSERT].concat(),
                log_change: [APPEND_CHANGE, LOG_CHANGE].concat(),
                update_record: [REVOKE_UNLESS_EARLIER, UPDATE_RECORD].concat(),
                revoke_record: [TOUCH, REVOKE_UNLESS_EARLIER, REVOKE_RECORD].concat(),
                move_record: [TOUCH, REVOKE_UNLESS_EARLIER, MOVE_RECORD].concat(),
                delete_if_unchanged: DELETE_IF_UNCHANGED.to_owned(),
            }),
        })
    }
}

/// The text of the store's write scripts, shared by clones.
struct Scripts {
    insert_record: String,
    index_insert: String,
    log_change: String,
    update_record: String,
    revoke_record: String,
    move_record: String,
    delete_if_unchanged: String,
}

/// What [`RedisKeyStore::migrate_single_slot_layout`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Migration {
    /// How many records it copied to their new place.
    pub moved: usize,
    /// The ids (as the index names them) of old records it left in their
    /// old place: records that cannot be read (a corrupt field), or that
    /// changed on every attempt (an instance of the older version still
    /// writes them). Those keys are not found until they are moved.
    pub left_in_place: Vec<String>,
}

/// A key store in Redis; see the module docs for the layout.
///
/// Built with [`RedisKeyStore::builder`], as `lumyx-ratelimit`'s
/// `RedisLimiter` is. The connection is made by the first call, not by
/// `connect`. To one server, a call is sent again only when the connection
/// was refused (so nothing was sent); any other failure (a dropped
/// connection, a timeout) is an error, since Redis may have run a write
/// whose reply was lost. Cloning is cheap: clones share one multiplexed,
/// self-reconnecting connection.
///
/// `Debug` shows the URL with its password replaced by `***`.
///
/// ```
/// use std::time::Duration;
/// use chrono::Utc;
/// use lumyx_keys::{ApiKey, KeyRecord, KeyStore, RedisKeyStore, verify};
///
/// # let Some(server) = lumyx_test_support::RedisServer::start_or_skip("doc") else { return Ok(()) };
/// # let url = server.url();
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// // url = "redis://127.0.0.1:6379/", or a cluster's nodes:
/// // "redis://10.0.0.1:7000,redis://10.0.0.2:7000,redis://10.0.0.3:7000"
/// let store = RedisKeyStore::builder(url.parse()?)
///     .timeout(Duration::from_millis(500))
///     .namespace("lumyx:keys")
///     .connect()
///     .await?;
/// let key = ApiKey::generate()?;
/// store.insert(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())).await?;
/// assert!(verify(&store, key.as_key_ref(), Utc::now()).await?.valid_record().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RedisKeyStore {
    connection: RedisConnection,
    connector: RedisConnector,
    namespace: String,
    index_key: String,
    changes_key: String,
    counter_key: String,
    change_log_len: usize,
    replicas_to_confirm: u32,
    scripts: Arc<Scripts>,
}

impl fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("url", self.connector.url())
            .field("timeout", &self.connector.timeout_value())
            .field("namespace", &self.namespace)
            .field("change_log_len", &self.change_log_len)
            .field("replicas_to_confirm", &self.replicas_to_confirm)
            .finish_non_exhaustive()
    }
}

/// A failed call, kept as the cause of [`Error::Store`] with its class.
fn store_error(err: redis::RedisError) -> Error {
    Error::Store(Box::new(RedisFailure::from(err)))
}

/// A connection made by its first call (see
/// [`RedisConnector::connect_lazy`]).
fn lazy_connection(connector: &RedisConnector) -> Result<RedisConnection, Error> {
    connector.connect_lazy().map_err(|err| Error::Config {
        setting: "Redis URL",
        expected: "settings the Redis client accepts",
        got: connector.url().to_string(),
        source: Some(Box::new(err)),
    })
}

/// Sends `call` on `connection`; once more only when the connection was
/// refused.
async fn send<T, F, Fut>(connection: &RedisConnection, call: F) -> Result<T, Error>
where
    F: Fn(RedisConnection) -> Fut,
    Fut: Future<Output = RedisResult<T>>,
{
    retry_if_refused(|| call(connection.clone()))
        .await
        .map_err(store_error)
}

impl RedisKeyStore {
    /// The default of [`RedisKeyStoreBuilder::namespace`].
    pub const DEFAULT_NAMESPACE: &'static str = "lumyx:keys";

    /// The default of [`RedisKeyStoreBuilder::timeout`]: 2 s. It is longer
    /// than the rate limiter's 250 ms because a limiter can decide locally
    /// while Redis is slow, and a key lookup has nowhere else to go; and a
    /// write confirmed by replicas waits up to half of it for them, which a
    /// busy replica can take.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

    /// The default of [`RedisKeyStoreBuilder::change_log_len`]: 10 000
    /// changes.
    pub const DEFAULT_CHANGE_LOG_LEN: usize = 10_000;

    /// A builder of a store on the Redis server at `url` (or on the Redis
    /// Cluster whose nodes it lists), with the defaults.
    pub fn builder(url: RedisUrl) -> RedisKeyStoreBuilder {
        let replicas_to_confirm = u32::from(url.is_cluster());
        RedisKeyStoreBuilder {
            connector: RedisConnector::new(url).timeout(RedisKeyStore::DEFAULT_TIMEOUT),
            namespace: RedisKeyStore::DEFAULT_NAMESPACE.to_owned(),
            change_log_len: RedisKeyStore::DEFAULT_CHANGE_LOG_LEN,
            replicas_to_confirm,
        }
    }

    /// The Redis key of the record of the key `id`: `<ns>:record:{<id>}`,
    /// in the slot of `id` (see the module docs).
    ///
    /// ```
    /// # use lumyx_keys::{KeyId, RedisKeyStore};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let store = RedisKeyStore::builder("redis://127.0.0.1:6379/".parse()?).connect().await?;
    /// let id: KeyId = "key_4e58d9f4757ccfc3".parse()?;
    /// assert_eq!(store.record_key(&id), "lumyx:keys:record:{key_4e58d9f4757ccfc3}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn record_key(&self, id: &KeyId) -> String {
        format!("{}:record:{{{id}}}", self.namespace)
    }

    /// The Redis key of a record in the layout before 0.2.
    fn single_slot_record_key(&self, digest_hex: &str) -> String {
        format!("{{{}}}:record:{digest_hex}", self.namespace)
    }

    /// `EVAL` of a write script on `keys`, to which the caller adds the
    /// arguments. Writes send the script's text rather than its hash
    /// (`EVALSHA`), so that a write and its `WAIT` go in one pipeline (see
    /// [`RedisKeyStore::write`]); writes are management calls, rare next to
    /// requests.
    fn eval(script: &str, keys: &[&str]) -> Cmd {
        let mut command = redis::cmd("EVAL");
        command.arg(script).arg(keys.len()).arg(keys);
        command
    }

    /// `EVAL` of a script that logs (see [`APPEND_CHANGE`]): the change log
    /// and its counter as the first keys, then `more_keys`; the changed id
    /// and the log's length as the first arguments.
    fn eval_logging(&self, script: &str, id: &KeyId, more_keys: &[&str]) -> Cmd {
        let mut keys = vec![self.changes_key.as_str(), &self.counter_key];
        keys.extend_from_slice(more_keys);
        let mut command = RedisKeyStore::eval(script, &keys);
        command.arg(id.to_string()).arg(self.change_log_len);
        command
    }

    /// Runs a write script of one slot on the shared connection (see
    /// [`send`]) and, when [`RedisKeyStoreBuilder::replicas_to_confirm`]
    /// asks for it, waits in the same pipeline until that many replicas
    /// hold it, within half the timeout. Answers the script's reply, and
    /// whether the replicas hold the write: `Err` (`NOREPLICAS`) when they
    /// do not, although the master made it, so that the caller still takes
    /// its next step before it answers the error.
    async fn write<T: FromRedisValue>(
        &self,
        command: &Cmd,
    ) -> Result<(T, Result<(), Error>), Error> {
        let wanted = self.replicas_to_confirm;
        if wanted == 0 {
            let answer = send(&self.connection, |mut connection| async move {
                command.query_async(&mut connection).await
            })
            .await?;
            return Ok((answer, Ok(())));
        }
        let within = self.connector.timeout_value() / 2;
        let (answer, acked) = send(&self.connection, |mut connection| async move {
            connection.query_confirmed(command, wanted, within).await
        })
        .await?;
        if acked >= wanted {
            return Ok((answer, Ok(())));
        }
        let unconfirmed = store_error(redis::make_extension_error(
            "NOREPLICAS".to_owned(),
            Some(format!(
                "the master made the write, but {acked} of the {wanted} replicas \
                 asked for confirmed it within {within:?}"
            )),
        ));
        Ok((answer, Err(unconfirmed)))
    }

    /// Logs the change of `id` in the change log (the second step of an
    /// update and a revocation); answers whether the replicas hold it.
    async fn log_change(&self, id: &KeyId) -> Result<Result<(), Error>, Error> {
        let command = self.eval_logging(&self.scripts.log_change, id, &[]);
        let (_, confirmed): (i64, _) = self.write(&command).await?;
        Ok(confirmed)
    }

    /// The records stored under these record keys, read together; a
    /// missing one is empty.
    async fn read_records(&self, keys: &[String]) -> Result<Vec<HashMap<String, String>>, Error> {
        let mut all = Vec::with_capacity(keys.len());
        for batch in keys.chunks(RECORDS_PER_BATCH) {
            let reads = batch.iter().map(|key| {
                send(&self.connection, move |mut connection| async move {
                    connection.hgetall::<_, HashMap<String, String>>(key).await
                })
            });
            all.extend(try_join_all(reads).await?);
        }
        Ok(all)
    }

    /// Moves every record written in the layout before 0.2 (see the module
    /// docs) to its place, logs a change for each so that followers load
    /// it, and says what it did. Any number of instances may run it at
    /// once, and it may run again after a failure: a record is copied only
    /// where none is (an existing copy keeps its fields and takes the old
    /// record's revocation when that is earlier), and the old record is
    /// removed only if it still holds what was copied (otherwise the move
    /// is made again).
    ///
    /// Run it once every instance of the older version stopped: one of them
    /// would not find the moved records, and would write to the old places
    /// (a revocation made there while the move runs is kept; other changes
    /// may be lost).
    ///
    /// # Errors
    /// [`Error::Store`] when Redis fails on the way (run it again: what was
    /// moved stays moved), or when replicas did not confirm every write
    /// (`NOREPLICAS`; every record was moved all the same).
    pub async fn migrate_single_slot_layout(&self) -> Result<Migration, Error> {
        const ATTEMPTS: usize = 5;
        let index_key = &self.index_key;
        let index: HashMap<String, String> = send(&self.connection, |mut connection| async move {
            connection.hgetall(index_key).await
        })
        .await?;
        let mut migration = Migration::default();
        let mut confirmed = Ok(());
        for (id, digest) in &index {
            let old_key = self.single_slot_record_key(digest);
            let mut moved = false;
            let mut done = false;
            for _ in 0..ATTEMPTS {
                let fields = self
                    .read_records(std::slice::from_ref(&old_key))
                    .await?
                    .remove(0);
                let record = match record_from_fields(Some(fields.clone())) {
                    Ok(Some(record)) => record,
                    // Nothing there: never written, or moved already.
                    Ok(None) => {
                        done = true;
                        break;
                    }
                    Err(_) => break,
                };
                let new_key = self.record_key(&record.id);
                let revoked = record.revoked_at.map(|at| {
                    (
                        at.timestamp().to_string(),
                        at.timestamp_subsec_nanos().to_string(),
                    )
                });
                let (secs, nanos) = revoked.unwrap_or_default();
                let pairs: Vec<(&String, &String)> = fields.iter().collect();
                let mut copy = RedisKeyStore::eval(&self.scripts.move_record, &[&new_key]);
                copy.arg(secs).arg(nanos).arg(&pairs);
                let (copied, copy_confirmed): (i64, _) = self.write(&copy).await?;
                let mut delete =
                    RedisKeyStore::eval(&self.scripts.delete_if_unchanged, &[&old_key]);
                delete.arg(&pairs);
                let (deleted, delete_confirmed): (i64, _) = self.write(&delete).await?;
                let logged = self.log_change(&record.id).await?;
                confirmed = confirmed
                    .and(copy_confirmed)
                    .and(delete_confirmed)
                    .and(logged);
                moved |= copied == 1;
                if deleted == 1 {
                    done = true;
                    break;
                }
            }
            if moved {
                migration.moved += 1;
            }
            if !done {
                migration.left_in_place.push(id.clone());
            }
        }
        confirmed.map(|()| migration)
    }

    /// A follower of the change log, positioned at the newest change: what
    /// an instance that keeps its own copy of the records (to verify keys
    /// without a round trip) follows to keep the copy current.
    ///
    /// Take the follower first, then load the records with
    /// [`KeyStore::list`], then call [`KeyChanges::next`] in a loop and
    /// reload each id it answers with [`KeyStore::find_by_id`]: every write
    /// made after the follower was taken, by any instance sharing the
    /// store, is answered by it, so nothing falls between the list and the
    /// follower. A change is answered as soon as Redis has it: a few
    /// milliseconds after the write started, on one machine.
    ///
    /// The follower has its own connection, made from the store's URL and
    /// timeout, because a waiting `XREAD BLOCK` holds the connection it runs
    /// on: the store's shared connection stays free for other calls.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::time::Duration;
    /// use chrono::Utc;
    /// use lumyx_keys::{ApiKey, KeyChange, KeyRecord, KeyStore, RedisKeyStore};
    ///
    /// # let Some(server) = lumyx_test_support::RedisServer::start_or_skip("changes_doc") else { return Ok(()) };
    /// # let url = server.url();
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// // url = "redis://127.0.0.1:6379/"
    /// let store = RedisKeyStore::builder(url.parse()?).connect().await?;
    /// // The follower first, then the records.
    /// let mut changes = store.changes().await?;
    /// let mut copy: HashMap<_, _> = store.list().await?.into_iter().map(|r| (r.id, r)).collect();
    ///
    /// // Any instance writes...
    /// let key = ApiKey::generate()?;
    /// store.insert(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())).await?;
    ///
    /// // ...and the follower answers the ids to reload (in a loop, in practice).
    /// match changes.next(Duration::from_millis(400)).await? {
    ///     KeyChange::Changed(ids) => {
    ///         for id in ids {
    ///             match store.find_by_id(&id).await? {
    ///                 Some(record) => copy.insert(id, record),
    ///                 None => copy.remove(&id),
    ///             };
    ///         }
    ///     }
    ///     KeyChange::Lost => {
    ///         copy = store.list().await?.into_iter().map(|r| (r.id, r)).collect();
    ///     }
    /// }
    /// assert!(copy.contains_key(&key.id()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Store`] when Redis does not answer; [`Error::Config`] when
    /// the Redis client refuses the URL's settings.
    pub async fn changes(&self) -> Result<KeyChanges, Error> {
        let mut changes = KeyChanges {
            connection: lazy_connection(&self.connector)?,
            connector: self.connector.clone(),
            changes_key: self.changes_key.clone(),
            counter_key: self.counter_key.clone(),
            last: None,
        };
        changes.last = Some(changes.newest().await?);
        Ok(changes)
    }
}

#[async_trait]
impl KeyStore for RedisKeyStore {
    async fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        record.validate()?;
        let digest = record.digest.to_hex();
        let record_key = self.record_key(&record.id);
        let mut write_record = RedisKeyStore::eval(&self.scripts.insert_record, &[&record_key]);
        write_record.arg(&digest).arg(fields_of(&record));
        let (written, record_confirmed): (i64, _) = self.write(&write_record).await?;
        if written == 0 {
            return Err(Error::Duplicate(record.id));
        }
        let mut index =
            self.eval_logging(&self.scripts.index_insert, &record.id, &[&self.index_key]);
        index.arg(&digest).arg(u8::from(written == 1));
        let (newly_indexed, index_confirmed): (i64, _) = self.write(&index).await?;
        // The same record stored and indexed before is a duplicate; stored
        // but not indexed, it is this insert's (or an earlier, failed one's)
        // first step, now completed.
        if written == 2 && newly_indexed == 0 {
            return Err(Error::Duplicate(record.id));
        }
        record_confirmed.and(index_confirmed)
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, Error> {
        record.validate()?;
        let record_key = self.record_key(&record.id);
        let mut write_record = RedisKeyStore::eval(&self.scripts.update_record, &[&record_key]);
        write_record.arg(fields_of(&record));
        let (updated, record_confirmed): (i64, _) = self.write(&write_record).await?;
        if updated == 0 {
            return Ok(false);
        }
        // Logged even when the replicas did not confirm the record: the
        // master has it, so every instance must obey it.
        let logged = self.log_change(&record.id).await?;
        record_confirmed.and(logged).map(|()| true)
    }

    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        let at = KeyRecord::check_time("revoked_at", at)?;
        let record_key = self.record_key(id);
        let mut write_record = RedisKeyStore::eval(&self.scripts.revoke_record, &[&record_key]);
        write_record
            .arg(at.timestamp())
            .arg(at.timestamp_subsec_nanos());
        let (fields, record_confirmed): (Option<HashMap<String, String>>, _) =
            self.write(&write_record).await?;
        let Some(record) = record_from_fields(fields)? else {
            return Ok(None);
        };
        // Logged even when the replicas did not confirm the revocation: the
        // master has it, so every instance must obey it.
        let logged = self.log_change(id).await?;
        record_confirmed.and(logged).map(|()| Some(record))
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error> {
        // The id comes from the digest, so the record's name does too;
        // comparing the stored digest (in constant time) refuses a record
        // of another key with the same id.
        Ok(self
            .find_by_id(&digest.id())
            .await?
            .filter(|record| record.digest == *digest))
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        let record_key = &self.record_key(id);
        let fields: HashMap<String, String> = send(&self.connection, |mut connection| async move {
            connection.hgetall(record_key).await
        })
        .await?;
        Ok(record_from_fields(Some(fields))?.filter(|record| record.id == *id))
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error> {
        let index_key = &self.index_key;
        let index: HashMap<String, String> = send(&self.connection, |mut connection| async move {
            connection.hgetall(index_key).await
        })
        .await?;
        let mut record_keys = Vec::with_capacity(index.len());
        for id in index.keys() {
            let id: KeyId = id
                .parse()
                .map_err(|err| corrupt("index", "key ids", Some(Box::new(err))))?;
            record_keys.push(self.record_key(&id));
        }
        let mut records = Vec::with_capacity(record_keys.len());
        for fields in self.read_records(&record_keys).await? {
            // A missing record is an insert whose first step alone was
            // made: it was never answered as made.
            records.extend(record_from_fields(Some(fields))?);
        }
        crate::store::sort_oldest_first(&mut records);
        Ok(records)
    }
}

/// What [`KeyChanges::next`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// The ids of the keys written (inserted, updated, revoked) since the
    /// previous answer, in the order of the writes: an id written twice is
    /// there twice. Empty when nothing was written within the wait.
    Changed(Vec<KeyId>),
    /// Changes were missed, so the ids that came before cannot be trusted to
    /// be all of them: the follower fell more than
    /// [`RedisKeyStoreBuilder::change_log_len`] changes behind, or Redis
    /// lost its data (restarted empty, flushed, or failed over to a replica
    /// without the latest writes). The caller must reload every record
    /// ([`KeyStore::list`]); the follower is positioned at the newest change
    /// again already, so the changes made while it reloads come next.
    Lost,
}

/// A follower of a [`RedisKeyStore`]'s change log, made by
/// [`RedisKeyStore::changes`]: it answers the ids of the keys that any
/// instance sharing the store writes, in order, and says when it missed
/// some.
///
/// It holds its own connection, made by its first call and remade after a
/// failure. `Debug` shows the URL with its password replaced by `***`.
pub struct KeyChanges {
    connection: RedisConnection,
    connector: RedisConnector,
    changes_key: String,
    counter_key: String,
    /// The last change answered; `None` after a gap that the follower could
    /// not yet move past (Redis failed while it looked for the newest
    /// change), so the next call answers [`KeyChange::Lost`].
    last: Option<Seen>,
}

/// A change of the log, as a follower remembers it.
#[derive(Debug, Clone)]
struct Seen {
    /// Its stream id, after which the next read starts.
    entry: String,
    /// Its number.
    seq: u64,
}

/// A stream entry as Redis answers it: its id and its fields.
type Entry = (String, HashMap<String, String>);

/// A stream as `XREAD` answers it: its name and its entries.
type Stream = (String, Vec<Entry>);

impl fmt::Debug for KeyChanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyChanges")
            .field("url", self.connector.url())
            .field("timeout", &self.connector.timeout_value())
            .field("changes_key", &self.changes_key)
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl KeyChanges {
    /// The most ids one call of [`KeyChanges::next`] answers
    /// (`XREAD … COUNT`); more come with the following calls.
    pub const MAX_IDS: usize = 1000;

    /// The longest [`KeyChanges::next`] waits: half the store's timeout
    /// ([`RedisKeyStoreBuilder::timeout`]). A reply that has not come
    /// within the timeout is a failure, so the wait must end well before
    /// it: the other half is left for the reply to arrive.
    pub fn max_wait(&self) -> Duration {
        self.connector.timeout_value() / 2
    }

    /// The ids of the keys written since the previous answer, or
    /// [`KeyChange::Lost`] when changes were missed.
    ///
    /// When nothing new is logged yet, it waits for a change up to `wait`
    /// (`XREAD BLOCK`), then answers `Changed` with no ids. A change is
    /// answered as soon as Redis has it, however long the wait. `wait` is
    /// cut to [`KeyChanges::max_wait`], half the store's timeout, as a
    /// longer one would make the wait itself a timeout; under 1 ms it does
    /// not wait. At most [`KeyChanges::MAX_IDS`] ids come in one answer.
    ///
    /// After `Lost` the caller must reload every record
    /// ([`KeyStore::list`]), then go on calling `next`: the follower goes on
    /// from the newest change.
    ///
    /// An entry of the log that this crate did not write (a missing or
    /// unreadable `seq` or `id`) is a missed change too: `Lost`.
    ///
    /// # Errors
    /// [`Error::Store`] when Redis does not answer (down, unreachable,
    /// slower than the timeout). The follower keeps its place, so a later
    /// call misses nothing, and answers `Lost` if Redis came back without
    /// its data.
    pub async fn next(&mut self, wait: Duration) -> Result<KeyChange, Error> {
        let Some(last) = self.last.clone() else {
            return self.start_over().await;
        };
        let mut read = redis::cmd("XREAD");
        let block = wait.min(self.max_wait()).as_millis();
        if block > 0 {
            // `BLOCK 0` would wait for ever.
            read.arg("BLOCK")
                .arg(u64::try_from(block).unwrap_or(u64::MAX));
        }
        read.arg("COUNT")
            .arg(KeyChanges::MAX_IDS)
            .arg("STREAMS")
            .arg(&self.changes_key)
            .arg(&last.entry);
        // The counter is read before the entries, so every change it counts
        // is either still in the log after `last`, or was trimmed away by
        // later ones, which the read then answers.
        // The last entry answered is read again: when it is gone, Redis lost
        // it (a failover to a replica that never had it), and a write after
        // that may have taken its number with an earlier stream id, which
        // the read after `last` would never answer.
        let mut pipeline = redis::pipe();
        pipeline
            .get(&self.counter_key)
            .cmd("XRANGE")
            .arg(&self.changes_key)
            .arg(&last.entry)
            .arg(&last.entry)
            .add_command(read);
        let pipeline = &pipeline;
        let (counter, again, streams): (Option<u64>, Vec<Entry>, Vec<Stream>) =
            send(&self.connection, |mut connection| async move {
                pipeline.query_async(&mut connection).await
            })
            .await?;
        if again.is_empty() && last.entry != BEFORE_FIRST_ENTRY {
            return self.start_over().await;
        }
        let mut ids = Vec::new();
        let mut seen = last;
        for (entry, fields) in streams.into_iter().flat_map(|(_, entries)| entries) {
            match change_of(&fields) {
                Some((seq, id)) if seq == seen.seq + 1 => {
                    ids.push(id);
                    seen = Seen { entry, seq };
                }
                _ => return self.start_over().await,
            }
        }
        if ids.is_empty() && counter.unwrap_or(0) != seen.seq {
            // Changes were counted that the log does not hold after `last`
            // (trimmed away), or the counter went back: Redis lost the
            // changes this follower had seen.
            return self.start_over().await;
        }
        self.last = Some(seen);
        Ok(KeyChange::Changed(ids))
    }

    /// Takes the newest change as the place to go on from and answers
    /// [`KeyChange::Lost`]. When Redis fails meanwhile, the follower has
    /// no place, so the next call tries again and answers `Lost` then.
    async fn start_over(&mut self) -> Result<KeyChange, Error> {
        self.last = None;
        self.last = Some(self.newest().await?);
        Ok(KeyChange::Lost)
    }

    /// The newest change: the counter and the last entry of the log, read
    /// together (`MULTI`), so that no change falls between them.
    async fn newest(&self) -> Result<Seen, Error> {
        let mut pipeline = redis::pipe();
        pipeline
            .atomic()
            .get(&self.counter_key)
            .cmd("XREVRANGE")
            .arg(&self.changes_key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1);
        let pipeline = &pipeline;
        let (counter, last): (Option<u64>, Vec<Entry>) =
            send(&self.connection, |mut connection| async move {
                pipeline.query_async(&mut connection).await
            })
            .await?;
        let entry = last
            .into_iter()
            .next()
            .map_or_else(|| BEFORE_FIRST_ENTRY.to_owned(), |(entry, _)| entry);
        Ok(Seen {
            entry,
            seq: counter.unwrap_or(0),
        })
    }
}

/// The number and the key id of a change, from its entry's fields; `None`
/// when either is missing or unreadable.
fn change_of(fields: &HashMap<String, String>) -> Option<(u64, KeyId)> {
    let seq = fields.get("seq")?.parse().ok()?;
    let id = fields.get("id")?.parse().ok()?;
    Some((seq, id))
}

/// The hash fields of a record. A time is two fields, `<name>_secs` and
/// `<name>_nanos`; an absent time has neither.
fn fields_of(record: &KeyRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", record.id.to_string()),
        ("digest", record.digest.to_hex()),
        ("hint", record.hint.to_string()),
        ("name", record.name.clone()),
        ("owner", record.owner.clone()),
        (
            "rate_limit_per_minute",
            record.limits.rate_limit_per_minute().to_string(),
        ),
        ("daily_limit", record.limits.daily_limit().to_string()),
        ("scopes", scopes_text(record.scopes)),
    ];
    let times = [
        (CREATED_AT, Some(record.created_at)),
        (EXPIRES_AT, record.expires_at),
        (REVOKED_AT, record.revoked_at),
    ];
    for ([secs, nanos], time) in times {
        if let Some(time) = time {
            fields.push((secs, time.timestamp().to_string()));
            fields.push((nanos, time.timestamp_subsec_nanos().to_string()));
        }
    }
    fields
}

/// The field names of each time: seconds, nanoseconds.
const CREATED_AT: [&str; 2] = ["created_at_secs", "created_at_nanos"];
const EXPIRES_AT: [&str; 2] = ["expires_at_secs", "expires_at_nanos"];
const REVOKED_AT: [&str; 2] = ["revoked_at_secs", "revoked_at_nanos"];

/// A record from its hash fields; `None` for a missing (empty) hash.
fn record_from_fields(
    fields: Option<HashMap<String, String>>,
) -> Result<Option<Arc<KeyRecord>>, Error> {
    let Some(fields) = fields.filter(|fields| !fields.is_empty()) else {
        return Ok(None);
    };
    let mut stored = StoredFields(fields);
    let limits = Limits::new(
        stored.parsed("rate_limit_per_minute", "an integer in its range")?,
        stored.parsed("daily_limit", "an integer in its range")?,
    )
    .map_err(|err| {
        let field = match &err {
            lumyx_ratelimit::Error::OutOfRange { field, .. } => *field,
            _ => "rate_limit_per_minute",
        };
        corrupt(field, "an integer in its range", Some(Box::new(err)))
    })?;
    let record = KeyRecord {
        id: stored.parsed("id", "a key id")?,
        digest: stored.parsed("digest", "a key digest")?,
        hint: stored.parsed("hint", "a key hint")?,
        name: stored.text("name", "text")?,
        owner: stored.text("owner", "text")?,
        created_at: stored
            .time(CREATED_AT)?
            .ok_or_else(|| corrupt(CREATED_AT[0], SECONDS, None))?,
        expires_at: stored.time(EXPIRES_AT)?,
        revoked_at: stored.time(REVOKED_AT)?,
        limits,
        scopes: stored.scopes()?,
    };
    record
        .check_consistent()
        .map_err(|err| corrupt("id", "the id of the stored digest", Some(Box::new(err))))?;
    Ok(Some(Arc::new(record)))
}

/// The hash fields of a stored record, taken one by one as the record is
/// rebuilt. Each failure names its field.
struct StoredFields(HashMap<String, String>);

impl StoredFields {
    /// The text of `field`.
    fn text(&mut self, field: &'static str, expected: &'static str) -> Result<String, Error> {
        self.0
            .remove(field)
            .ok_or_else(|| corrupt(field, expected, None))
    }

    /// The text of `field`, parsed; the parser's error is the cause.
    fn parsed<T>(&mut self, field: &'static str, expected: &'static str) -> Result<T, Error>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.text(field, expected)?
            .parse()
            .map_err(|err| corrupt(field, expected, Some(Box::new(err))))
    }

    /// A time from its two fields, `None` when neither is stored.
    fn time(&mut self, [secs, nanos]: [&'static str; 2]) -> Result<Option<DateTime<Utc>>, Error> {
        if !self.0.contains_key(secs) && !self.0.contains_key(nanos) {
            return Ok(None);
        }
        let seconds: i64 = self.parsed(secs, SECONDS)?;
        let nanoseconds: u32 = self.parsed(nanos, NANOS)?;
        stored_time([secs, nanos], seconds, i64::from(nanoseconds)).map(Some)
    }

    /// The scopes, stored as their names joined by commas.
    fn scopes(&mut self) -> Result<Scopes, Error> {
        stored_scopes(&self.text("scopes", SCOPES)?)
    }
}
