//! The handlers, one module per resource of the API.

pub(crate) mod chat;
pub(crate) mod conversations;
pub(crate) mod health;
pub(crate) mod keys;
pub(crate) mod metrics;
pub(crate) mod models;
pub(crate) mod personas;
