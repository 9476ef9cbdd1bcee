//! Conversations in Redis, shared by every server instance: on one Redis
//! server, or on a Redis Cluster with the same keys and the same steps.
//!
//! Layout, under a namespace (default `lumyx:conv`); `<id>` is a
//! conversation id, and `<owner>` the SHA-256 digest (hex) of an owner, so
//! an owner of any characters makes a well-formed key:
//! - `<ns>:c:{<id>}`: a hash per conversation: `owner` (the digest),
//!   `created_at` (Unix seconds), `metadata` (JSON, `null` when there is
//!   none), `sort_key` (its member in the owner's sorted set) and `bytes`
//!   (the bytes of content of its messages, which the caps count; a
//!   conversation written before it was kept counts as 0);
//! - `<ns>:m:{<id>}`: a list of its messages, oldest first, each the JSON of
//!   a [`ConversationMessage`];
//! - `<ns>:i:{<id>}`: a hash from each message id to its place in that list,
//!   to find the message an `after` names;
//! - `<ns>:o:<owner>`: a sorted set of the owner's conversations, scored by
//!   `created_at`, each member the creation sequence number (20 digits, so
//!   that text order is number order) and `:<id>`; Redis orders members of
//!   equal scores by their bytes, so a rank is the place in the order of
//!   (creation time, creation sequence);
//! - `<ns>:seq`: the creation sequence, counted by `INCR`.
//!
//! # Slots
//!
//! A Redis Cluster keeps each key in the slot of its name, or of the part
//! of its name in braces (its hash tag). The keys of one conversation share
//! the hash tag `{<id>}`, so they sit in one slot and conversations spread
//! over every master; an owner's set is one key, the only one all of an
//! owner's conversations share; the counter is one key, which only `INCR`
//! touches. No script or pipeline of the store touches two slots, and every
//! script names every key it touches in `KEYS`, so the same calls run on
//! one server and on a cluster.
//!
//! A call on one conversation (get, update, append, its messages, its
//! history) is one script on its keys (a get is one `HMGET`) that checks
//! the owner in the same step as it reads or writes: a write is atomic, and
//! another owner's call changes nothing and learns nothing. The other calls
//! take steps, each on one slot:
//! - create: `INCR` the counter for the sequence number; `ZADD` the member
//!   (sequence and id) to the owner's set; then a script writes the
//!   conversation's keys, with its member in `sort_key`, unless its id is
//!   taken (96 random bits: then the member is removed again and a new id
//!   tried);
//! - delete: a script checks the owner, deletes the conversation's keys
//!   and answers its member; then `ZREM` removes the member from the
//!   owner's set;
//! - list: the `after` conversation is read (it must be the owner's); a
//!   script on the owner's set answers the members that follow it (or the
//!   first ones), one more than the page; then every conversation they name
//!   is read at once, one `HMGET` each. A member is *live* when its
//!   conversation names it (the same owner and the same `sort_key`); the
//!   others *dangle*, and are skipped: the set is read on after the last
//!   member read until the page and the one after it are found or the set
//!   ends, so pages and `has_more` are what they would be without them.
//!
//! # Failure windows
//!
//! A step that fails ends the call with an error, and the steps before it
//! stay done. The steps are ordered so that what a failure leaves is at
//! worst a dangling member in the caller's own set:
//! - create, after the `INCR`: a sequence number is skipped, which orders
//!   nothing wrong. After the `ZADD`, before the script: a dangling member;
//!   the conversation does not exist and its id was never answered. After
//!   the script, its reply lost: the conversation exists, is the caller's,
//!   is listed and found by its id; the caller saw an error, as for any
//!   write whose reply is lost. Should a taken id's member fail to be
//!   removed, it names a conversation of another owner or another member,
//!   and dangles.
//! - delete: the conversation goes first, so it is gone by its id for
//!   every call at once. If the `ZREM` fails, or the script ran twice on a
//!   cluster and its first reply was lost (the call then answers `false`),
//!   the member dangles.
//! - A cluster client sends a call again when its connection dropped, so
//!   a step may run twice. `INCR` then skips a number, `ZADD` and `ZREM`
//!   change nothing more; the create script answers "created" when the
//!   conversation it finds is its own (the same owner and member), so that
//!   this is not taken for a taken id; the append script finds its first
//!   message's id already in the index and writes nothing again.
//! - No failure shows another owner anything: every read checks the owner
//!   in the conversation's own hash, and the set only says where to look.
//!
//! A list removes the dangling members it read whose conversation exists
//! and names something else (a conversation's owner and member are written
//! once, by the script that creates it), and those whose conversation does
//! not exist once their score is more than an hour old: a younger one may
//! be a create between its `ZADD` and its script, which lists must not
//! lose. A create whose script ran more than an hour after the call began
//! (long after the call failed) would stay unlisted; no call waits that
//! long. A removal that fails is left to the next list.
//!
//! Data written before these steps (when a script did all of a create, a
//! delete or a list, on one server) has the same keys and fields, and is
//! read as it is.
//!
//! # Caps, errors and round trips
//!
//! The caps ([`MAX_MESSAGES_PER_CONVERSATION`], [`MAX_CONVERSATION_BYTES`])
//! are checked by the script that writes, against the list's length and
//! `bytes`, before it writes anything; a create checks them before its
//! first step too, so that a refused create writes nothing at all. A
//! history reads only the messages it answers (`LRANGE` of the list's
//! tail).
//!
//! An error for data the store cannot read says what is wrong and where (the
//! field, the conversation, the message's place, the length) but never the
//! stored text, which is the clients' and may be large or secret.
//!
//! Nothing is cached. A call on one conversation is one round trip, a
//! create three, a delete two, a list two or more (one more for `after`,
//! one to remove dangling members; the conversations of a page are read
//! together); all the steps of one call share its timeout.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::try_join_all;
use lumyx_api_types::{
    Conversation, ConversationMessage, ListOrder, ListPage, ListParams, Metadata, Role,
};
use lumyx_redis::{
    FailureClass, RedisConnection, RedisConnector, RedisFailure, RedisUrl, Report, retry_if_refused,
};

use redis::{Cmd, FromRedisValue, RedisResult, Script, ScriptInvocation};
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, StoreError,
    content_bytes, full, is_conversation_id, json_failure, new_conversation_id, new_messages, now,
};

/// How old (by its score, the `created_at` of its create) a member of an
/// owner's set must be before a list removes it for naming a conversation
/// that does not exist: far longer than a call may take (a younger member
/// may be a create between its steps) and than the clocks of two instances
/// may differ.
const DANGLING_GRACE_SECS: i64 = 3600;

/// Lua functions that the scripts which add messages share.
///
/// `too_much` tells whether a conversation of `stored` messages and
/// `stored_bytes` bytes of content would pass the caps with the messages of
/// `argv`, from `argv[from]` on, of `argv[bytes]` bytes: the caps are
/// `argv[bytes + 1]` messages and `argv[bytes + 2]` bytes.
///
/// `append_messages` pushes (message id, message JSON) pairs of `argv`,
/// from `argv[from]` on, onto a conversation's list, and records each id's
/// place in its index.
const APPEND_MESSAGES: &str = r"
local function too_much(stored, stored_bytes, argv, bytes, from)
  local count = (#argv - from + 1) / 2
  return stored + count > tonumber(argv[bytes + 1])
    or stored_bytes + tonumber(argv[bytes]) > tonumber(argv[bytes + 2])
end
local function append_messages(messages, index, argv, from)
  local place = redis.call('LLEN', messages)
  for i = from, #argv, 2 do
    redis.call('HSET', index, argv[i], place)
    redis.call('RPUSH', messages, argv[i + 1])
    place = place + 1
  end
end
";

/// Writes a conversation unless its id is taken or its messages pass the
/// caps; answers 1, 0 when the id is taken, or -1 when they pass the caps
/// (nothing is written). A conversation of the same owner and member is
/// this create sent again (a cluster client resends a call whose reply was
/// lost): it answers 1 and writes nothing. KEYS: conversation, messages,
/// message index. ARGV: owner digest, created_at, metadata JSON, member in
/// the owner's set, bytes of the messages' content, most messages, most
/// bytes, then message id and message JSON pairs.
const CREATE: &str = r"
if too_much(0, 0, ARGV, 5, 8) then return -1 end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local stored = redis.call('HMGET', KEYS[1], 'owner', 'sort_key')
  if stored[1] == ARGV[1] and stored[2] == ARGV[4] then return 1 end
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'created_at', ARGV[2],
  'metadata', ARGV[3], 'sort_key', ARGV[4], 'bytes', ARGV[5])
append_messages(KEYS[2], KEYS[3], ARGV, 8)
return 1";

/// Replaces the metadata of the owner's conversation; answers its
/// created_at, or nil when there is no such conversation. KEYS:
/// conversation. ARGV: owner digest, metadata JSON.
const UPDATE: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'metadata', ARGV[2])
return redis.call('HGET', KEYS[1], 'created_at')";

/// Deletes the owner's conversation; answers its member in the owner's set
/// (empty when it has none), or nil when there is no such conversation.
/// KEYS: conversation, messages, message index. ARGV: owner digest.
const DELETE: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
local sort_key = redis.call('HGET', KEYS[1], 'sort_key') or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return sort_key";

/// Adds messages to the owner's conversation; answers 1, 0 when there is no
/// such conversation, -1 when they would pass the caps, or -2 when its
/// `bytes` is not a count (in the last two cases nothing is written). When
/// the first message's id is already in the index, this append was sent
/// again (a cluster client resends a call whose reply was lost; ids are 96
/// random bits): it answers 1 and writes nothing. The count is raised
/// before the messages are pushed, so that a failure leaves no message
/// without its bytes counted. KEYS: conversation, messages, message index.
/// ARGV: owner digest, bytes of the messages' content, most messages, most
/// bytes, then message id and message JSON pairs.
const APPEND: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
if ARGV[5] and redis.call('HEXISTS', KEYS[3], ARGV[5]) == 1 then return 1 end
local stored_bytes = redis.call('HGET', KEYS[1], 'bytes') or '0'
if not string.match(stored_bytes, '^%d+$') then return -2 end
if too_much(redis.call('LLEN', KEYS[2]), tonumber(stored_bytes), ARGV, 2, 5) then
  return -1
end
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[2])
append_messages(KEYS[2], KEYS[3], ARGV, 5)
return 1";

/// Members of an owner's set in the order asked for, each followed by its
/// score: `{'page', member, score, ...}`, or `{'unknown_cursor'}`. They
/// start at the set's first member, or right after an anchor: a member and
/// its score. An anchor without a score is a list's cursor, which must be
/// in the set; one with a score need not be (a list reads on after the
/// last member it read, which may have gone since): it is placed where it
/// would be. KEYS: owner's set. ARGV: order (`asc` or `desc`), most
/// members, then the anchor's member and its score (empty for a cursor),
/// if any.
const OWNER_PAGE: &str = r"
-- Whether member a comes before member b of the same score: Redis orders
-- them by their bytes, which Lua's `<` (by the locale) may not.
local function precedes(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local asc = ARGV[1] == 'asc'
local count = tonumber(ARGV[2])
if count < 1 then return {'page'} end
local start = 0
if ARGV[3] then
  local rank = redis.call('ZRANK', KEYS[1], ARGV[3])
  local present = rank ~= false
  if not present then
    if ARGV[4] == '' then return {'unknown_cursor'} end
    -- How many members would come before the anchor.
    rank = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[4])
    for _, tie in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4], ARGV[4])) do
      if precedes(tie, ARGV[3]) then rank = rank + 1 end
    end
  end
  if not asc then
    start = redis.call('ZCARD', KEYS[1]) - rank
  elseif present then
    start = rank + 1
  else
    start = rank
  end
end
local members
if asc then
  members = redis.call('ZRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
else
  members = redis.call('ZREVRANGE', KEYS[1], start, start + count - 1, 'WITHSCORES')
end
table.insert(members, 1, 'page')
return members";
/// A page of the messages of the owner's conversation: nil when there is no
/// such conversation, `{'unknown_cursor'}`, or `{'page', has_more ('1' or
/// '0'), then each message's JSON}`. KEYS: conversation, messages, message
/// index. ARGV: owner digest, order (`asc` or `desc`), limit, then the
/// message id `after` names, if any.
const MESSAGES: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
local asc = ARGV[2] == 'asc'
local limit = tonumber(ARGV[3])
local len = redis.call('LLEN', KEYS[2])
-- The place in the list of the page's first message.
local first
if ARGV[4] then
  local after = redis.call('HGET', KEYS[3], ARGV[4])
  if not after then return {'unknown_cursor'} end
  if asc then first = tonumber(after) + 1 else first = tonumber(after) - 1 end
else
  if asc then first = 0 else first = len - 1 end
end
local page = {'page'}
if asc then
  page[2] = first + limit < len and '1' or '0'
  if limit > 0 and first < len then
    for _, message in ipairs(redis.call('LRANGE', KEYS[2], first, first + limit - 1)) do
      page[#page + 1] = message
    end
  end
else
  local low = first - limit + 1
  page[2] = low > 0 and '1' or '0'
  if limit > 0 and first >= 0 then
    local messages = redis.call('LRANGE', KEYS[2], math.max(low, 0), first)
    for i = #messages, 1, -1 do
      page[#page + 1] = messages[i]
    end
  end
end
return page";

/// The most recent messages of the owner's conversation, at most `last`,
/// oldest first, or nil when there is no such conversation. KEYS:
/// conversation, messages. ARGV: owner digest, last.
const HISTORY: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
local last = math.min(tonumber(ARGV[2]), redis.call('LLEN', KEYS[2]))
if last <= 0 then return {} end
return redis.call('LRANGE', KEYS[2], -last, -1)";

/// A reply item: the bytes of a string, `None` for nil.
type Field = Option<Vec<u8>>;

/// Configures a [`RedisConversations`]; made by
/// [`RedisConversations::builder`].
///
/// `Debug` shows the URL with its password replaced by `***`.
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `connect` is called"]
pub struct RedisConversationsBuilder {
    connector: RedisConnector,
    namespace: String,
}

impl RedisConversationsBuilder {
    /// The longest one call may take, connecting and every step included,
    /// before it fails with [`StoreError::Unavailable`], so that an outage
    /// answers promptly instead of hanging a request. Default:
    /// [`RedisConversations::DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.connector = self.connector.timeout(timeout);
        self
    }

    /// The prefix of every Redis key of the store. Default:
    /// [`RedisConversations::DEFAULT_NAMESPACE`]. Stores under different
    /// namespaces on one server or cluster are separate.
    pub fn namespace(mut self, namespace: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        self
    }

    /// Builds the store. Must run inside a Tokio runtime. It does not
    /// contact Redis: the connection is made by the first call and remade
    /// after every failure, so a server starts while Redis is down and its
    /// calls answer [`StoreError::Unavailable`] until Redis is back.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the Redis client refuses the URL's
    /// settings.
    pub async fn connect(self) -> Result<RedisConversations, StoreError> {
        let connection = self
            .connector
            .connect_lazy()
            .map_err(|err| StoreError::Unavailable(Box::new(RedisFailure::from(err))))?;
        let namespace = self.namespace;
        Ok(RedisConversations {
            connection,
            timeout: self.connector.timeout_value(),
            connector: self.connector,
            counter_key: format!("{namespace}:seq"),
            conversation_key_prefix: format!("{namespace}:c:"),
            namespace,
            scripts: Arc::new(Scripts {
                create: Script::new(&[APPEND_MESSAGES, CREATE].concat()),
                update: Script::new(UPDATE),
                delete: Script::new(DELETE),
                append: Script::new(&[APPEND_MESSAGES, APPEND].concat()),
                owner_page: Script::new(OWNER_PAGE),
                messages: Script::new(MESSAGES),
                history: Script::new(HISTORY),
            }),
        })
    }
}

/// The store's scripts; see each one's text for its keys and arguments.
#[derive(Debug)]
struct Scripts {
    create: Script,
    update: Script,
    delete: Script,
    append: Script,
    owner_page: Script,
    messages: Script,
    history: Script,
}

/// Conversations in Redis, shared by every instance, on one server or a
/// Redis Cluster (a URL that lists its nodes). A call on one conversation
/// is one script that checks the owner in the same step as it reads or
/// writes, so writes are atomic and another owner's call changes nothing;
/// a create, a delete and a list take a few steps, ordered so that a
/// failure between them shows no one anything it should not (see the
/// module's notes on failure windows).
///
/// Built with [`RedisConversations::builder`]. The connection is made by
/// the first call, not by `connect`. To one server, a call is sent again
/// only when the connection was refused (so nothing was sent); any other
/// failure (a dropped connection, a timeout) is an error, since Redis may
/// have run a write whose reply was lost. A cluster client also resends a
/// call after a redirection or a dropped connection; a create or an append
/// sent again writes nothing twice. Cloning is cheap: clones share one
/// multiplexed, self-reconnecting connection.
///
/// `Debug` shows the URL with its password replaced by `***`.
///
/// ```no_run
/// use std::time::Duration;
/// use lumyx_server::{ConversationStore, RedisConversations};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisConversations::builder("redis://127.0.0.1:6379/".parse()?)
///     .timeout(Duration::from_millis(500))
///     .namespace("lumyx:conv")
///     .connect()
///     .await?;
/// let conversation = store.create("acct_1", None, Vec::new()).await?;
/// assert!(store.get("acct_1", &conversation.id).await?.is_some());
///
/// // A Redis Cluster: every node's URL, joined by commas.
/// let shared = RedisConversations::builder(
///     "redis://10.0.0.1:6379/,redis://10.0.0.2:6379/,redis://10.0.0.3:6379/".parse()?,
/// )
/// .connect()
/// .await?;
/// # let _ = shared;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisConversations {
    connection: RedisConnection,
    connector: RedisConnector,
    timeout: Duration,
    namespace: String,
    counter_key: String,
    conversation_key_prefix: String,
    scripts: Arc<Scripts>,
}

impl fmt::Debug for RedisConversations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConversations")
            .field("url", self.connector.url())
            .field("timeout", &self.timeout)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A member of an owner's set and its score, as the set answered them.
#[derive(Debug, Clone)]
struct Member {
    text: Vec<u8>,
    score: Vec<u8>,
}

/// Where a read of an owner's set starts.
#[derive(Debug)]
enum Anchor {
    /// At the first member in the order asked for.
    Start,
    /// After this member of a list's cursor, which must be in the set.
    Cursor(Vec<u8>),
    /// After this member, which may have gone since it was read.
    After(Member),
}

/// What a member of an owner's set names.
#[derive(Debug)]
enum Listed {
    /// The owner's conversation, which names the member.
    Live(Conversation),
    /// Nothing: the member dangles. `removable` when a list may remove it.
    Dangling { removable: bool },
}

impl RedisConversations {
    /// The default of [`RedisConversationsBuilder::namespace`].
    pub const DEFAULT_NAMESPACE: &'static str = "lumyx:conv";

    /// The default of [`RedisConversationsBuilder::timeout`]: 1 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// A builder of a store on the Redis server at `url` (or the Redis
    /// Cluster of the nodes it lists), with the defaults.
    pub fn builder(url: RedisUrl) -> RedisConversationsBuilder {
        RedisConversationsBuilder {
            connector: RedisConnector::new(url).timeout(RedisConversations::DEFAULT_TIMEOUT),
            namespace: RedisConversations::DEFAULT_NAMESPACE.to_owned(),
        }
    }

    fn conversation_key(&self, id: &str) -> String {
        format!("{}{{{id}}}", self.conversation_key_prefix)
    }

    fn messages_key(&self, id: &str) -> String {
        format!("{}:m:{{{id}}}", self.namespace)
    }

    fn message_index_key(&self, id: &str) -> String {
        format!("{}:i:{{{id}}}", self.namespace)
    }

    /// The key of the set of the owner whose digest is `digest`.
    fn owner_key(&self, digest: &str) -> String {
        format!("{}:o:{digest}", self.namespace)
    }

    /// When a call that starts now must be done: all its steps share the
    /// timeout.
    fn deadline(&self) -> Instant {
        Instant::now() + self.timeout
    }

    /// Runs `call` on the shared connection, once more only when the
    /// connection was refused, all before `deadline`.
    async fn send<T, F, Fut>(&self, deadline: Instant, call: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = retry_if_refused(|| call(self.connection.clone()));
        match tokio::time::timeout_at(deadline, attempts).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(err)) => Err(failed(RedisFailure::from(err))),
            Err(_) => Err(failed(RedisFailure::timed_out(self.timeout))),
        }
    }

    /// Runs a command (see [`RedisConversations::send`]).
    async fn query<T: FromRedisValue>(
        &self,
        deadline: Instant,
        command: &Cmd,
    ) -> Result<T, StoreError> {
        self.send(deadline, |mut connection| async move {
            command.query_async(&mut connection).await
        })
        .await
    }

    /// Runs a script (see [`RedisConversations::send`]).
    async fn invoke<T: FromRedisValue>(
        &self,
        deadline: Instant,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.send(deadline, |mut connection| async move {
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Removes `members` from the owner's set `owner_key`, as well as it
    /// can: a member left behind dangles, which lists skip and remove
    /// later, so its failure does not fail a call whose outcome is settled.
    async fn forget(&self, deadline: Instant, owner_key: &str, members: &[Vec<u8>]) {
        if members.is_empty() {
            return;
        }
        let removed: Result<(), StoreError> = self
            .query(deadline, redis::cmd("ZREM").arg(owner_key).arg(members))
            .await;
        if let Err(err) = removed {
            tracing::debug!(
                count = members.len(),
                "members of an owner's conversation set were left dangling: {}",
                Report(&err)
            );
        }
    }

    /// The member of the conversation `after` names, as a list's cursor:
    /// [`StoreError::UnknownCursor`] unless it is the conversation of the
    /// owner whose digest is `digest`.
    async fn cursor(
        &self,
        deadline: Instant,
        digest: &str,
        after: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let fields: Vec<Field> = self
            .query(
                deadline,
                redis::cmd("HMGET")
                    .arg(self.conversation_key(after))
                    .arg("owner")
                    .arg("sort_key"),
            )
            .await?;
        let [stored_owner, sort_key]: [Field; 2] = fields
            .try_into()
            .map_err(|_| StoreError::Corrupt("HMGET answered other than 2 fields".to_owned()))?;
        if stored_owner.as_deref() != Some(digest.as_bytes()) {
            return Err(StoreError::UnknownCursor);
        }
        sort_key.ok_or(StoreError::UnknownCursor)
    }

    /// At most `count` members of the owner's set `owner_key`, in `order`,
    /// after `anchor`.
    async fn owner_page(
        &self,
        deadline: Instant,
        owner_key: &str,
        order: &str,
        count: usize,
        anchor: &Anchor,
    ) -> Result<Vec<Member>, StoreError> {
        let mut invocation = self.scripts.owner_page.prepare_invoke();
        invocation.key(owner_key).arg(order).arg(count);
        match anchor {
            Anchor::Start => {}
            Anchor::Cursor(member) => {
                invocation.arg(member).arg("");
            }
            Anchor::After(member) => {
                invocation.arg(&member.text).arg(&member.score);
            }
        }
        let reply: Vec<Field> = self.invoke(deadline, &invocation).await?;
        let mut items = tagged_reply(reply)?;
        let mut members = Vec::with_capacity(items.len() / 2);
        while let Some(text) = items.next() {
            match (text, items.next().flatten()) {
                (Some(text), Some(score)) => members.push(Member { text, score }),
                _ => {
                    return Err(StoreError::Corrupt(
                        "the owner's set answered a member without its score".to_owned(),
                    ));
                }
            }
        }
        Ok(members)
    }

    /// What `member`, of the set of the owner whose digest is `digest`,
    /// names, read at `now` (Unix seconds).
    async fn read_listed(
        &self,
        deadline: Instant,
        digest: &str,
        member: &Member,
        now: i64,
    ) -> Result<Listed, StoreError> {
        let id = member_id(&member.text)?;
        let fields: Vec<Field> = self
            .query(
                deadline,
                redis::cmd("HMGET")
                    .arg(self.conversation_key(id))
                    .arg("owner")
                    .arg("created_at")
                    .arg("metadata")
                    .arg("sort_key"),
            )
            .await?;
        let [stored_owner, created_at, metadata, sort_key]: [Field; 4] = fields
            .try_into()
            .map_err(|_| StoreError::Corrupt("HMGET answered other than 4 fields".to_owned()))?;
        if stored_owner.as_deref() == Some(digest.as_bytes())
            && sort_key.as_deref() == Some(member.text.as_slice())
        {
            return Ok(Listed::Live(Conversation::new(
                id,
                parse_created_at(created_at, id)?,
                parse_metadata(metadata, id)?,
            )));
        }
        // A conversation's owner and member are written once, by the script
        // that creates it: one that names something else never comes to
        // name this member. One that does not exist may yet be written by a
        // create between its steps, until the grace has passed.
        let exists = [&stored_owner, &created_at, &metadata, &sort_key]
            .iter()
            .any(|field| field.is_some());
        let old = std::str::from_utf8(&member.score)
            .ok()
            .and_then(|score| score.parse::<i64>().ok())
            .is_some_and(|score| score < now.saturating_sub(DANGLING_GRACE_SECS));
        Ok(Listed::Dangling {
            removable: exists || old,
        })
    }
}
/// What a failed call tells the caller: Redis cannot answer now, or what
/// it holds cannot be used (`WRONGTYPE` on a key of the store, say).
fn failed(failure: RedisFailure) -> StoreError {
    match failure.class() {
        FailureClass::Data => StoreError::Corrupt(Report(&failure).to_string()),
        FailureClass::Unreachable | FailureClass::Unavailable => {
            StoreError::Unavailable(Box::new(failure))
        }
    }
}

/// The SHA-256 digest of `owner`, in hex: what the store keeps and names
/// keys with instead of the owner.
fn owner_digest(owner: &str) -> String {
    hex::encode(Sha256::digest(owner.as_bytes()))
}

/// The text of the `order` Redis is asked for; anything but `asc` (which
/// validation has refused) is the default, `desc`.
fn order_arg(page: &ListParams) -> &'static str {
    match page.order {
        Some(ListOrder::Asc) => "asc",
        _ => "desc",
    }
}

/// Each message's id and JSON, as `append_messages` reads them; made
/// before a call's first step, so that a message that does not serialize
/// fails the call before it writes anything.
fn message_args(messages: &[ConversationMessage]) -> Result<Vec<(&str, String)>, StoreError> {
    messages
        .iter()
        .map(|message| {
            let json = serde_json::to_string(message).map_err(|err| {
                StoreError::Corrupt(format!("a message did not serialize: {err}"))
            })?;
            Ok((message.id.as_str(), json))
        })
        .collect()
}

/// Adds the [`message_args`] to `invocation`'s arguments.
fn add_messages(invocation: &mut ScriptInvocation<'_>, messages: &[(&str, String)]) {
    for (id, json) in messages {
        invocation.arg(*id).arg(json);
    }
}

/// Whether a new conversation of `messages` stays within the caps.
fn fits(messages: &[ConversationMessage]) -> bool {
    messages.len() <= MAX_MESSAGES_PER_CONVERSATION
        && content_bytes(messages) <= MAX_CONVERSATION_BYTES
}

/// The conversation id in a member of an owner's set: what follows the
/// 20 digits of the sequence number and the `:`.
fn member_id(member: &[u8]) -> Result<&str, StoreError> {
    let id = match member.split_at_checked(20) {
        Some((sequence, [b':', id @ ..])) if sequence.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(id).ok()
        }
        _ => None,
    };
    id.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "a member of an owner's conversation set is not a sequence number and a \
             conversation id ({} bytes)",
            member.len()
        ))
    })
}

fn metadata_json(metadata: Option<&Metadata>) -> Result<String, StoreError> {
    serde_json::to_string(&metadata)
        .map_err(|err| StoreError::Corrupt(format!("metadata did not serialize: {err}")))
}

/// The text of a stored field; `what` names it for the error, which tells
/// its length but not its bytes.
fn text(field: Field, what: &str) -> Result<String, StoreError> {
    let bytes = field.ok_or_else(|| StoreError::Corrupt(format!("{what} is missing")))?;
    String::from_utf8(bytes).map_err(|err| {
        StoreError::Corrupt(format!(
            "{what} is not UTF-8 ({} bytes)",
            err.as_bytes().len()
        ))
    })
}

/// The `created_at` of conversation `id`.
fn parse_created_at(field: Field, id: &str) -> Result<i64, StoreError> {
    let text = text(field, &format!("the created_at of conversation {id}"))?;
    text.parse().map_err(|_| {
        StoreError::Corrupt(format!(
            "the created_at of conversation {id} is not Unix seconds ({} bytes)",
            text.len()
        ))
    })
}

/// The metadata of conversation `id`.
fn parse_metadata(field: Field, id: &str) -> Result<Option<Metadata>, StoreError> {
    let text = text(field, &format!("the metadata of conversation {id}"))?;
    serde_json::from_str(&text).map_err(|err| {
        StoreError::Corrupt(format!(
            "the metadata of conversation {id} is not JSON of pairs of strings, or null \
             ({} bytes; {})",
            text.len(),
            json_failure(&err)
        ))
    })
}

/// The messages of conversation `id` that a script answered, in its order.
fn parse_messages(items: Vec<Field>, id: &str) -> Result<Vec<ConversationMessage>, StoreError> {
    let count = items.len();
    items
        .into_iter()
        .enumerate()
        .map(|(place, field)| {
            let bytes = field.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "message {place} of the {count} read from conversation {id} is missing"
                ))
            })?;
            serde_json::from_slice(&bytes).map_err(|err| {
                StoreError::Corrupt(format!(
                    "message {place} of the {count} read from conversation {id} is not a \
                     stored message as JSON ({} bytes; {})",
                    bytes.len(),
                    json_failure(&err)
                ))
            })
        })
        .collect()
}

/// The items of a tagged reply (`{'page', items...}`);
/// [`StoreError::UnknownCursor`] for `{'unknown_cursor'}`.
fn tagged_reply(reply: Vec<Field>) -> Result<std::vec::IntoIter<Field>, StoreError> {
    let mut reply = reply.into_iter();
    let tag = reply.next().flatten();
    match tag.as_deref() {
        Some(b"page") => Ok(reply),
        Some(b"unknown_cursor") => Err(StoreError::UnknownCursor),
        _ => Err(StoreError::Corrupt(
            "a list script answered neither a page nor an unknown cursor".to_owned(),
        )),
    }
}

/// The items of a page reply (`{'page', has_more, items...}`) and its
/// `has_more`; [`StoreError::UnknownCursor`] for `{'unknown_cursor'}`.
fn page_reply(reply: Vec<Field>) -> Result<(Vec<Field>, bool), StoreError> {
    let mut reply = tagged_reply(reply)?;
    let has_more = reply.next().flatten().as_deref() == Some(b"1");
    Ok((reply.collect(), has_more))
}

#[async_trait]
impl ConversationStore for RedisConversations {
    async fn create(
        &self,
        owner: &str,
        metadata: Option<Metadata>,
        messages: Vec<(Role, String)>,
    ) -> Result<Conversation, StoreError> {
        let deadline = self.deadline();
        let created_at = now();
        let messages = new_messages(created_at, messages);
        // The script checks the caps too; checked first, a refused create
        // writes nothing, not even a member of the owner's set.
        if !fits(&messages) {
            return Err(full());
        }
        let bytes = content_bytes(&messages);
        let message_args = message_args(&messages)?;
        let metadata_arg = metadata_json(metadata.as_ref())?;
        let digest = owner_digest(owner);
        let owner_key = self.owner_key(&digest);
        // 96 random bits do not collide in practice; a collision must
        // still not replace someone's conversation.
        loop {
            let id = new_conversation_id();
            let sequence: u64 = self
                .query(deadline, redis::cmd("INCR").arg(&self.counter_key))
                .await?;
            let sort_key = format!("{sequence:020}:{id}");
            // The member first: a failure before the conversation is
            // written leaves a member that dangles, never a conversation
            // that no list shows.
            let () = self
                .query(
                    deadline,
                    redis::cmd("ZADD")
                        .arg(&owner_key)
                        .arg(created_at)
                        .arg(&sort_key),
                )
                .await?;
            let mut invocation = self.scripts.create.prepare_invoke();
            invocation
                .key(self.conversation_key(&id))
                .key(self.messages_key(&id))
                .key(self.message_index_key(&id))
                .arg(&digest)
                .arg(created_at)
                .arg(&metadata_arg)
                .arg(&sort_key)
                .arg(bytes)
                .arg(MAX_MESSAGES_PER_CONVERSATION)
                .arg(MAX_CONVERSATION_BYTES);
            add_messages(&mut invocation, &message_args);
            let created: i64 = self.invoke(deadline, &invocation).await?;
            if created == 1 {
                return Ok(Conversation::new(id, created_at, metadata));
            }
            self.forget(deadline, &owner_key, &[sort_key.into_bytes()])
                .await;
            match created {
                0 => {}
                -1 => return Err(full()),
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "the create script answered {other}"
                    )));
                }
            }
        }
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        if !is_conversation_id(id) {
            return Ok(None);
        }
        let fields: Vec<Field> = self
            .query(
                self.deadline(),
                redis::cmd("HMGET")
                    .arg(self.conversation_key(id))
                    .arg("owner")
                    .arg("created_at")
                    .arg("metadata"),
            )
            .await?;
        let [stored_owner, created_at, metadata]: [Field; 3] = fields
            .try_into()
            .map_err(|_| StoreError::Corrupt("HMGET answered other than 3 fields".to_owned()))?;
        if stored_owner.as_deref() != Some(owner_digest(owner).as_bytes()) {
            return Ok(None);
        }
        Ok(Some(Conversation::new(
            id,
            parse_created_at(created_at, id)?,
            parse_metadata(metadata, id)?,
        )))
    }

    async fn update(
        &self,
        owner: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<Option<Conversation>, StoreError> {
        if !is_conversation_id(id) {
            return Ok(None);
        }
        let mut invocation = self.scripts.update.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .arg(owner_digest(owner))
            .arg(metadata_json(Some(&metadata))?);
        let created_at: Field = self.invoke(self.deadline(), &invocation).await?;
        if created_at.is_none() {
            return Ok(None);
        }
        Ok(Some(Conversation::new(
            id,
            parse_created_at(created_at, id)?,
            Some(metadata),
        )))
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        if !is_conversation_id(id) {
            return Ok(false);
        }
        let deadline = self.deadline();
        let digest = owner_digest(owner);
        // The conversation first: it is gone for every call at once, and a
        // failure before its member is removed leaves the member dangling.
        let mut invocation = self.scripts.delete.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .key(self.message_index_key(id))
            .arg(&digest);
        let sort_key: Field = self.invoke(deadline, &invocation).await?;
        let Some(sort_key) = sort_key else {
            return Ok(false);
        };
        if !sort_key.is_empty() {
            self.forget(deadline, &self.owner_key(&digest), &[sort_key])
                .await;
        }
        Ok(true)
    }

    async fn list(
        &self,
        owner: &str,
        page: &ListParams,
    ) -> Result<ListPage<Conversation>, StoreError> {
        let deadline = self.deadline();
        let digest = owner_digest(owner);
        let owner_key = self.owner_key(&digest);
        let order = order_arg(page);
        let limit = usize::try_from(page.limit_or_default()).unwrap_or(usize::MAX);
        // One more than the page, to tell whether items follow it.
        let wanted = limit.saturating_add(1);
        let mut anchor = match &page.after {
            Some(after) => Anchor::Cursor(self.cursor(deadline, &digest, after).await?),
            None => Anchor::Start,
        };
        let now = now();
        let mut conversations = Vec::new();
        let mut removable = Vec::new();
        loop {
            let count = wanted - conversations.len();
            let mut members = self
                .owner_page(deadline, &owner_key, order, count, &anchor)
                .await?;
            let listed = try_join_all(
                members
                    .iter()
                    .map(|member| self.read_listed(deadline, &digest, member, now)),
            )
            .await?;
            let set_ended = members.len() < count;
            for (member, listed) in members.iter().zip(listed) {
                match listed {
                    Listed::Live(conversation) => conversations.push(conversation),
                    Listed::Dangling { removable: true } => removable.push(member.text.clone()),
                    Listed::Dangling { removable: false } => {}
                }
            }
            // Dangling members were skipped: read on after the last one
            // read, until the page and the one after it are found.
            match members.pop() {
                Some(last) if !set_ended && conversations.len() < wanted => {
                    anchor = Anchor::After(last);
                }
                _ => break,
            }
        }
        self.forget(deadline, &owner_key, &removable).await;
        let has_more = conversations.len() > limit;
        conversations.truncate(limit);
        Ok(ListPage::new(conversations, has_more, |conversation| {
            &conversation.id
        }))
    }

    async fn append(
        &self,
        owner: &str,
        id: &str,
        messages: Vec<(Role, String)>,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        if !is_conversation_id(id) {
            return Ok(None);
        }
        let messages = new_messages(now(), messages);
        let message_args = message_args(&messages)?;
        let mut invocation = self.scripts.append.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .key(self.message_index_key(id))
            .arg(owner_digest(owner))
            .arg(content_bytes(&messages))
            .arg(MAX_MESSAGES_PER_CONVERSATION)
            .arg(MAX_CONVERSATION_BYTES);
        add_messages(&mut invocation, &message_args);
        let appended: i64 = self.invoke(self.deadline(), &invocation).await?;
        match appended {
            1 => Ok(Some(messages)),
            0 => Ok(None),
            -1 => Err(full()),
            -2 => Err(StoreError::Corrupt(format!(
                "the bytes of conversation {id} is not a count"
            ))),
            other => Err(StoreError::Corrupt(format!(
                "the append script answered {other}"
            ))),
        }
    }

    async fn messages(
        &self,
        owner: &str,
        id: &str,
        page: &ListParams,
    ) -> Result<Option<ListPage<ConversationMessage>>, StoreError> {
        if !is_conversation_id(id) {
            return Ok(None);
        }
        let mut invocation = self.scripts.messages.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .key(self.message_index_key(id))
            .arg(owner_digest(owner))
            .arg(order_arg(page))
            .arg(page.limit_or_default());
        if let Some(after) = &page.after {
            invocation.arg(after);
        }
        let reply: Option<Vec<Field>> = self.invoke(self.deadline(), &invocation).await?;
        let Some(reply) = reply else {
            return Ok(None);
        };
        let (items, has_more) = page_reply(reply)?;
        let messages = parse_messages(items, id)?;
        Ok(Some(ListPage::new(messages, has_more, |message| {
            &message.id
        })))
    }

    async fn history(
        &self,
        owner: &str,
        id: &str,
        last: usize,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        if !is_conversation_id(id) {
            return Ok(None);
        }
        let mut invocation = self.scripts.history.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .arg(owner_digest(owner))
            .arg(last);
        let reply: Option<Vec<Field>> = self.invoke(self.deadline(), &invocation).await?;
        reply
            .map(|messages| parse_messages(messages, id))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use lumyx_test_support::RedisServer;

    use super::*;

    async fn store(server: &RedisServer) -> RedisConversations {
        RedisConversations::builder(server.url().parse().unwrap())
            .namespace("unit")
            .connect()
            .await
            .unwrap()
    }

    async fn query<T: FromRedisValue>(store: &RedisConversations, command: &Cmd) -> T {
        command
            .query_async(&mut store.connection.clone())
            .await
            .unwrap()
    }

    /// The members of `owner_key` that a page of `count` in `order` after
    /// `anchor` answers, as text.
    async fn members(
        store: &RedisConversations,
        order: &str,
        count: usize,
        anchor: &Anchor,
    ) -> Result<Vec<String>, StoreError> {
        let page = store
            .owner_page(store.deadline(), "unit:o:x", order, count, anchor)
            .await?;
        Ok(page
            .into_iter()
            .map(|member| String::from_utf8(member.text).unwrap())
            .collect())
    }

    fn after(text: &str, score: &str) -> Anchor {
        Anchor::After(Member {
            text: text.as_bytes().to_vec(),
            score: score.as_bytes().to_vec(),
        })
    }

    #[test]
    fn a_member_names_its_conversation() {
        assert_eq!(
            member_id(b"00000000000000000042:conv_0123456789abcdef01234567").unwrap(),
            "conv_0123456789abcdef01234567"
        );
        for broken in [
            &b"0000000000000000042:conv_1"[..],
            b"0000000000000000004x:conv_1",
            b"00000000000000000042-conv_1",
            b"00000000000000000042",
            b"00000000000000000042:\xff",
        ] {
            let err = member_id(broken).unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt(text) if text.contains(&format!("({} bytes)", broken.len()))),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_page_of_an_owner_set_starts_after_its_anchor_there_or_gone() {
        let Some(server) = RedisServer::start_or_skip("owner_page_anchor") else {
            return;
        };
        let store = store(&server).await;
        // By score, then by bytes: (5, x), (10, B), (10, a), (10, c), (20, y).
        let () = query(
            &store,
            redis::cmd("ZADD").arg("unit:o:x").arg(&[
                (10, "c"),
                (10, "a"),
                (10, "B"),
                (5, "x"),
                (20, "y"),
            ]),
        )
        .await;
        let all = ["x", "B", "a", "c", "y"];
        let reversed: Vec<&str> = all.iter().rev().copied().collect();
        assert_eq!(
            members(&store, "asc", 10, &Anchor::Start).await.unwrap(),
            all
        );
        assert_eq!(
            members(&store, "desc", 10, &Anchor::Start).await.unwrap(),
            reversed
        );
        assert_eq!(
            members(&store, "asc", 2, &Anchor::Start).await.unwrap(),
            ["x", "B"]
        );
        assert_eq!(
            members(&store, "desc", 2, &Anchor::Start).await.unwrap(),
            ["y", "c"]
        );

        // A cursor must be in the set.
        let cursor = |text: &str| Anchor::Cursor(text.as_bytes().to_vec());
        assert_eq!(
            members(&store, "asc", 10, &cursor("a")).await.unwrap(),
            ["c", "y"]
        );
        assert_eq!(
            members(&store, "desc", 10, &cursor("a")).await.unwrap(),
            ["B", "x"]
        );
        assert_eq!(
            members(&store, "desc", 1, &cursor("y")).await.unwrap(),
            ["c"]
        );
        assert_eq!(
            members(&store, "asc", 3, &cursor("y")).await.unwrap(),
            [""; 0]
        );
        assert!(matches!(
            members(&store, "asc", 10, &cursor("b")).await,
            Err(StoreError::UnknownCursor)
        ));

        // A member read before goes on where it was, whether it is still
        // there or not; among equal scores by bytes ("B" < "Z" < "a").
        for (anchor, asc, desc) in [
            (after("a", "10"), &["c", "y"][..], &["B", "x"][..]),
            (after("Z", "10"), &["a", "c", "y"], &["B", "x"]),
            (after("b", "10"), &["c", "y"], &["a", "B", "x"]),
            (after("A", "10"), &["B", "a", "c", "y"], &["x"]),
            (after("d", "10"), &["y"], &["c", "a", "B", "x"]),
            (after("m", "7"), &["B", "a", "c", "y"], &["x"]),
            (after("0", "30"), &[], &reversed),
            (after("0", "1"), &all, &[]),
        ] {
            assert_eq!(
                members(&store, "asc", 10, &anchor).await.unwrap(),
                asc,
                "asc after {anchor:?}"
            );
            assert_eq!(
                members(&store, "desc", 10, &anchor).await.unwrap(),
                desc,
                "desc after {anchor:?}"
            );
        }
        assert_eq!(
            members(&store, "asc", 1, &after("Z", "10")).await.unwrap(),
            ["a"]
        );
    }

    #[tokio::test]
    async fn a_create_or_an_append_sent_again_writes_nothing_twice() {
        let Some(server) = RedisServer::start_or_skip("resent_scripts") else {
            return;
        };
        let store = store(&server).await;
        let digest = owner_digest("acct_1");
        let id = "conv_0123456789abcdef01234567";
        let sort_key = format!("{:020}:{id}", 7);
        let first = new_messages(100, vec![(Role::User, "Hello".to_owned())]);
        let first_args = message_args(&first).unwrap();
        // As `create` sends it, with `sort_key` as the member.
        let create = |owner: &str, sort_key: &str| {
            let mut invocation = store.scripts.create.prepare_invoke();
            invocation
                .key(store.conversation_key(id))
                .key(store.messages_key(id))
                .key(store.message_index_key(id))
                .arg(owner)
                .arg(100)
                .arg("null")
                .arg(sort_key)
                .arg(content_bytes(&first))
                .arg(MAX_MESSAGES_PER_CONVERSATION)
                .arg(MAX_CONVERSATION_BYTES);
            add_messages(&mut invocation, &first_args);
            invocation
        };
        let deadline = store.deadline();
        for _ in 0..2 {
            let created: i64 = store
                .invoke(deadline, &create(&digest, &sort_key))
                .await
                .unwrap();
            assert_eq!(created, 1);
        }
        // Another create that drew the same id, of this owner or another.
        let other_sort_key = format!("{:020}:{id}", 8);
        for (owner, sort_key) in [
            (digest.as_str(), other_sort_key.as_str()),
            (&owner_digest("acct_2"), &sort_key),
        ] {
            let created: i64 = store
                .invoke(deadline, &create(owner, sort_key))
                .await
                .unwrap();
            assert_eq!(created, 0);
        }
        let stored: Vec<String> = query(
            &store,
            redis::cmd("HMGET")
                .arg(store.conversation_key(id))
                .arg("owner")
                .arg("sort_key")
                .arg("bytes"),
        )
        .await;
        assert_eq!(stored, [digest.clone(), sort_key, "5".to_owned()]);
        assert_eq!(
            store.history("acct_1", id, usize::MAX).await.unwrap(),
            Some(first.clone())
        );

        // An append sent twice: its messages once, its bytes once.
        let more = new_messages(
            101,
            vec![
                (Role::Assistant, "Hi".to_owned()),
                (Role::User, "Again".to_owned()),
            ],
        );
        let more_args = message_args(&more).unwrap();
        for _ in 0..2 {
            let mut invocation = store.scripts.append.prepare_invoke();
            invocation
                .key(store.conversation_key(id))
                .key(store.messages_key(id))
                .key(store.message_index_key(id))
                .arg(&digest)
                .arg(content_bytes(&more))
                .arg(MAX_MESSAGES_PER_CONVERSATION)
                .arg(MAX_CONVERSATION_BYTES);
            add_messages(&mut invocation, &more_args);
            let appended: i64 = store.invoke(deadline, &invocation).await.unwrap();
            assert_eq!(appended, 1);
        }
        let mut all = first;
        all.extend(more);
        assert_eq!(
            store.history("acct_1", id, usize::MAX).await.unwrap(),
            Some(all)
        );
        let bytes: String = query(
            &store,
            redis::cmd("HGET")
                .arg(store.conversation_key(id))
                .arg("bytes"),
        )
        .await;
        assert_eq!(bytes, "12");
        // An append of no messages still answers.
        assert_eq!(
            store.append("acct_1", id, Vec::new()).await.unwrap(),
            Some(Vec::new())
        );
    }
}
