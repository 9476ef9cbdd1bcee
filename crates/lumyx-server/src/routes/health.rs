//! `GET /health`: liveness, without authentication.

use axum::Json;
use serde_json::{Value, json};

/// `{"status":"ok"}` while the process serves.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}
