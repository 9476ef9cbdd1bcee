//! The public personas: a model with standing instructions, listed at
//! `/v1/personas` and answering at `/v1/agents/{persona_id}/chat/completions`.

use std::sync::Arc;

use lumyx_api_types::Persona;

use crate::DemoModel;

/// The personas a server offers, in the order it lists them.
///
/// ```
/// use lumyx_server::Personas;
///
/// let personas = Personas::demo();
/// assert!(personas.find("concise").is_some());
/// assert!(personas.find("nobody").is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Personas(Arc<[Persona]>);

impl Personas {
    /// Personas of the caller's choosing.
    pub fn new(personas: impl IntoIterator<Item = Persona>) -> Personas {
        Personas(personas.into_iter().collect())
    }

    /// The demo server's three personas, all answered by the demo model.
    pub fn demo() -> Personas {
        Personas::new([
            Persona::new(
                "concise",
                "Concise",
                "Answers in as few words as will do.",
                DemoModel::MODEL,
                "You answer in one or two short sentences. No preamble, no lists.",
            ),
            Persona::new(
                "tutor",
                "Tutor",
                "Explains step by step and checks understanding.",
                DemoModel::MODEL,
                "You are a patient tutor. Explain step by step, then ask one question \
                 that checks the student understood.",
            ),
            Persona::new(
                "reviewer",
                "Code reviewer",
                "Reviews code for correctness first, then clarity.",
                DemoModel::MINI_MODEL,
                "You review code. Name correctness problems first, with the line they are \
                 on; then clarity; never rewrite the whole thing.",
            ),
        ])
    }

    /// Every persona.
    pub fn all(&self) -> &[Persona] {
        &self.0
    }

    /// The persona with this id.
    pub fn find(&self, id: &str) -> Option<&Persona> {
        self.0.iter().find(|persona| persona.id == id)
    }
}
