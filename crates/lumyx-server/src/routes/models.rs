//! `GET /v1/models` and `GET /v1/models/{id}` (scope `models`): the models
//! the chat model serves, in OpenAI's shapes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use lumyx_api_types::{ApiError, Model, ModelList};

use crate::error::Answer;
use crate::state::AppState;

/// Every model.
pub(crate) async fn list<B>(State(state): State<Arc<AppState<B>>>) -> Json<ModelList> {
    Json(ModelList::new(state.model.models()))
}

/// One model, or 404 `model_not_found`.
pub(crate) async fn show<B>(
    State(state): State<Arc<AppState<B>>>,
    Path(id): Path<String>,
) -> Answer<Json<Model>> {
    state
        .model
        .models()
        .into_iter()
        .find(|model| model.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::model_not_found(&id).into())
}
