//! `GET /v1/personas` and `GET /v1/personas/{id}` (scope `personas`): the
//! public personas.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use lumyx_api_types::{ApiError, Persona, PersonaList};

use crate::error::Answer;
use crate::extract::PathParam;
use crate::state::AppState;

/// Every persona.
pub(crate) async fn list<B>(State(state): State<Arc<AppState<B>>>) -> Json<PersonaList> {
    Json(PersonaList::new(state.personas.all().to_vec()))
}

/// One persona, or 404 `persona_not_found`.
pub(crate) async fn show<B>(
    State(state): State<Arc<AppState<B>>>,
    PathParam(id): PathParam,
) -> Answer<Json<Persona>> {
    state
        .personas
        .find(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::persona_not_found(&id).into())
}
