//! Chat completions: `POST /v1/chat/completions` in OpenAI's shapes, plus
//! Lumyx's `conversation_id`.
//!
//! One module per part of the exchange: `request` (the body and its
//! messages), `content` (the parts of a message's content), `reader` (how the
//! body and its messages are read from JSON), `response` (the answer) and
//! `stream` (the chunks of a streamed answer).

mod content;
mod reader;
mod request;
mod response;
mod stream;

pub use content::{ContentPart, FileRef, ImageUrl, InputAudio, MessageContent};
pub use request::{ChatCompletionRequest, ChatMessage, Metadata, Stop, StreamOptions};
pub use response::{
    ChatCompletionResponse, Choice, CompletionTokensDetails, FinishReason, FunctionCall,
    PromptTokensDetails, ResponseMessage, ToolCall, ToolType, Usage,
};
pub use stream::{ChatCompletionChunk, ChunkChoice, Delta, FunctionCallChunk, ToolCallChunk};
