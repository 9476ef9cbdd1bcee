//! `GET /v1/models` and `GET /v1/models/{id}` (scope `models`): the models
//! the chat model serves, in OpenAI's shapes.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use lumyx_api_types::{ApiError, Model};

use crate::error::Answer;
use crate::extract::PathParam;
use crate::state::AppState;

/// Every model (the body rendered once, at start).
pub(crate) async fn list<B>(State(state): State<Arc<AppState<B>>>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "application/json")],
        state.catalog.list_body(),
    )
}

/// One model, or 404 `model_not_found`.
pub(crate) async fn show<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
) -> Answer<Json<Model>> {
    state
        .catalog
        .find(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::model_not_found(&id).into())
}
