//! The chat model behind the API: a trait, so that a real model is one
//! implementation away, and the deterministic demo responder the example
//! server runs (no network, no weights).
//!
//! ```
//! use async_trait::async_trait;
//! use lumyx_api_types::{ApiError, FinishReason, Model};
//! use lumyx_server::{ChatModel, Completion, Prompt};
//!
//! /// A model that answers every prompt with the same line.
//! struct Parrot;
//!
//! #[async_trait]
//! impl ChatModel for Parrot {
//!     fn models(&self) -> Vec<Model> {
//!         vec![Model::new("parrot-1", 1_764_460_800, "acme")]
//!     }
//!
//!     async fn complete(&self, _prompt: &Prompt) -> Result<Completion, ApiError> {
//!         // A real model calls its inference service here.
//!         Ok(Completion::new("Polly wants a cracker.", FinishReason::Stop))
//!     }
//! }
//! ```
//!
//! `Server::with_model` serves such a model instead of the demo one.
//! [`ChatModel::stream`] has a default that streams a completion word by
//! word; a model that generates incrementally overrides it.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::Stream;
use lumyx_api_types::{ApiError, ChatMessage, FinishReason, Model, Role};

use crate::tokens::count_tokens;

/// What a model is asked: the model's id, the whole conversation (the
/// stored history and a persona's instructions included), and the request's
/// bounds on the reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The model's id, one of [`ChatModel::models`].
    pub model: String,
    /// The messages, oldest first (shared by the choices of one request).
    pub messages: Arc<[ChatMessage]>,
    /// The most tokens the reply may have (`max_completion_tokens`, else
    /// `max_tokens`), counted as [`count_tokens`] does.
    pub max_tokens: Option<u32>,
    /// Sequences at which the reply stops (they are not part of it).
    pub stop: Vec<String>,
    /// Which of the request's `n` choices this is, from 0.
    pub choice: u32,
}

/// A model's reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The reply's text.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

impl Completion {
    /// A reply of `text` that ended for `finish_reason`.
    pub fn new(text: impl Into<String>, finish_reason: FinishReason) -> Completion {
        Completion {
            text: text.into(),
            finish_reason,
        }
    }
}

/// One piece of a streamed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// More text.
    Text(String),
    /// The reply ended, for this reason; the last piece.
    Finished(FinishReason),
}

/// A streamed reply: pieces of text, then [`Piece::Finished`].
pub type TextStream = Pin<Box<dyn Stream<Item = Result<Piece, ApiError>> + Send>>;

/// A chat model.
#[async_trait]
pub trait ChatModel: Send + Sync + 'static {
    /// The models served, as `GET /v1/models` lists them.
    fn models(&self) -> Vec<Model>;

    /// The reply to `prompt`, whole.
    ///
    /// # Errors
    /// The error the API answers with (a model that is down: 503).
    async fn complete(&self, prompt: &Prompt) -> Result<Completion, ApiError>;

    /// The reply to `prompt`, in pieces. By default [`complete`]'s reply,
    /// one word (with the whitespace before the next) a piece.
    ///
    /// # Errors
    /// As [`complete`]: before the first piece. An error in the middle of
    /// the stream is an item of it.
    ///
    /// [`complete`]: ChatModel::complete
    async fn stream(&self, prompt: Prompt) -> Result<TextStream, ApiError> {
        let completion = self.complete(&prompt).await?;
        let pieces: Vec<Result<Piece, ApiError>> = completion
            .text
            .split_inclusive(char::is_whitespace)
            .map(|word| Ok(Piece::Text(word.to_owned())))
            .chain([Ok(Piece::Finished(completion.finish_reason))])
            .collect();
        Ok(Box::pin(futures_util::stream::iter(pieces)))
    }
}

/// The demo responder: a deterministic reply that quotes the last user
/// message (keys in it shown as their hints), says how long the
/// conversation is, and follows the request's `max_tokens` and `stop`.
///
/// ```
/// # tokio_test_block_on(async {
/// use lumyx_api_types::{ChatMessage, FinishReason};
/// use lumyx_server::{ChatModel, DemoModel, Prompt};
///
/// let prompt = Prompt {
///     model: "nova_1_1".into(),
///     messages: vec![ChatMessage::user("Hello there")].into(),
///     max_tokens: None,
///     stop: vec![],
///     choice: 0,
/// };
/// let reply = DemoModel.complete(&prompt).await.unwrap();
/// assert_eq!(
///     reply.text,
///     "You said: \"Hello there\". This is the nova_1_1 demo reply, to a conversation of 1 message."
/// );
/// assert_eq!(reply.finish_reason, FinishReason::Stop);
/// # });
/// # fn tokio_test_block_on(f: impl std::future::Future<Output = ()>) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DemoModel;

impl DemoModel {
    /// The model every demo server lists.
    pub const MODEL: &'static str = "nova_1_1";
    /// A smaller sibling, so that lists have more than one entry.
    pub const MINI_MODEL: &'static str = "nova_1_1_mini";
    /// Unix seconds the demo models were "released": 2026-11-30T00:00:00Z.
    pub const CREATED: i64 = 1_795_996_800;
    /// How much of the last user message the reply quotes, in characters.
    pub const QUOTED_CHARS: usize = 200;
}

#[async_trait]
impl ChatModel for DemoModel {
    fn models(&self) -> Vec<Model> {
        vec![
            Model::new(DemoModel::MODEL, DemoModel::CREATED, "lumyx"),
            Model::new(DemoModel::MINI_MODEL, DemoModel::CREATED, "lumyx"),
        ]
    }

    async fn complete(&self, prompt: &Prompt) -> Result<Completion, ApiError> {
        let said = prompt
            .messages
            .iter()
            .rev()
            .find(|message| message.role == Role::User)
            .and_then(ChatMessage::text)
            .map(|text| {
                let text = lumyx_keys::redact(text.trim());
                let mut quoted: String = text.chars().take(DemoModel::QUOTED_CHARS).collect();
                if text.chars().count() > DemoModel::QUOTED_CHARS {
                    quoted.push('…');
                }
                quoted
            })
            .unwrap_or_default();
        let count = prompt.messages.len();
        let mut text = format!(
            "You said: \"{said}\". This is the {} demo reply, to a conversation of {count} message{}.",
            prompt.model,
            if count == 1 { "" } else { "s" }
        );
        if prompt.choice > 0 {
            text.push_str(&format!(" (Choice {}.)", prompt.choice + 1));
        }
        Ok(bounded(text, prompt))
    }
}

/// `text` cut at the first stop sequence, then to the prompt's most tokens.
fn bounded(mut text: String, prompt: &Prompt) -> Completion {
    let mut finish_reason = FinishReason::Stop;
    let first_stop = prompt
        .stop
        .iter()
        .filter(|stop| !stop.is_empty())
        .filter_map(|stop| text.find(stop.as_str()))
        .min();
    if let Some(at) = first_stop {
        text.truncate(at);
    }
    if let Some(max) = prompt.max_tokens
        && count_tokens(&text) > max
    {
        // The longest prefix of whole words within the bound.
        let mut end = 0;
        for (at, _) in text
            .char_indices()
            .filter(|(_, c)| c.is_whitespace())
            .chain([(text.len(), ' ')])
        {
            if count_tokens(&text[..at]) > max {
                break;
            }
            end = at;
        }
        text.truncate(end);
        finish_reason = FinishReason::Length;
    }
    Completion::new(text, finish_reason)
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn prompt(text: &str) -> Prompt {
        Prompt {
            model: DemoModel::MODEL.into(),
            messages: vec![ChatMessage::system("Be kind."), ChatMessage::user(text)].into(),
            max_tokens: None,
            stop: vec![],
            choice: 0,
        }
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn the_reply_is_deterministic_and_quotes_the_last_user_message() {
        let one = run(DemoModel.complete(&prompt("ping"))).unwrap();
        let two = run(DemoModel.complete(&prompt("ping"))).unwrap();
        assert_eq!(one, two);
        assert!(one.text.starts_with("You said: \"ping\"."), "{}", one.text);
        assert!(one.text.contains("2 messages"));
    }

    #[test]
    fn a_key_in_the_message_is_quoted_as_its_hint() {
        let key = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
        let reply = run(DemoModel.complete(&prompt(&format!("my key is {key}")))).unwrap();
        assert!(!reply.text.contains(key));
        assert!(reply.text.contains("nova_0123…6dce"), "{}", reply.text);
    }

    #[test]
    fn stop_sequences_and_max_tokens_bound_the_reply() {
        let mut stopped = prompt("ping");
        stopped.stop = vec!["demo".into(), "".into()];
        let reply = run(DemoModel.complete(&stopped)).unwrap();
        assert_eq!(reply.text, "You said: \"ping\". This is the nova_1_1 ");
        assert_eq!(reply.finish_reason, FinishReason::Stop);

        for max in [0, 1, 5, 12] {
            let mut short = prompt("ping");
            short.max_tokens = Some(max);
            let reply = run(DemoModel.complete(&short)).unwrap();
            assert!(count_tokens(&reply.text) <= max, "{max}: {}", reply.text);
            assert_eq!(reply.finish_reason, FinishReason::Length);
        }
        let mut roomy = prompt("ping");
        roomy.max_tokens = Some(1000);
        assert_eq!(
            run(DemoModel.complete(&roomy)).unwrap().finish_reason,
            FinishReason::Stop
        );
    }

    #[test]
    fn the_default_stream_is_the_completion_in_pieces() {
        let whole = run(DemoModel.complete(&prompt("ping"))).unwrap();
        let pieces: Vec<Piece> = run(async {
            let stream = DemoModel.stream(prompt("ping")).await.unwrap();
            stream.map(Result::unwrap).collect().await
        });
        let (last, text) = pieces.split_last().unwrap();
        assert_eq!(*last, Piece::Finished(FinishReason::Stop));
        let joined: String = text
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Finished(_) => panic!("finished twice"),
            })
            .collect();
        assert_eq!(joined, whole.text);
        assert!(text.len() > 5);
    }
}
