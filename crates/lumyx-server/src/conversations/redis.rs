//! Conversations in Redis, shared by every server instance.
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
//!   equal scores by their text, so a rank is the place in the order of
//!   (creation time, creation sequence);
//! - `<ns>:seq`: the creation sequence, counted by `INCR`.
//!
//! The keys of one conversation share the hash tag `{<id>}`. A call that
//! reads or changes one conversation is one script on those keys, and a
//! script checks the owner in the same step as it reads or writes, so a
//! write is atomic and another owner's call changes nothing. Creating and
//! deleting also touch the owner's set and the counter, and a list reads the
//! conversations its set names from inside its script: those scripts need
//! every key on one server (no Redis Cluster).
//!
//! The caps ([`MAX_MESSAGES_PER_CONVERSATION`], [`MAX_CONVERSATION_BYTES`])
//! are checked by the script that writes, against the list's length and
//! `bytes`, before it writes anything. A history reads only the messages it
//! answers (`LRANGE` of the list's tail).
//!
//! An error for data the store cannot read says what is wrong and where (the
//! field, the conversation, the message's place, the length) but never the
//! stored text, which is the clients' and may be large or secret.
//!
//! Nothing is cached: every call is one round trip, bounded by the timeout.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lumyx_api_types::{
    Conversation, ConversationMessage, ListOrder, ListPage, ListParams, Metadata, Role,
};
use lumyx_redis::{
    FailureClass, RedisConnection, RedisConnector, RedisFailure, RedisUrl, Report, retry_if_refused,
};

use redis::{RedisResult, Script, ScriptInvocation};
use sha2::{Digest, Sha256};

use super::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, StoreError,
    content_bytes, full, json_failure, new_conversation_id, new_messages, now,
};

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

/// Creates a conversation unless its id is taken or its messages pass the
/// caps; answers 1, 0 when taken, or -1 when they pass the caps (nothing is
/// written). KEYS: counter, owner's set, conversation, messages, message
/// index. ARGV: owner digest, created_at, metadata JSON, id, bytes of the
/// messages' content, most messages, most bytes, then message id and
/// message JSON pairs.
const CREATE: &str = r"
if too_much(0, 0, ARGV, 5, 8) then return -1 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local sequence = redis.call('INCR', KEYS[1])
local sort_key = string.format('%020d', sequence) .. ':' .. ARGV[4]
redis.call('HSET', KEYS[3], 'owner', ARGV[1], 'created_at', ARGV[2],
  'metadata', ARGV[3], 'sort_key', sort_key, 'bytes', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], sort_key)
append_messages(KEYS[4], KEYS[5], ARGV, 8)
return 1";

/// Replaces the metadata of the owner's conversation; answers its
/// created_at, or nil when there is no such conversation. KEYS:
/// conversation. ARGV: owner digest, metadata JSON.
const UPDATE: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return false end
redis.call('HSET', KEYS[1], 'metadata', ARGV[2])
return redis.call('HGET', KEYS[1], 'created_at')";

/// Deletes the owner's conversation; answers 1, or 0 when there is no such
/// conversation. KEYS: conversation, messages, message index, owner's set.
/// ARGV: owner digest.
const DELETE: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local sort_key = redis.call('HGET', KEYS[1], 'sort_key')
if sort_key then redis.call('ZREM', KEYS[4], sort_key) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1";

/// Adds messages to the owner's conversation; answers 1, 0 when there is no
/// such conversation, -1 when they would pass the caps, or -2 when its
/// `bytes` is not a count (in the last two cases nothing is written). The
/// count is raised before the messages are pushed, so that a failure
/// leaves no message without its bytes counted. KEYS: conversation,
/// messages, message index. ARGV: owner digest, bytes of the messages'
/// content, most messages, most bytes, then message id and message JSON
/// pairs.
const APPEND: &str = r"
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
local stored_bytes = redis.call('HGET', KEYS[1], 'bytes') or '0'
if not string.match(stored_bytes, '^%d+$') then return -2 end
if too_much(redis.call('LLEN', KEYS[2]), tonumber(stored_bytes), ARGV, 2, 5) then
  return -1
end
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[2])
append_messages(KEYS[2], KEYS[3], ARGV, 5)
return 1";

/// A page of the owner's conversations: `{'unknown_cursor'}`, or `{'page',
/// has_more ('1' or '0'), then id, created_at, metadata JSON of each}`.
/// KEYS: owner's set, then the conversation `after` names, if any. ARGV:
/// owner digest, order (`asc` or `desc`), limit, conversation key prefix.
const LIST: &str = r"
local asc = ARGV[2] == 'asc'
local start = 0
if KEYS[2] then
  if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1] then return {'unknown_cursor'} end
  local sort_key = redis.call('HGET', KEYS[2], 'sort_key')
  local rank = false
  if sort_key and asc then rank = redis.call('ZRANK', KEYS[1], sort_key) end
  if sort_key and not asc then rank = redis.call('ZREVRANK', KEYS[1], sort_key) end
  if not rank then return {'unknown_cursor'} end
  start = rank + 1
end
local limit = tonumber(ARGV[3])
-- One more than the page, to tell whether items follow it.
local members
if asc then
  members = redis.call('ZRANGE', KEYS[1], start, start + limit)
else
  members = redis.call('ZREVRANGE', KEYS[1], start, start + limit)
end
local page = {'page', #members > limit and '1' or '0'}
for i = 1, math.min(#members, limit) do
  local id = string.sub(members[i], 22)
  local fields = redis.call('HMGET', ARGV[4] .. '{' .. id .. '}', 'created_at', 'metadata')
  page[#page + 1] = id
  page[#page + 1] = fields[1]
  page[#page + 1] = fields[2]
end
return page";

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
    /// The longest one call may take, connecting included, before it fails
    /// with [`StoreError::Unavailable`], so that an outage answers promptly
    /// instead of hanging a request. Default:
    /// [`RedisConversations::DEFAULT_TIMEOUT`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.connector = self.connector.timeout(timeout);
        self
    }

    /// The prefix of every Redis key of the store. Default:
    /// [`RedisConversations::DEFAULT_NAMESPACE`]. Stores under different
    /// namespaces on one server are separate.
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
                list: Script::new(LIST),
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
    list: Script,
    messages: Script,
    history: Script,
}

/// Conversations in Redis, shared by every instance: each call is one
/// script that checks the owner in the same step as it reads or writes, so
/// writes are atomic and another owner's call changes nothing (one Redis
/// server, not a Cluster).
///
/// Built with [`RedisConversations::builder`]. The connection is made by
/// the first call, not by `connect`. A call is sent again only when the
/// connection was refused (so nothing was sent); any other failure (a
/// dropped connection, a timeout) is an error, since Redis may have run a
/// write whose reply was lost. Cloning is cheap: clones share one
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

impl RedisConversations {
    /// The default of [`RedisConversationsBuilder::namespace`].
    pub const DEFAULT_NAMESPACE: &'static str = "lumyx:conv";

    /// The default of [`RedisConversationsBuilder::timeout`]: 1 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

    /// A builder of a store on the Redis server at `url`, with the defaults.
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

    fn owner_key(&self, owner: &str) -> String {
        format!("{}:o:{}", self.namespace, owner_digest(owner))
    }

    /// Runs `call` on the shared connection, once more only when the
    /// connection was refused, all within the timeout.
    async fn send<T, F, Fut>(&self, call: F) -> Result<T, StoreError>
    where
        F: Fn(RedisConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempts = retry_if_refused(|| call(self.connection.clone()));
        match tokio::time::timeout(self.timeout, attempts).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(err)) => Err(failed(RedisFailure::from(err))),
            Err(_) => Err(failed(RedisFailure::timed_out(self.timeout))),
        }
    }

    /// Runs a script (see [`RedisConversations::send`]).
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.send(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
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

/// Adds each message's id and JSON to `invocation`'s arguments, as
/// `append_messages` reads them.
fn add_messages(
    invocation: &mut ScriptInvocation<'_>,
    messages: &[ConversationMessage],
) -> Result<(), StoreError> {
    for message in messages {
        let json = serde_json::to_string(message)
            .map_err(|err| StoreError::Corrupt(format!("a message did not serialize: {err}")))?;
        invocation.arg(&message.id).arg(json);
    }
    Ok(())
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

/// The items of a page reply (`{'page', has_more, items...}`) and its
/// `has_more`; [`StoreError::UnknownCursor`] for `{'unknown_cursor'}`.
fn page_reply(reply: Vec<Field>) -> Result<(Vec<Field>, bool), StoreError> {
    let mut reply = reply.into_iter();
    let tag = reply.next().flatten();
    match tag.as_deref() {
        Some(b"page") => {}
        Some(b"unknown_cursor") => return Err(StoreError::UnknownCursor),
        _ => {
            return Err(StoreError::Corrupt(
                "a list script answered neither a page nor an unknown cursor".to_owned(),
            ));
        }
    }
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
        let created_at = now();
        let messages = new_messages(created_at, messages);
        let bytes = content_bytes(&messages);
        let metadata_arg = metadata_json(metadata.as_ref())?;
        let owner_digest = owner_digest(owner);
        let owner_key = self.owner_key(owner);
        // 96 random bits do not collide in practice; a collision must
        // still not replace someone's conversation.
        loop {
            let id = new_conversation_id();
            let mut invocation = self.scripts.create.prepare_invoke();
            invocation
                .key(&self.counter_key)
                .key(&owner_key)
                .key(self.conversation_key(&id))
                .key(self.messages_key(&id))
                .key(self.message_index_key(&id))
                .arg(&owner_digest)
                .arg(created_at)
                .arg(&metadata_arg)
                .arg(&id)
                .arg(bytes)
                .arg(MAX_MESSAGES_PER_CONVERSATION)
                .arg(MAX_CONVERSATION_BYTES);
            add_messages(&mut invocation, &messages)?;
            let created: i64 = self.invoke(&invocation).await?;
            match created {
                1 => return Ok(Conversation::new(id, created_at, metadata)),
                -1 => return Err(full()),
                _ => {}
            }
        }
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        let key = self.conversation_key(id);
        let fields: Vec<Field> = self
            .send(|mut connection| {
                let key = key.clone();
                async move {
                    redis::cmd("HMGET")
                        .arg(key)
                        .arg("owner")
                        .arg("created_at")
                        .arg("metadata")
                        .query_async(&mut connection)
                        .await
                }
            })
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
        let mut invocation = self.scripts.update.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .arg(owner_digest(owner))
            .arg(metadata_json(Some(&metadata))?);
        let created_at: Field = self.invoke(&invocation).await?;
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
        let mut invocation = self.scripts.delete.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .key(self.message_index_key(id))
            .key(self.owner_key(owner))
            .arg(owner_digest(owner));
        let deleted: i64 = self.invoke(&invocation).await?;
        Ok(deleted == 1)
    }

    async fn list(
        &self,
        owner: &str,
        page: &ListParams,
    ) -> Result<ListPage<Conversation>, StoreError> {
        let mut invocation = self.scripts.list.prepare_invoke();
        invocation.key(self.owner_key(owner));
        if let Some(after) = &page.after {
            invocation.key(self.conversation_key(after));
        }
        invocation
            .arg(owner_digest(owner))
            .arg(order_arg(page))
            .arg(page.limit_or_default())
            .arg(&self.conversation_key_prefix);
        let reply: Vec<Field> = self.invoke(&invocation).await?;
        let (items, has_more) = page_reply(reply)?;
        if items.len() % 3 != 0 {
            return Err(StoreError::Corrupt(
                "the list script answered an incomplete conversation".to_owned(),
            ));
        }
        let mut conversations = Vec::with_capacity(items.len() / 3);
        let mut items = items.into_iter();
        while let (Some(id), Some(created_at), Some(metadata)) =
            (items.next(), items.next(), items.next())
        {
            let id = text(id, "a listed conversation's id")?;
            let created_at = parse_created_at(created_at, &id)?;
            let metadata = parse_metadata(metadata, &id)?;
            conversations.push(Conversation::new(id, created_at, metadata));
        }
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
        let messages = new_messages(now(), messages);
        let mut invocation = self.scripts.append.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .key(self.message_index_key(id))
            .arg(owner_digest(owner))
            .arg(content_bytes(&messages))
            .arg(MAX_MESSAGES_PER_CONVERSATION)
            .arg(MAX_CONVERSATION_BYTES);
        add_messages(&mut invocation, &messages)?;
        let appended: i64 = self.invoke(&invocation).await?;
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
        let reply: Option<Vec<Field>> = self.invoke(&invocation).await?;
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
        let mut invocation = self.scripts.history.prepare_invoke();
        invocation
            .key(self.conversation_key(id))
            .key(self.messages_key(id))
            .arg(owner_digest(owner))
            .arg(last);
        let reply: Option<Vec<Field>> = self.invoke(&invocation).await?;
        reply
            .map(|messages| parse_messages(messages, id))
            .transpose()
    }
}
