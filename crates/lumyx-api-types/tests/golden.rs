//! Golden fixtures: OpenAI's documented JSON (and Lumyx's own shapes) read
//! into the typed models and written back equal as JSON values.

use std::fs;
use std::path::PathBuf;

use lumyx_api_types::{
    ApiError, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, Conversation,
    ConversationDeleted, ConversationMessageList, CreateKeyRequest, CreatedKey, ErrorCode,
    FinishReason, KeyRecord, KeyUsage, ListPage, Model, ModelList, PersonaList, Role,
    RotateKeyRequest, Validate,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads the fixture as `T`, writes it back and compares JSON values; a
/// second read of the written JSON gives the same typed value.
fn round_trip<T>(name: &str) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let text = fixture(name);
    let expected: Value = serde_json::from_str(&text).unwrap();
    let typed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = serde_json::to_value(&typed).unwrap();
    assert_eq!(written, expected, "{name} is not written back as read");
    let again: T = serde_json::from_value(written).unwrap();
    assert_eq!(again, typed, "{name} reads differently the second time");
    typed
}

#[test]
fn chat_request_documented_example() {
    let request: ChatCompletionRequest = round_trip("chat_request.json");
    request.validate().unwrap();
    assert_eq!(request.model, "gpt-4.1");
    assert_eq!(request.messages[0].role, Role::Developer);
    assert_eq!(request.last_user_text().unwrap(), "Hello!");
    assert!(!request.is_stream());
}

#[test]
fn chat_request_streaming_with_usage() {
    let request: ChatCompletionRequest = round_trip("chat_request_stream.json");
    request.validate().unwrap();
    assert!(request.is_stream());
    assert!(request.include_usage());
}

#[test]
fn chat_request_with_image_parts() {
    let request: ChatCompletionRequest = round_trip("chat_request_vision.json");
    request.validate().unwrap();
    assert_eq!(request.max_tokens, Some(300));
    assert_eq!(request.last_user_text().unwrap(), "What's in this image?");
}

#[test]
fn chat_request_with_tools_and_every_typed_field() {
    let request: ChatCompletionRequest = round_trip("chat_request_tools.json");
    request.validate().unwrap();
    assert_eq!(request.tools.as_ref().unwrap().len(), 1);
    assert_eq!(request.tool_choice.as_ref().unwrap(), "auto");
    assert_eq!(request.conversation_id.as_deref(), Some("conv_68a1f2"));
    assert_eq!(request.extra.len(), 2, "seed and response_format are kept");
    assert_eq!(request.extra["seed"], 42);
    let assistant = &request.messages[1];
    assert_eq!(assistant.content, None);
    assert_eq!(assistant.tool_calls.as_ref().unwrap()[0].id, "call_abc123");
    assert_eq!(
        request.messages[2].tool_call_id.as_deref(),
        Some("call_abc123")
    );
}

#[test]
fn chat_response_documented_example() {
    let response: ChatCompletionResponse = round_trip("chat_response.json");
    assert_eq!(response.object, ChatCompletionResponse::OBJECT);
    assert_eq!(response.choices[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(response.usage.as_ref().unwrap().total_tokens, 1163);
}

#[test]
fn chat_response_with_tool_calls() {
    let response: ChatCompletionResponse = round_trip("chat_response_tool_calls.json");
    let message = &response.choices[0].message;
    assert_eq!(message.content, None);
    let call = &message.tool_calls.as_ref().unwrap()[0];
    assert_eq!(call.function.as_ref().unwrap().name, "get_current_weather");
    assert_eq!(
        response.choices[0].finish_reason,
        Some(FinishReason::ToolCalls)
    );
}

#[test]
fn chat_stream_chunks_documented_example() {
    let chunks: Vec<ChatCompletionChunk> = round_trip("chat_chunks.json");
    assert_eq!(chunks.len(), 3);
    assert!(chunks.iter().all(|chunk| chunk.usage.is_none()));
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[2].choices[0].finish_reason, Some(FinishReason::Stop));
}

#[test]
fn chat_stream_chunks_with_final_usage_chunk() {
    let chunks: Vec<ChatCompletionChunk> = round_trip("chat_chunks_usage.json");
    let (last, before) = chunks.split_last().unwrap();
    assert!(before.iter().all(|chunk| chunk.usage == Some(None)));
    assert!(last.choices.is_empty());
    let usage = last.usage.clone().flatten().unwrap();
    assert_eq!((usage.prompt_tokens, usage.total_tokens), (9, 21));
}

#[test]
fn model_list_and_model_documented_examples() {
    let list: ModelList = round_trip("models_list.json");
    assert_eq!(list.data.len(), 3);
    assert_eq!(list.data[2].owned_by, "openai");
    let model: Model = round_trip("model.json");
    assert_eq!(model, Model::new("gpt-4o", 1686935002, "openai"));
}

#[test]
fn error_documented_example() {
    let error: ApiError = round_trip("error.json");
    assert_eq!(error.code(), Some(&ErrorCode::InvalidApiKey));
    assert_eq!(error.status().as_u16(), 401);
    assert_eq!(error.param(), None);
}

#[test]
fn error_with_a_type_this_crate_does_not_know() {
    let error: ApiError = round_trip("error_rate_limit.json");
    assert_eq!(error.error_type().as_str(), "requests");
    assert_eq!(error.code(), Some(&ErrorCode::RateLimitExceeded));
    assert_eq!(error.status().as_u16(), 429);
}

#[test]
fn lumyx_personas() {
    let list: PersonaList = round_trip("lumyx_personas_list.json");
    assert_eq!(list.data[0].model, "nova_1_1");
}

#[test]
fn lumyx_conversations() {
    let conversation: Conversation = round_trip("lumyx_conversation.json");
    assert_eq!(conversation.metadata.unwrap()["topic"], "demo");
    let page: ConversationMessageList = round_trip("lumyx_conversation_messages.json");
    assert_eq!(page.first_id.as_deref(), Some("msg_001"));
    assert_eq!(page.data[1].role, Role::Assistant);
    let deleted: ConversationDeleted = round_trip("lumyx_conversation_deleted.json");
    assert_eq!(deleted, ConversationDeleted::new("conv_68a1f2"));
}

#[test]
fn lumyx_keys() {
    let request: CreateKeyRequest = round_trip("lumyx_key_create_request.json");
    request.validate().unwrap();
    let created: CreatedKey = round_trip("lumyx_key_created.json");
    assert_eq!(created.record.id, "key_4e58d9f4757ccfc3");
    assert!(created.expose_key().ends_with("ece76dce"));
    let list: ListPage<KeyRecord> = round_trip("lumyx_key_list.json");
    assert_eq!(list.data[0].revoked_at, Some(1764316800));
    let rotate: RotateKeyRequest = round_trip("lumyx_key_rotate_request.json");
    assert_eq!(rotate.grace_period_seconds, Some(86_400));
    let no_grace: RotateKeyRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(no_grace, RotateKeyRequest::default());
    let usage: KeyUsage = round_trip("lumyx_key_usage.json");
    assert_eq!(
        usage.total.denied_by_reason[&ErrorCode::RateLimitExceeded],
        27
    );
    assert_eq!(usage.days[1].date, "2026-11-30");
    assert_eq!(usage.days[1].counts.admitted, 998);
    assert_eq!(usage.limits.unwrap().day.reset, 41_000);
}
