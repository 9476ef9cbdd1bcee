//! The body of `POST /v1/chat/completions`: the request, its messages, and
//! the options they carry (`stop`, `stream_options`, `metadata`). Reading
//! them from JSON is the job of `reader`; the parts of a message's content
//! are in `content`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::content::MessageContent;
use super::response::ToolCall;
use crate::role::Role;

/// Up to 16 string pairs attached to an object, as OpenAI's `metadata`.
pub type Metadata = BTreeMap<String, String>;

/// The body of `POST /v1/chat/completions`.
///
/// Fields Lumyx reads are typed; `tools` and `tool_choice` are passed through
/// as JSON; any other field is kept in [`extra`](Self::extra) and written back,
/// so a proxy loses nothing. Serde checks types only: call
/// [`Validate::validate`](crate::Validate::validate) for ranges and roles, or
/// read bodies with [`parse_json`](crate::parse_json), which does both.
///
/// ```
/// use lumyx_api_types::{ChatCompletionRequest, ChatMessage, Validate};
///
/// let request = ChatCompletionRequest::new(
///     "nova_1_1",
///     vec![ChatMessage::developer("Be brief."), ChatMessage::user("Hello!")],
/// )
/// .with_temperature(0.2)
/// .with_stream(true);
/// request.validate().unwrap();
/// assert_eq!(request.last_user_text().as_deref(), Some("Hello!"));
/// assert!(request.include_usage());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatCompletionRequest {
    /// The model to use.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature, 0 to 2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling mass, 0 to 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Most tokens to generate (deprecated by OpenAI for `max_completion_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Most tokens to generate, reasoning tokens included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// How many choices to generate, 1 to 128
    /// ([`CHOICES_RANGE`](crate::CHOICES_RANGE)).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Sequences at which generation stops.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Whether to answer with server-sent [`ChatCompletionChunk`](crate::ChatCompletionChunk)s.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Options of the stream; only allowed with `stream: true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// An end-user id, for abuse monitoring.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Pairs stored with the completion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// Tools the model may call, passed through unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Which tool the model must call, passed through unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    /// Lumyx extension: load this conversation before `messages` and append
    /// the exchange to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Every other field of the body, kept verbatim. Do not put a key here
    /// that is also a typed field: it would be written twice.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatCompletionRequest {
    /// A request with its two required fields and nothing else.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            temperature: None,
            top_p: None,
            max_tokens: None,
            max_completion_tokens: None,
            n: None,
            stop: None,
            stream: None,
            stream_options: None,
            user: None,
            metadata: None,
            tools: None,
            tool_choice: None,
            conversation_id: None,
            extra: Map::new(),
        }
    }

    /// Sets `temperature`.
    #[must_use]
    pub fn with_temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Sets `max_completion_tokens`.
    #[must_use]
    pub fn with_max_completion_tokens(mut self, max: u32) -> Self {
        self.max_completion_tokens = Some(max);
        self
    }

    /// Sets `n`.
    #[must_use]
    pub fn with_n(mut self, n: u32) -> Self {
        self.n = Some(n);
        self
    }

    /// Asks for a stream; `include_usage` adds the final usage chunk.
    #[must_use]
    pub fn with_stream(mut self, include_usage: bool) -> Self {
        self.stream = Some(true);
        self.stream_options = include_usage.then_some(StreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        self
    }

    /// Sets Lumyx's `conversation_id`.
    #[must_use]
    pub fn with_conversation_id(mut self, conversation_id: impl Into<String>) -> Self {
        self.conversation_id = Some(conversation_id.into());
        self
    }

    /// Whether the caller asked for a stream (`stream: true`).
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// Whether a stream should end with a usage chunk
    /// (`stream_options.include_usage: true`).
    pub fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|options| options.include_usage)
            == Some(true)
    }

    /// The text of the last `user` message, if there is one.
    pub fn last_user_text(&self) -> Option<Cow<'_, str>> {
        self.messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .and_then(ChatMessage::text)
    }
}

/// One message of a chat request, tagged by its `role`.
///
/// One struct serves every role, so that a role this crate does not know
/// still reads; which fields a role needs is checked by validation
/// (`content` for `developer`, `system`, `user` and `tool`; `tool_call_id`
/// for `tool`; `content` or `tool_calls` for `assistant`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChatMessage {
    /// Who wrote the message.
    pub role: Role,
    /// Text or parts. Always written (`null` when absent, which only an
    /// assistant message with `tool_calls` or `refusal` may be).
    pub content: Option<MessageContent>,
    /// An optional name of the participant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls an assistant message made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// The tool call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A refusal an assistant message made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Every other field of the message, kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message of `role` with text content.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(MessageContent::Text(text.into())),
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            extra: Map::new(),
        }
    }

    /// A `developer` message.
    pub fn developer(text: impl Into<String>) -> Self {
        Self::new(Role::Developer, text)
    }

    /// A `system` message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A `user` message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// An `assistant` message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, text)
    }

    /// A `tool` message answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, text)
        }
    }

    /// The text of the message: its string content, or its text parts
    /// joined by newlines. `None` when it has no text.
    pub fn text(&self) -> Option<Cow<'_, str>> {
        self.content.as_ref().and_then(MessageContent::text)
    }
}

/// `stop`: one sequence or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Stop {
    /// A single stop sequence.
    One(String),
    /// Several stop sequences.
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StopVisitor;

        impl<'de> Visitor<'de> for StopVisitor {
            type Value = Stop;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Stop, E> {
                Ok(Stop::One(text.to_owned()))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Stop, E> {
                Ok(Stop::One(text))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Stop, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(Stop::Many(all))
            }
        }

        deserializer.deserialize_any(StopVisitor)
    }
}

/// `stream_options` of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with the usage of the whole request (and `usage: null`
    /// on every chunk before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Whether chunks carry an `obfuscation` field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_obfuscation: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_reads_one_or_many() {
        assert_eq!(
            serde_json::from_value::<Stop>(json!("\n")).unwrap(),
            Stop::One("\n".into())
        );
        assert_eq!(
            serde_json::from_value::<Stop>(json!(["a", "b"])).unwrap(),
            Stop::Many(vec!["a".into(), "b".into()])
        );
        assert!(serde_json::from_value::<Stop>(json!(1)).is_err());
    }

    #[test]
    fn request_helpers_read_what_the_server_needs() {
        let request = ChatCompletionRequest::new(
            "m",
            vec![
                ChatMessage::user("first"),
                ChatMessage::assistant("reply"),
                ChatMessage::user("second"),
                ChatMessage::tool("call_1", "42"),
            ],
        )
        .with_conversation_id("conv_1");
        assert_eq!(request.last_user_text().unwrap(), "second");
        assert!(!request.is_stream());
        assert!(!request.include_usage());
        assert_eq!(request.conversation_id.as_deref(), Some("conv_1"));
        let streaming = request.with_stream(false);
        assert!(streaming.is_stream());
        assert!(!streaming.include_usage());
    }
}
