//! Conversations: stored chat histories, shaped after OpenAI's Conversations
//! API. `created_at` is in Unix seconds.

use serde::{Deserialize, Serialize};

use crate::chat::{ChatMessage, Metadata};
use crate::list::ListPage;
use crate::role::Role;

/// A conversation (`object: "conversation"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Id (`conv_…`), used as `conversation_id` in chat requests.
    pub id: String,
    /// Always `conversation`.
    pub object: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Pairs attached by the caller (written as `null` when there are none).
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

impl Conversation {
    /// The `object` value of a conversation.
    pub const OBJECT: &'static str = "conversation";

    /// A conversation.
    pub fn new(id: impl Into<String>, created_at: i64, metadata: Option<Metadata>) -> Self {
        Self {
            id: id.into(),
            object: Self::OBJECT.to_owned(),
            created_at,
            metadata,
        }
    }
}

/// The body of `POST /v1/conversations`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateConversationRequest {
    /// Pairs to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Messages to start the conversation with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ChatMessage>,
}

/// The body of `POST /v1/conversations/{id}`: replaces the metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateConversationRequest {
    /// The new pairs.
    pub metadata: Metadata,
}

/// The answer of `DELETE /v1/conversations/{id}`
/// (`object: "conversation.deleted"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationDeleted {
    /// Id of the deleted conversation.
    pub id: String,
    /// Always `conversation.deleted`.
    pub object: String,
    /// Always `true`.
    pub deleted: bool,
}

impl ConversationDeleted {
    /// The `object` value of a deletion.
    pub const OBJECT: &'static str = "conversation.deleted";

    /// The answer for the deletion of `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: Self::OBJECT.to_owned(),
            deleted: true,
        }
    }
}

/// One stored message of a conversation (`object: "conversation.message"`).
///
/// The text of the message is stored; parts other than text are not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationMessage {
    /// Id (`msg_…`).
    pub id: String,
    /// Always `conversation.message`.
    pub object: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

impl ConversationMessage {
    /// The `object` value of a stored message.
    pub const OBJECT: &'static str = "conversation.message";

    /// A stored message.
    pub fn new(
        id: impl Into<String>,
        created_at: i64,
        role: Role,
        content: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            object: Self::OBJECT.to_owned(),
            created_at,
            role,
            content: content.into(),
        }
    }

    /// The message as a chat request message, to replay the history.
    pub fn to_chat_message(&self) -> ChatMessage {
        ChatMessage::new(self.role.clone(), self.content.clone())
    }
}

/// The answer of `GET /v1/conversations`.
pub type ConversationList = ListPage<Conversation>;

/// The answer of `GET /v1/conversations/{id}/messages`.
pub type ConversationMessageList = ListPage<ConversationMessage>;
