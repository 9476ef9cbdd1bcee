//! Conversation history: what `/v1/conversations` serves and what a chat
//! completion with `conversation_id` reads and extends. Each conversation
//! belongs to the owner (account) of the key that created it; every call
//! names the owner, and another owner's conversation is "not found", never
//! "forbidden", so its existence is not told.
//!
//! A conversation holds at most [`MAX_MESSAGES_PER_CONVERSATION`] messages
//! and [`MAX_CONVERSATION_BYTES`] bytes of message content, so that no key
//! holder can grow one without limit; a chat completion replays only its
//! most recent messages ([`ConversationStore::history`]).
//!
//! Three stores keep the same contract: [`MemoryConversations`] in this
//! process, [`RedisConversations`] shared by every instance, and
//! [`SqliteConversations`] in a SQLite file that outlives the process.

use async_trait::async_trait;
use lumyx_api_types::{Conversation, ConversationMessage, ListPage, ListParams, Metadata, Role};

use crate::random::random_hex;

mod memory;
mod redis;
mod sqlite;

pub use self::memory::MemoryConversations;
pub use self::redis::{RedisConversations, RedisConversationsBuilder};
pub use self::sqlite::SqliteConversations;

/// The most messages one conversation holds: a [`ConversationStore::create`]
/// or [`ConversationStore::append`] that would pass it is refused with
/// [`StoreError::Full`].
pub const MAX_MESSAGES_PER_CONVERSATION: usize = 1000;

/// The most bytes of message content (the UTF-8 bytes of every message's
/// `content`, summed) one conversation holds: a
/// [`ConversationStore::create`] or [`ConversationStore::append`] that would
/// pass it is refused with [`StoreError::Full`]. 4 MiB.
pub const MAX_CONVERSATION_BYTES: usize = 4 * 1024 * 1024;

/// The bytes of content of `messages`, as [`MAX_CONVERSATION_BYTES`] counts
/// them.
fn content_bytes(messages: &[ConversationMessage]) -> usize {
    messages
        .iter()
        .fold(0, |sum, message| sum.saturating_add(message.content.len()))
}

/// The refusal of a write that would pass the caps.
fn full() -> StoreError {
    StoreError::Full {
        max_messages: MAX_MESSAGES_PER_CONVERSATION,
        max_bytes: MAX_CONVERSATION_BYTES,
    }
}

/// Unix seconds now: the stores' clock.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A new conversation id: `conv_` and 24 random hex digits.
fn new_conversation_id() -> String {
    format!("conv_{}", random_hex(12))
}

/// Whether `id` has the form [`new_conversation_id`] gives: `conv_` and 24
/// lowercase hex digits. No other id names a conversation, so a store may
/// answer "no such conversation" for it without looking; the Redis store
/// must, as braces in an id would put its keys in different cluster slots.
fn is_conversation_id(id: &str) -> bool {
    id.strip_prefix("conv_").is_some_and(|digits| {
        digits.len() == 24
            && digits
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// New messages with fresh ids (`msg_` and 24 random hex digits), all
/// created at `created_at`.
fn new_messages(created_at: i64, messages: Vec<(Role, String)>) -> Vec<ConversationMessage> {
    messages
        .into_iter()
        .map(|(role, content)| {
            ConversationMessage::new(format!("msg_{}", random_hex(12)), created_at, role, content)
        })
        .collect()
}

/// Where and why JSON did not parse, without the JSON: serde_json's own
/// message may quote the text it read (`invalid type: string "..."`).
fn json_failure(err: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        err.classify(),
        err.line(),
        err.column()
    )
}

/// Why a store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot answer now (Redis unreachable or refusing, a
    /// SQLite database busy, locked or failing to read or write): the API
    /// answers 503.
    #[error("the conversation store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store holds something it cannot read: the API answers 500.
    #[error("the conversation store holds data it cannot read: {0}")]
    Corrupt(String),
    /// `after` names no item of the list asked for: the API answers 400
    /// `invalid_value` with `param` `after`.
    #[error("`after` names no item of this list")]
    UnknownCursor,
    /// The messages of a create or an append would pass
    /// [`MAX_MESSAGES_PER_CONVERSATION`] or [`MAX_CONVERSATION_BYTES`]:
    /// nothing was written.
    #[error("the conversation is full: at most {max_messages} messages and {max_bytes} bytes")]
    Full {
        /// The most messages a conversation holds.
        max_messages: usize,
        /// The most bytes of message content a conversation holds.
        max_bytes: usize,
    },
}

/// Where conversations and their messages live.
///
/// Lists follow [`ListParams`]: `limit` items (default 20), `order` by
/// creation (`desc`, newest first, by default; the order of creation within
/// the store breaks ties of equal times), starting after the item `after`
/// names in that order. A page's `has_more` says whether items follow it.
///
/// Ids are made by the store: `conv_` and `msg_`, each with 24 random hex
/// digits. Times are Unix seconds of the store's clock.
///
/// A conversation holds at most [`MAX_MESSAGES_PER_CONVERSATION`] messages
/// and [`MAX_CONVERSATION_BYTES`] bytes of content: a create or an append
/// that would pass either is refused with [`StoreError::Full`] and writes
/// nothing, in the same step as the check, so concurrent appends cannot
/// pass the caps together.
#[async_trait]
pub trait ConversationStore: Send + Sync + 'static {
    /// A new conversation of `owner`, with `metadata` and first `messages`;
    /// [`StoreError::Full`] (and no conversation) when `messages` alone pass
    /// the caps.
    async fn create(
        &self,
        owner: &str,
        metadata: Option<Metadata>,
        messages: Vec<(Role, String)>,
    ) -> Result<Conversation, StoreError>;

    /// The conversation `id`, if it exists and is `owner`'s.
    async fn get(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError>;

    /// Replaces the metadata of `owner`'s conversation `id`; `None` when
    /// there is no such conversation.
    async fn update(
        &self,
        owner: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<Option<Conversation>, StoreError>;

    /// Deletes `owner`'s conversation `id` and its messages; `false` when
    /// there was no such conversation.
    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError>;

    /// A page of `owner`'s conversations.
    async fn list(
        &self,
        owner: &str,
        page: &ListParams,
    ) -> Result<ListPage<Conversation>, StoreError>;

    /// Adds `messages` at the end of `owner`'s conversation `id`, and
    /// answers them as stored; `None` when there is no such conversation.
    /// [`StoreError::Full`] when the conversation with them would pass the
    /// caps: then none of them is added.
    async fn append(
        &self,
        owner: &str,
        id: &str,
        messages: Vec<(Role, String)>,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError>;

    /// A page of the messages of `owner`'s conversation `id`; `None` when
    /// there is no such conversation.
    async fn messages(
        &self,
        owner: &str,
        id: &str,
        page: &ListParams,
    ) -> Result<Option<ListPage<ConversationMessage>>, StoreError>;

    /// The `last` most recent messages of `owner`'s conversation `id`
    /// (all of them when it has no more than `last`), oldest first: the
    /// history a chat completion replays; `None` when there is no such
    /// conversation. `last` bounds what one call reads and copies; 0
    /// answers an empty history of a conversation that exists.
    async fn history(
        &self,
        owner: &str,
        id: &str,
        last: usize,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError>;
}
