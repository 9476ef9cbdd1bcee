//! The answer of a streaming chat completion: the chunks sent as server-sent
//! events, each adding a delta to one choice, and the last one carrying the
//! usage when asked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::{FinishReason, ToolType, Usage};
use crate::role::Role;

/// One server-sent event of a streaming completion
/// (`object: "chat.completion.chunk"`).
///
/// `usage` has three states, as on the wire: absent (`None`, the stream was
/// not asked for usage), `null` (`Some(None)`, every chunk but the last when
/// `include_usage` is on) and the totals (`Some(Some(usage))`, the last chunk,
/// whose `choices` is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Id of the completion, the same on every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds of creation, the same on every chunk.
    pub created: i64,
    /// The model that answers.
    pub model: String,
    /// The service tier that serves the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// Fingerprint of the backend configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// The deltas of this chunk; empty on the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// See the type's documentation.
    #[serde(
        default,
        with = "crate::wire::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub usage: Option<Option<Usage>>,
    /// Random padding some servers add against length side channels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obfuscation: Option<String>,
}

impl ChatCompletionChunk {
    /// The `object` value of a chunk.
    pub const OBJECT: &'static str = "chat.completion.chunk";

    /// A chunk with one choice. With `include_usage`, it carries `usage: null`.
    pub fn delta(
        id: impl Into<String>,
        created: i64,
        model: impl Into<String>,
        choice: ChunkChoice,
        include_usage: bool,
    ) -> Self {
        Self::with(
            id.into(),
            created,
            model.into(),
            vec![choice],
            include_usage.then_some(None),
        )
    }

    /// The last chunk of a stream asked for usage: no choices, the totals.
    pub fn usage(
        id: impl Into<String>,
        created: i64,
        model: impl Into<String>,
        usage: Usage,
    ) -> Self {
        Self::with(
            id.into(),
            created,
            model.into(),
            Vec::new(),
            Some(Some(usage)),
        )
    }

    fn with(
        id: String,
        created: i64,
        model: String,
        choices: Vec<ChunkChoice>,
        usage: Option<Option<Usage>>,
    ) -> Self {
        Self {
            id,
            object: Self::OBJECT.to_owned(),
            created,
            model,
            service_tier: None,
            system_fingerprint: None,
            choices,
            usage,
            obfuscation: None,
        }
    }
}

/// One choice's delta in a chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Position among the choices.
    pub index: u32,
    /// What this chunk adds.
    pub delta: Delta,
    /// Log probabilities, when requested (written as `null` otherwise).
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Set on the last delta of the choice (written as `null` before).
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

impl ChunkChoice {
    /// A choice delta.
    pub fn new(index: u32, delta: Delta, finish_reason: Option<FinishReason>) -> Self {
        Self {
            index,
            delta,
            logprobs: None,
            finish_reason,
        }
    }
}

/// What a chunk adds to a choice; every field is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    /// The role, on the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The next piece of text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The next piece of a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Pieces of tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallChunk>>,
}

impl Delta {
    /// The first delta of an assistant message: its role and empty content.
    pub fn start() -> Self {
        Self {
            role: Some(Role::Assistant),
            content: Some(String::new()),
            ..Self::default()
        }
    }

    /// A delta adding `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: Some(text.into()),
            ..Self::default()
        }
    }
}

/// A tool call piece in a streaming delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallChunk {
    /// Which tool call of the message this piece extends.
    pub index: u32,
    /// The id, on the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The kind of tool, on the first piece.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolType>,
    /// Name and argument text pieces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallChunk>,
}

/// A piece of a function call in a streaming delta.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FunctionCallChunk {
    /// The function's name, on the first piece.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The next piece of the argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chunk_usage_has_three_states() {
        let base = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": []});
        let absent: ChatCompletionChunk = serde_json::from_value(base.clone()).unwrap();
        assert_eq!(absent.usage, None);
        let mut with_null = base.clone();
        with_null["usage"] = Value::Null;
        let null: ChatCompletionChunk = serde_json::from_value(with_null.clone()).unwrap();
        assert_eq!(null.usage, Some(None));
        assert_eq!(serde_json::to_value(&null).unwrap(), with_null);
        let last = ChatCompletionChunk::usage("c", 1, "m", Usage::new(9, 12));
        assert_eq!(
            serde_json::to_value(&last).unwrap()["usage"]["total_tokens"],
            21
        );
    }

    #[test]
    fn chunk_constructors_write_whole_chunks() {
        let choice = ChunkChoice::new(0, Delta::text("Hi"), None);
        let with_usage = ChatCompletionChunk::delta("c", 1, "m", choice.clone(), true);
        let expected = json!({
            "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [serde_json::to_value(&choice).unwrap()],
            "usage": null
        });
        assert_eq!(serde_json::to_value(&with_usage).unwrap(), expected);
        let without = ChatCompletionChunk::delta("c", 1, "m", choice, false);
        let mut expected_without = expected;
        expected_without.as_object_mut().unwrap().remove("usage");
        assert_eq!(serde_json::to_value(&without).unwrap(), expected_without);
        let last = ChatCompletionChunk::usage("c", 1, "m", Usage::new(9, 12));
        assert_eq!(
            serde_json::to_value(&last).unwrap(),
            json!({
                "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [],
                "usage": serde_json::to_value(Usage::new(9, 12)).unwrap()
            })
        );
    }
}
