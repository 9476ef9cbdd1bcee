//! `POST /v1/chat/completions` (scope `chat`) and
//! `POST /v1/agents/{persona_id}/chat/completions` (scope `agents`): the
//! model's reply in OpenAI's shapes, whole or as server-sent events, with
//! Lumyx's `conversation_id` replaying and extending a stored conversation.
//!
//! A streamed reply sends, for each choice in turn, a first chunk with the
//! assistant role, one chunk per piece of text and a last chunk with the
//! finish reason; then, with `stream_options.include_usage`, a chunk with
//! no choices and the usage (every earlier chunk carries `usage: null`);
//! then `data: [DONE]`. An error after the first chunk is sent as an event
//! with OpenAI's error object, and the stream ends without `[DONE]`.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use futures_util::{FutureExt, StreamExt};
use lumyx_api_types::{
    AgentChatRequest, ApiError, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse,
    ChatMessage, Choice, ChunkChoice, ConversationMessage, Delta, Role, Stop, Usage,
};
use lumyx_gate::Authenticated;
use tokio::sync::mpsc;

use crate::conversations::ConversationStore;
use crate::error::{Answer, Failure};
use crate::extract::{JsonBody, PathParam};
use crate::model::{ChatModel, Piece, Prompt};
use crate::random::random_hex;
use crate::routes::conversations::store_failure;
use crate::state::AppState;
use crate::tokens::{count_tokens, prompt_tokens};

/// `POST /v1/chat/completions`.
pub(crate) async fn completions<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    JsonBody(request): JsonBody<ChatCompletionRequest>,
) -> Answer<Response> {
    answer(&state, &caller.record().owner, request, None).await
}

/// `POST /v1/agents/{persona_id}/chat/completions`: the persona's model
/// answers, its instructions first. The instructions are part of every
/// prompt, never of the conversation a `conversation_id` extends.
pub(crate) async fn agent_completions<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    PathParam(persona_id): PathParam,
    JsonBody(request): JsonBody<ChatCompletionRequest>,
) -> Answer<Response> {
    let persona = state
        .personas
        .find(&persona_id)
        .ok_or_else(|| ApiError::persona_not_found(&persona_id))?;
    let mut request =
        AgentChatRequest::new(persona_id.as_str(), request).into_chat_request(persona)?;
    // The persona's instructions, first of the messages: kept apart so that
    // they go before the replayed history and are not stored with it.
    let instructions = request.messages.remove(0);
    answer(&state, &caller.record().owner, request, Some(instructions)).await
}

/// What a reply is made from, whatever route asked for it.
struct Exchange {
    id: String,
    created: i64,
    model: String,
    /// The instructions, the history, then the request's messages: shared
    /// by every choice's prompt.
    messages: Arc<[ChatMessage]>,
    max_tokens: Option<u32>,
    stop: Vec<String>,
    choices: u32,
    prompt_tokens: u32,
    /// Where to store the request's messages and the first choice's reply.
    conversation: Option<(Arc<dyn ConversationStore>, String, String)>,
    /// The request's messages, as a conversation stores them.
    new_messages: Vec<(Role, String)>,
}

impl Exchange {
    fn prompt(&self, choice: u32) -> Prompt {
        Prompt {
            model: self.model.clone(),
            messages: Arc::clone(&self.messages),
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            choice,
        }
    }

    /// Stores the request's messages and `reply` in the conversation, if
    /// there is one.
    async fn remember(&self, reply: String) -> Result<(), Failure> {
        let Some((store, owner, id)) = &self.conversation else {
            return Ok(());
        };
        let mut messages = self.new_messages.clone();
        messages.push((Role::Assistant, reply));
        match store.append(owner, id, messages).await {
            Ok(Some(_)) => Ok(()),
            // Deleted while the model answered.
            Ok(None) => Err(ApiError::conversation_not_found(id).into()),
            Err(err) => Err(store_failure(&err)),
        }
    }
}

/// The most recent messages of a conversation that a chat completion with
/// its `conversation_id` replays (a conversation holds at most
/// [`MAX_MESSAGES_PER_CONVERSATION`](crate::MAX_MESSAGES_PER_CONVERSATION)).
pub const REPLAYED_MESSAGES: usize = 100;

/// The reply to `request` from `owner`'s key; `instructions` (a persona's)
/// come first, before any replayed history.
async fn answer<B>(
    state: &AppState<B>,
    owner: &str,
    request: ChatCompletionRequest,
    instructions: Option<ChatMessage>,
) -> Answer<Response> {
    if state.catalog.find(&request.model).is_none() {
        return Err(ApiError::model_not_found(&request.model).into());
    }
    let mut messages: Vec<ChatMessage> = instructions.into_iter().collect();
    let conversation = match &request.conversation_id {
        Some(id) => {
            let history = state
                .conversations
                .history(owner, id, REPLAYED_MESSAGES)
                .await
                .map_err(|err| store_failure(&err))?
                .ok_or_else(|| ApiError::conversation_not_found(id))?;
            messages.extend(history.iter().map(ConversationMessage::to_chat_message));
            Some((
                Arc::clone(&state.conversations),
                owner.to_owned(),
                id.clone(),
            ))
        }
        None => None,
    };
    messages.extend(request.messages.iter().cloned());
    let exchange = Exchange {
        id: format!("chatcmpl-{}", random_hex(12)),
        created: Utc::now().timestamp(),
        model: request.model.clone(),
        prompt_tokens: prompt_tokens(&messages),
        messages: messages.into(),
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        stop: match &request.stop {
            None => Vec::new(),
            Some(Stop::One(stop)) => vec![stop.clone()],
            Some(Stop::Many(stops)) => stops.clone(),
        },
        choices: request.n.unwrap_or(1),
        conversation,
        new_messages: request
            .messages
            .iter()
            .map(|message| {
                let text = message.text().unwrap_or_default().into_owned();
                (message.role.clone(), text)
            })
            .collect(),
    };
    if request.is_stream() {
        return Ok(stream(
            Arc::clone(&state.model),
            exchange,
            request.include_usage(),
        ));
    }
    let mut choices = Vec::new();
    let mut completion_tokens: u32 = 0;
    for choice in 0..exchange.choices {
        // A model that answers at once must still let the deadline, and
        // the other requests of this thread, have their turn.
        tokio::task::yield_now().await;
        let completion = state.model.complete(&exchange.prompt(choice)).await?;
        completion_tokens = completion_tokens.saturating_add(count_tokens(&completion.text));
        choices.push(Choice::new(
            choice,
            completion.text,
            completion.finish_reason,
        ));
    }
    let first_reply = choices
        .first()
        .and_then(|choice| choice.message.content.clone())
        .unwrap_or_default();
    exchange.remember(first_reply).await?;
    let usage = Usage::new(exchange.prompt_tokens, completion_tokens);
    let response = ChatCompletionResponse::new(
        exchange.id,
        exchange.created,
        exchange.model,
        choices,
        Some(usage),
    );
    Ok(Json(response).into_response())
}

/// The reply as server-sent events, made by a task that ends with the
/// stream (or when the client goes away).
fn stream(model: Arc<dyn ChatModel>, exchange: Exchange, include_usage: bool) -> Response {
    let (events, receiver) = mpsc::channel::<Event>(32);
    tokio::spawn(async move {
        // A send fails only once the client has gone: stop there.
        let sent = AssertUnwindSafe(send_reply(&*model, &exchange, include_usage, &events))
            .catch_unwind()
            .await;
        if sent.is_err() {
            tracing::error!("a streamed reply panicked");
            let _ = send(&events, error_event(&ApiError::internal_error())).await;
        }
    });
    let events = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), receiver))
    });
    Sse::new(events).into_response()
}

/// The client went away.
struct Gone;

async fn send_reply(
    model: &dyn ChatModel,
    exchange: &Exchange,
    include_usage: bool,
    events: &mpsc::Sender<Event>,
) -> Result<(), Gone> {
    let chunk = |choice: ChunkChoice| {
        ChatCompletionChunk::delta(
            exchange.id.clone(),
            exchange.created,
            exchange.model.clone(),
            choice,
            include_usage,
        )
    };
    let mut completion_tokens: u32 = 0;
    let mut first_reply = String::new();
    for choice in 0..exchange.choices {
        tokio::task::yield_now().await;
        send(
            events,
            json_event(&chunk(ChunkChoice::new(choice, Delta::start(), None))),
        )
        .await?;
        let mut pieces = match model.stream(exchange.prompt(choice)).await {
            Ok(pieces) => pieces,
            Err(error) => return send(events, error_event(&error)).await,
        };
        while let Some(piece) = pieces.next().await {
            match piece {
                Ok(Piece::Text(text)) => {
                    completion_tokens = completion_tokens.saturating_add(count_tokens(&text));
                    if choice == 0 {
                        first_reply.push_str(&text);
                    }
                    let delta = ChunkChoice::new(choice, Delta::text(text), None);
                    send(events, json_event(&chunk(delta))).await?;
                }
                Ok(Piece::Finished(reason)) => {
                    let last = ChunkChoice::new(choice, Delta::default(), Some(reason));
                    send(events, json_event(&chunk(last))).await?;
                    break;
                }
                Err(error) => return send(events, error_event(&error)).await,
            }
        }
    }
    if include_usage {
        let usage = ChatCompletionChunk::usage(
            exchange.id.clone(),
            exchange.created,
            exchange.model.clone(),
            Usage::new(exchange.prompt_tokens, completion_tokens),
        );
        send(events, json_event(&usage)).await?;
    }
    if let Err(Failure(error)) = exchange.remember(first_reply).await {
        return send(events, error_event(&error)).await;
    }
    send(events, Event::default().data("[DONE]")).await
}

async fn send(events: &mpsc::Sender<Event>, event: Event) -> Result<(), Gone> {
    events.send(event).await.map_err(|_| Gone)
}

fn json_event(value: &impl serde::Serialize) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

/// OpenAI's error object as a stream event.
fn error_event(error: &ApiError) -> Event {
    tracing::warn!(code = ?error.code(), "a streamed reply failed");
    json_event(error)
}
