//! Conversations in this process's memory: for one instance, development and
//! tests. Everything is lost when the process ends.
//!
//! All owners' conversations sit in one map behind one mutex, which no call
//! holds across an `.await`. A list sorts the owner's conversations on each
//! call, which is simple and fast enough for what one process keeps. Under
//! the lock, a history or a page of messages copies only the messages it
//! answers, and an append checks the caps against a running count of the
//! conversation's content bytes.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use lumyx_api_types::{Conversation, ConversationMessage, ListPage, ListParams, Metadata, Role};

use super::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, StoreError,
    content_bytes, full, new_conversation_id, new_messages, now,
};

/// Conversations kept in this process's memory, lost when it ends: all
/// owners' conversations in one map behind one mutex, never held across
/// an `.await`.
///
/// ```
/// use lumyx_server::{ConversationStore, MemoryConversations};
/// use lumyx_api_types::Role;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryConversations::new();
/// let conversation = store
///     .create("acct_1", None, vec![(Role::User, "Hello".to_owned())])
///     .await?;
/// let history = store.history("acct_1", &conversation.id, 50).await?;
/// assert_eq!(history.map(|messages| messages.len()), Some(1));
/// // Another owner is told nothing about it.
/// assert!(store.get("acct_2", &conversation.id).await?.is_none());
/// # Ok::<(), lumyx_server::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryConversations {
    state: Mutex<State>,
}

/// What the mutex guards.
#[derive(Debug, Default)]
struct State {
    /// The sequence number of the next conversation: the order of creation
    /// that breaks ties of equal `created_at`.
    next_sequence: u64,
    /// Every owner's conversations, by id.
    conversations: HashMap<String, StoredConversation>,
}

/// One conversation as kept. Its messages are in the order they were added:
/// a message's place in `messages` is its sequence number.
#[derive(Debug)]
struct StoredConversation {
    owner: String,
    created_at: i64,
    sequence: u64,
    metadata: Option<Metadata>,
    messages: Vec<ConversationMessage>,
    /// The bytes of content of `messages`.
    bytes: usize,
}

impl StoredConversation {
    fn to_conversation(&self, id: &str) -> Conversation {
        Conversation::new(id, self.created_at, self.metadata.clone())
    }
}

/// Whether a conversation of `messages` messages and `bytes` bytes of
/// content, with `new` added, stays within the caps.
fn fits(messages: usize, bytes: usize, new: &[ConversationMessage]) -> bool {
    messages.saturating_add(new.len()) <= MAX_MESSAGES_PER_CONVERSATION
        && bytes.saturating_add(content_bytes(new)) <= MAX_CONVERSATION_BYTES
}

impl MemoryConversations {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state; a panic of another call while it held the lock left no
    /// half-made change (every change is a single insert, extend or remove,
    /// with the byte count set only after it), so a poisoned lock is taken
    /// as it is.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// `owner`'s conversation `id`; another owner's is as good as absent.
    fn owned(&self, owner: &str, id: &str) -> Option<&StoredConversation> {
        self.conversations
            .get(id)
            .filter(|conversation| conversation.owner == owner)
    }

    /// `owner`'s conversation `id`, to change it.
    fn owned_mut(&mut self, owner: &str, id: &str) -> Option<&mut StoredConversation> {
        self.conversations
            .get_mut(id)
            .filter(|conversation| conversation.owner == owner)
    }
}

#[async_trait]
impl ConversationStore for MemoryConversations {
    async fn create(
        &self,
        owner: &str,
        metadata: Option<Metadata>,
        messages: Vec<(Role, String)>,
    ) -> Result<Conversation, StoreError> {
        let created_at = now();
        let messages = new_messages(created_at, messages);
        if !fits(0, 0, &messages) {
            return Err(full());
        }
        let bytes = content_bytes(&messages);
        let mut state = self.state();
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        // 96 random bits do not collide in practice; a collision must
        // still not replace someone's conversation.
        loop {
            let id = new_conversation_id();
            if let Entry::Vacant(entry) = state.conversations.entry(id.clone()) {
                let stored = entry.insert(StoredConversation {
                    owner: owner.to_owned(),
                    created_at,
                    sequence,
                    metadata,
                    messages,
                    bytes,
                });
                return Ok(stored.to_conversation(&id));
            }
        }
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        let state = self.state();
        Ok(state
            .owned(owner, id)
            .map(|conversation| conversation.to_conversation(id)))
    }

    async fn update(
        &self,
        owner: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<Option<Conversation>, StoreError> {
        let mut state = self.state();
        Ok(state.owned_mut(owner, id).map(|conversation| {
            conversation.metadata = Some(metadata);
            conversation.to_conversation(id)
        }))
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.owned(owner, id).is_none() {
            return Ok(false);
        }
        Ok(state.conversations.remove(id).is_some())
    }

    async fn list(
        &self,
        owner: &str,
        page: &ListParams,
    ) -> Result<ListPage<Conversation>, StoreError> {
        let mut owned: Vec<(i64, u64, Conversation)> = {
            let state = self.state();
            state
                .conversations
                .iter()
                .filter(|(_, conversation)| conversation.owner == owner)
                .map(|(id, conversation)| {
                    (
                        conversation.created_at,
                        conversation.sequence,
                        conversation.to_conversation(id),
                    )
                })
                .collect()
        };
        owned.sort_by_key(|(created_at, sequence, _)| (*created_at, *sequence));
        let conversations = owned
            .into_iter()
            .map(|(_, _, conversation)| conversation)
            .collect();
        ListPage::paginate(conversations, page, |conversation| &conversation.id)
            .ok_or(StoreError::UnknownCursor)
    }

    async fn append(
        &self,
        owner: &str,
        id: &str,
        messages: Vec<(Role, String)>,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        let messages = new_messages(now(), messages);
        let mut state = self.state();
        let Some(conversation) = state.owned_mut(owner, id) else {
            return Ok(None);
        };
        if !fits(conversation.messages.len(), conversation.bytes, &messages) {
            return Err(full());
        }
        conversation.messages.extend(messages.iter().cloned());
        conversation.bytes += content_bytes(&messages);
        Ok(Some(messages))
    }

    async fn messages(
        &self,
        owner: &str,
        id: &str,
        page: &ListParams,
    ) -> Result<Option<ListPage<ConversationMessage>>, StoreError> {
        let state = self.state();
        let Some(conversation) = state.owned(owner, id) else {
            return Ok(None);
        };
        // Paginated by reference, so that only the page is copied.
        let messages: Vec<&ConversationMessage> = conversation.messages.iter().collect();
        let found = ListPage::paginate(messages, page, |message| &message.id)
            .ok_or(StoreError::UnknownCursor)?;
        let data = found.data.into_iter().cloned().collect();
        Ok(Some(ListPage::new(data, found.has_more, |message| {
            &message.id
        })))
    }

    async fn history(
        &self,
        owner: &str,
        id: &str,
        last: usize,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        let state = self.state();
        Ok(state.owned(owner, id).map(|conversation| {
            let start = conversation.messages.len().saturating_sub(last);
            conversation.messages[start..].to_vec()
        }))
    }
}
