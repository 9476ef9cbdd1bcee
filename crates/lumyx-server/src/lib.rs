#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod config;
mod conversations;
mod dashboard;
mod deadline;
mod durable;
mod error;
mod extract;
mod logging;
mod metrics;
mod model;
mod personas;
mod program;
mod random;
mod request_id;
mod router;
mod routes;
mod server;
mod state;
mod tokens;

pub use admin::AdminToken;
pub use config::{Config, ConfigError, DEFAULT_DATA_DIR, LogFormat, StoreConfig};
pub use conversations::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, MemoryConversations,
    RedisConversations, RedisConversationsBuilder, SqliteConversations, StoreError,
};
pub use durable::DataDirError;
pub use logging::init_logging;
pub use model::{ChatModel, Completion, DemoModel, Piece, Prompt, TextStream};
pub use personas::Personas;
pub use program::run_from_env;
pub use routes::chat::REPLAYED_MESSAGES;
pub use server::{AdminTokenSource, DEMO_OWNER, RunningServer, Server, StartError, Started};
pub use tokens::count_tokens;
