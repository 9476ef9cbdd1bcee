//! Agents: `POST /v1/agents/{persona_id}/chat/completions`, the chat shapes
//! answered by a persona.

use crate::chat::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
};
use crate::error::ApiError;
use crate::personas::Persona;
use crate::role::Role;
use crate::validation::Validate;

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
/// let request = AgentChatRequest::new("poet", body).into_chat_request(&persona)?;
/// assert_eq!(request.model, "nova_1_1");
/// assert_eq!(request.messages[0].role, Role::System);
///
/// // Errors name the caller's fields: their first message is `messages[0]`.
/// let bad = ChatCompletionRequest::new("m", vec![ChatMessage::new(Role::Tool, "x")]);
/// let error = AgentChatRequest::new("poet", bad).into_chat_request(&persona).unwrap_err();
/// assert_eq!(error.param(), Some("messages[0].tool_call_id"));
/// # Ok::<(), lumyx_api_types::ApiError>(())
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
    ///
    /// The body is validated before the instructions go in, so the `param`
    /// of an error is a path in the caller's body.
    ///
    /// # Errors
    ///
    /// `persona_not_found` when `persona` is not the one of the path
    /// (its id differs from `persona_id`); the body's first validation
    /// error otherwise.
    pub fn into_chat_request(self, persona: &Persona) -> Result<ChatCompletionRequest, ApiError> {
        if persona.id != self.persona_id {
            return Err(ApiError::persona_not_found(&self.persona_id));
        }
        let mut request = self.request;
        request.model.clone_from(&persona.model);
        request.validate()?;
        let instructions = ChatMessage::new(Role::System, persona.instructions.clone());
        request.messages.insert(0, instructions);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn poet() -> Persona {
        Persona::new("poet", "Poet", "Answers in verse", "nova_1_1", "Rhyme.")
    }

    #[test]
    fn errors_name_the_callers_messages() {
        let mut second = ChatMessage::user("x");
        second.role = Role::from_wire("critic");
        let body = ChatCompletionRequest::new("m", vec![ChatMessage::user("Hi"), second]);
        let error = AgentChatRequest::new("poet", body)
            .into_chat_request(&poet())
            .unwrap_err();
        assert_eq!(error.param(), Some("messages[1].role"));
    }

    #[test]
    fn another_persona_is_refused() {
        let body = ChatCompletionRequest::new("m", vec![ChatMessage::user("Hi")]);
        let error = AgentChatRequest::new("critic", body)
            .into_chat_request(&poet())
            .unwrap_err();
        assert!(matches!(error.code(), Some(ErrorCode::PersonaNotFound)));
        assert_eq!(error.status().as_u16(), 404);
    }

    #[test]
    fn the_persona_speaks_first_with_its_model() {
        let body = ChatCompletionRequest::new("", vec![ChatMessage::user("Hi")]);
        let request = AgentChatRequest::new("poet", body)
            .into_chat_request(&poet())
            .unwrap();
        assert_eq!(request.model, "nova_1_1");
        assert_eq!(request.messages.len(), 2);
        assert_eq!(request.messages[0].role, Role::System);
        assert_eq!(request.messages[0].text().unwrap(), "Rhyme.");
        assert_eq!(request.messages[1].text().unwrap(), "Hi");
    }
}
