//! Models: `GET /v1/models` and `GET /v1/models/{id}` in OpenAI's shapes.

use serde::{Deserialize, Serialize};

use crate::list::List;

/// A model the API serves (`object: "model"`). `created` is in Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// The model id used in requests.
    pub id: String,
    /// Always `model`.
    pub object: String,
    /// Unix seconds of creation.
    pub created: i64,
    /// The organization that owns the model.
    pub owned_by: String,
}

impl Model {
    /// The `object` value of a model.
    pub const OBJECT: &'static str = "model";

    /// A model object.
    pub fn new(id: impl Into<String>, created: i64, owned_by: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            object: Self::OBJECT.to_owned(),
            created,
            owned_by: owned_by.into(),
        }
    }
}

/// The answer of `GET /v1/models`.
pub type ModelList = List<Model>;
