#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[macro_use]
mod wire;

mod agents;
mod chat;
mod client_text;
mod conversations;
mod error;
mod json_path;
mod keys;
mod limits;
mod list;
mod models;
mod personas;
mod role;
mod validation;

pub use agents::{AgentChatChunk, AgentChatRequest, AgentChatResponse};
pub use chat::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage, Choice,
    ChunkChoice, CompletionTokensDetails, ContentPart, Delta, FileRef, FinishReason, FunctionCall,
    FunctionCallChunk, ImageUrl, InputAudio, MessageContent, Metadata, PromptTokensDetails,
    ResponseMessage, Stop, StreamOptions, ToolCall, ToolCallChunk, ToolType, Usage,
};
pub use conversations::{
    Conversation, ConversationDeleted, ConversationList, ConversationMessage,
    ConversationMessageList, CreateConversationRequest, UpdateConversationRequest,
};
pub use error::{ApiError, ErrorCode, ErrorType};
pub use keys::{
    CreateKeyRequest, CreatedKey, DayUsage, KeyListParams, KeyRecord, KeyUsage, LimitState,
    RotateKeyRequest, Scope, UpdateKeyRequest, UsageCounts, UsageLimits,
};
pub use limits::{
    CHOICES_RANGE, DAILY_LIMIT_RANGE, DEFAULT_DAILY_LIMIT, DEFAULT_LIST_LIMIT,
    DEFAULT_RATE_LIMIT_PER_MINUTE, EXPIRES_AT_RANGE, LIST_LIMIT_RANGE, MAX_GRACE_PERIOD_SECONDS,
    METADATA_MAX_KEY_CHARS, METADATA_MAX_PAIRS, METADATA_MAX_VALUE_CHARS, MIN_CHOICES,
    RATE_LIMIT_PER_MINUTE_RANGE, TEMPERATURE_RANGE, TOP_P_RANGE,
};
pub use list::{LIST_OBJECT, List, ListOrder, ListPage, ListParams};
pub use models::{Model, ModelList};
pub use personas::{Persona, PersonaList};
pub use role::Role;
pub use validation::{
    MAX_LABEL_CHARS, Validate, check_daily_limit, check_rate_limit_per_minute, from_json_slice,
    from_json_str, parse_json,
};
