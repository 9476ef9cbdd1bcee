//! `/v1/conversations` (scope `conversations`): create, list, show, update,
//! delete, and the messages of one. A conversation is visible only to the
//! owner of the key that created it; another owner gets 404
//! `conversation_not_found`, as for one that does not exist.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use lumyx_api_types::{
    ApiError, Conversation, ConversationDeleted, ConversationList, ConversationMessageList,
    CreateConversationRequest, ListParams, UpdateConversationRequest,
};
use lumyx_gate::Authenticated;

use crate::conversations::StoreError;
use crate::error::{Answer, Failure, unavailable};
use crate::extract::{JsonBody, OptionalJsonBody, PathParam, QueryParams};
use crate::state::AppState;

/// `POST /v1/conversations`: a new conversation of the caller's owner, with
/// its metadata and first messages (an empty body starts an empty one).
pub(crate) async fn create<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    OptionalJsonBody(request): OptionalJsonBody<CreateConversationRequest>,
) -> Answer<Json<Conversation>> {
    let messages = request
        .messages
        .iter()
        .map(|message| {
            let text = message.text().unwrap_or_default().into_owned();
            (message.role.clone(), text)
        })
        .collect();
    state
        .conversations
        .create(&caller.record().owner, request.metadata, messages)
        .await
        .map(Json)
        .map_err(|err| store_failure(&err))
}

/// `GET /v1/conversations`: a page of the caller's owner's conversations.
pub(crate) async fn list<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    QueryParams(page): QueryParams<ListParams>,
) -> Answer<Json<ConversationList>> {
    state
        .conversations
        .list(&caller.record().owner, &page)
        .await
        .map(Json)
        .map_err(|err| store_failure(&err))
}

/// `GET /v1/conversations/{id}`.
pub(crate) async fn show<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    PathParam(id): PathParam,
) -> Answer<Json<Conversation>> {
    found(
        &id,
        state.conversations.get(&caller.record().owner, &id).await,
    )
}

/// `POST /v1/conversations/{id}`: replaces the metadata.
pub(crate) async fn update<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    PathParam(id): PathParam,
    JsonBody(request): JsonBody<UpdateConversationRequest>,
) -> Answer<Json<Conversation>> {
    found(
        &id,
        state
            .conversations
            .update(&caller.record().owner, &id, request.metadata)
            .await,
    )
}

/// `DELETE /v1/conversations/{id}`, with its messages.
pub(crate) async fn delete<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    PathParam(id): PathParam,
) -> Answer<Json<ConversationDeleted>> {
    let deleted = state
        .conversations
        .delete(&caller.record().owner, &id)
        .await
        .map_err(|err| store_failure(&err))?;
    if deleted {
        Ok(Json(ConversationDeleted::new(id)))
    } else {
        Err(ApiError::conversation_not_found(&id).into())
    }
}

/// `GET /v1/conversations/{id}/messages`: a page of its messages.
pub(crate) async fn messages<B>(
    State(state): State<Arc<AppState<B>>>,
    Extension(caller): Extension<Authenticated>,
    PathParam(id): PathParam,
    QueryParams(page): QueryParams<ListParams>,
) -> Answer<Json<ConversationMessageList>> {
    found(
        &id,
        state
            .conversations
            .messages(&caller.record().owner, &id, &page)
            .await,
    )
}

/// The value the store found, else 404 `conversation_not_found`.
fn found<T>(id: &str, found: Result<Option<T>, StoreError>) -> Answer<Json<T>> {
    match found {
        Ok(Some(value)) => Ok(Json(value)),
        Ok(None) => Err(ApiError::conversation_not_found(id).into()),
        Err(err) => Err(store_failure(&err)),
    }
}

/// The answer to a store's failure: 503 while it is unavailable, 400 for an
/// `after` that names nothing or messages a full conversation cannot take,
/// 500 for what it cannot read.
pub(crate) fn store_failure(err: &StoreError) -> Failure {
    match err {
        StoreError::Unavailable(_) => unavailable("the conversation store is unavailable", err),
        StoreError::UnknownCursor => Failure(ApiError::invalid_value(
            "after",
            "expected the id of an item of this list",
        )),
        StoreError::Full { .. } => Failure(ApiError::invalid_value(
            "messages",
            format_args!("{err}; start a new conversation"),
        )),
        StoreError::Corrupt(_) => {
            tracing::error!(
                error = err as &(dyn std::error::Error + 'static),
                "the conversation store failed"
            );
            Failure(ApiError::internal_error())
        }
    }
}
