//! Personas: `GET /v1/personas` and `GET /v1/personas/{id}`.

use serde::{Deserialize, Serialize};

use crate::list::List;

/// A public persona: a model with standing instructions
/// (`object: "persona"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Persona {
    /// The id used in `/v1/agents/{id}/chat/completions`.
    pub id: String,
    /// Always `persona`.
    #[serde(default = "persona_object")]
    pub object: String,
    /// Display name.
    pub name: String,
    /// What the persona is for.
    pub description: String,
    /// The model that answers as this persona.
    pub model: String,
    /// The instructions sent first, as a `system` message.
    pub instructions: String,
}

fn persona_object() -> String {
    Persona::OBJECT.to_owned()
}

impl Persona {
    /// The `object` value of a persona.
    pub const OBJECT: &'static str = "persona";

    /// A persona.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        description: impl Into<String>,
        model: impl Into<String>,
        instructions: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            object: persona_object(),
            name: name.into(),
            description: description.into(),
            model: model.into(),
            instructions: instructions.into(),
        }
    }
}

/// The answer of `GET /v1/personas`.
pub type PersonaList = List<Persona>;
