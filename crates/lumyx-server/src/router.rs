//! The routes of the API (SPEC §5), the scope each one needs, and the
//! layers every request goes through, outermost first: its request id, its
//! span, metrics and log line, then a panic's 500 envelope, then routing
//! (404 and 405 in the envelope before any authentication), then the gate
//! or the admin token, then the deadline, then the handler with its body
//! limit.

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lumyx_api_types::ApiError;
use lumyx_gate::{Backend, GateLayer};
use lumyx_keys::Scope;
use tower_http::catch_panic::CatchPanicLayer;
use tower_layer::Stack;

use crate::admin::require_admin;
use crate::dashboard;
use crate::deadline::DeadlineLayer;
use crate::error::Failure;
use crate::extract::BODY_LIMIT;
use crate::logging::observe;
use crate::request_id::request_id;
use crate::routes::{chat, conversations, health, keys, metrics, models, personas};
use crate::state::AppState;

/// The whole API over `state`.
pub(crate) fn router<B: Backend>(state: Arc<AppState<B>>) -> Router {
    let metrics = Arc::clone(&state.metrics);
    let deadline = DeadlineLayer::new(state.request_timeout);
    // A keyed route: its deadline inside the gate, so that a late answer
    // still carries the key's headers. Both in one layer, so that axum
    // boxes (and clones, per request) the route's service once for the two.
    let gate = |scope: Scope| Stack::new(deadline, GateLayer::new(Arc::clone(&state.gate), scope));
    let keyed = Router::new()
        .route(
            "/v1/models",
            get(models::list::<B>).route_layer(gate(Scope::Models)),
        )
        .route(
            "/v1/models/{id}",
            get(models::show::<B>).route_layer(gate(Scope::Models)),
        )
        .route(
            "/v1/chat/completions",
            post(chat::completions::<B>).route_layer(gate(Scope::Chat)),
        )
        .route(
            "/v1/personas",
            get(personas::list::<B>).route_layer(gate(Scope::Personas)),
        )
        .route(
            "/v1/personas/{id}",
            get(personas::show::<B>).route_layer(gate(Scope::Personas)),
        )
        .route(
            "/v1/agents/{persona_id}/chat/completions",
            post(chat::agent_completions::<B>).route_layer(gate(Scope::Agents)),
        )
        .route(
            "/v1/conversations",
            post(conversations::create::<B>)
                .get(conversations::list::<B>)
                .route_layer(gate(Scope::Conversations)),
        )
        .route(
            "/v1/conversations/{id}",
            get(conversations::show::<B>)
                .post(conversations::update::<B>)
                .delete(conversations::delete::<B>)
                .route_layer(gate(Scope::Conversations)),
        )
        .route(
            "/v1/conversations/{id}/messages",
            get(conversations::messages::<B>).route_layer(gate(Scope::Conversations)),
        );
    let admin = Router::new()
        .route("/v1/keys", post(keys::create::<B>).get(keys::list::<B>))
        .route(
            "/v1/keys/{id}",
            get(keys::show::<B>)
                .post(keys::update::<B>)
                .delete(keys::revoke::<B>),
        )
        .route("/v1/keys/{id}/rotate", post(keys::rotate::<B>))
        .route("/v1/keys/{id}/usage", get(keys::usage::<B>))
        .route("/metrics", get(metrics::render::<B>))
        .layer(deadline)
        .route_layer(from_fn_with_state(state.admin_token, require_admin));
    Router::new()
        .route("/health", get(health::health).layer(deadline))
        .route("/dashboard", get(dashboard::page))
        .route("/dashboard/dashboard.css", get(dashboard::style))
        .route("/dashboard/dashboard.js", get(dashboard::script))
        .merge(keyed)
        .merge(admin)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(state)
        .layer(from_fn_with_state(metrics, observe))
        .layer(from_fn(request_id))
}

/// 500 `internal_error` for a handler that panicked (the panic is logged
/// by the panic hook; its message is not shown to the client).
fn panicked(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    Failure(ApiError::internal_error()).into_response()
}

/// 404 `not_found` for a path no route has.
async fn not_found(method: Method, uri: Uri) -> Failure {
    Failure(ApiError::not_found(method.as_str(), uri.path()))
}

/// 405 `method_not_allowed` for a route's path with another method.
async fn method_not_allowed(method: Method, uri: Uri) -> Failure {
    Failure(ApiError::method_not_allowed(method.as_str(), uri.path()))
}

/// The template of the route `path` matches (`/v1/conversations/{id}`), for
/// logs and metrics: never the client's own path, so their values stay
/// bounded. `unmatched` for any other path.
pub(crate) fn route_template(path: &str) -> &'static str {
    let mut segments = path.trim_end_matches('/').split('/').skip(1);
    let parts: [Option<&str>; 5] = std::array::from_fn(|_| segments.next());
    if segments.next().is_some() {
        return "unmatched";
    }
    match parts {
        [Some("health"), None, ..] => "/health",
        [Some("dashboard"), None, ..] => "/dashboard",
        [Some("dashboard"), Some(_), None, ..] => "/dashboard/{asset}",
        [Some("metrics"), None, ..] => "/metrics",
        [Some("v1"), Some("models"), None, ..] => "/v1/models",
        [Some("v1"), Some("models"), Some(_), None, ..] => "/v1/models/{id}",
        [Some("v1"), Some("chat"), Some("completions"), None, ..] => "/v1/chat/completions",
        [Some("v1"), Some("personas"), None, ..] => "/v1/personas",
        [Some("v1"), Some("personas"), Some(_), None, ..] => "/v1/personas/{id}",
        [
            Some("v1"),
            Some("agents"),
            Some(_),
            Some("chat"),
            Some("completions"),
        ] => "/v1/agents/{persona_id}/chat/completions",
        [Some("v1"), Some("conversations"), None, ..] => "/v1/conversations",
        [Some("v1"), Some("conversations"), Some(_), None, ..] => "/v1/conversations/{id}",
        [
            Some("v1"),
            Some("conversations"),
            Some(_),
            Some("messages"),
            None,
        ] => "/v1/conversations/{id}/messages",
        [Some("v1"), Some("keys"), None, ..] => "/v1/keys",
        [Some("v1"), Some("keys"), Some(_), None, ..] => "/v1/keys/{id}",
        [Some("v1"), Some("keys"), Some(_), Some("rotate"), None] => "/v1/keys/{id}/rotate",
        [Some("v1"), Some("keys"), Some(_), Some("usage"), None] => "/v1/keys/{id}/usage",
        _ => "unmatched",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_nothing_else() {
        for (path, template) in [
            ("/health", "/health"),
            ("/v1/models", "/v1/models"),
            ("/v1/models/nova_1_1", "/v1/models/{id}"),
            ("/v1/chat/completions", "/v1/chat/completions"),
            (
                "/v1/agents/tutor/chat/completions",
                "/v1/agents/{persona_id}/chat/completions",
            ),
            (
                "/v1/conversations/conv_1/messages",
                "/v1/conversations/{id}/messages",
            ),
            ("/v1/keys/key_1/usage", "/v1/keys/{id}/usage"),
            ("/v1/keys/key_1/rotate", "/v1/keys/{id}/rotate"),
            ("/v1/nope", "unmatched"),
            ("/v1/conversations/a/b/c/d", "unmatched"),
            ("/", "unmatched"),
        ] {
            assert_eq!(route_template(path), template, "{path}");
        }
    }
}
