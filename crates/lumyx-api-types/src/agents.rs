//! Agents: `POST /v1/agents/{persona_id}/chat/completions`, the chat shapes
//! answered by a persona.

use crate::chat::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
};
use crate::personas::Persona;
use crate::role::Role;

/// The answer of an agent chat: the same shape as a chat completion, so that
/// an unmodified OpenAI client with base URL `…/v1/agents/{persona_id}` works.
pub type AgentChatResponse = ChatCompletionResponse;

/// A streamed chunk of an agent chat, the same shape as a chat chunk.
pub type AgentChatChunk = ChatCompletionChunk;

/// A chat request addressed to a persona: the body of the route plus the
/// `persona_id` of its path.
///
/// ```
/// use lumyx_api_types::{AgentChatRequest, ChatCompletionRequest, ChatMessage, Persona, Role};
///
/// let persona = Persona::new("poet", "Poet", "Answers in verse", "nova_1_1", "Answer in rhyme.");
/// let body = ChatCompletionRequest::new("ignored-by-agents", vec![ChatMessage::user("Hi")]);
/// let request = AgentChatRequest::new("poet", body).into_chat_request(&persona);
/// assert_eq!(request.model, "nova_1_1");
/// assert_eq!(request.messages[0].role, Role::System);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AgentChatRequest {
    /// The persona id from the path.
    pub persona_id: String,
    /// The body, a chat completion request.
    pub request: ChatCompletionRequest,
}

impl AgentChatRequest {
    /// A request to `persona_id` with `request` as body.
    pub fn new(persona_id: impl Into<String>, request: ChatCompletionRequest) -> Self {
        Self {
            persona_id: persona_id.into(),
            request,
        }
    }

    /// The chat request the persona answers: the persona's model replaces
    /// the body's, and its instructions come first, as a `system` message
    /// before the caller's messages.
    pub fn into_chat_request(self, persona: &Persona) -> ChatCompletionRequest {
        let mut request = self.request;
        request.model.clone_from(&persona.model);
        let instructions = ChatMessage::new(Role::System, persona.instructions.clone());
        request.messages.insert(0, instructions);
        request
    }
}
