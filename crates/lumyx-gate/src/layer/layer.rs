//! [`GateLayer`]: a gate and the scope of the routes it guards.

use std::fmt;
use std::sync::Arc;

use lumyx_keys::Scope;
use lumyx_ratelimit::SystemClock;
use tower_layer::Layer;

use super::GateService;
use crate::Gate;

/// Puts a [`Gate`] in front of a service, for routes of one [`Scope`].
///
/// Every request is checked before the inner service sees it, in the order
/// of the API's error table (header, key, expiry, revocation, scope, then
/// the limits):
///
/// - **Denied**: the response is the refusal's status, its JSON error
///   envelope (`content-type: application/json`) and its headers
///   (`www-authenticate: Bearer` on a 401, the rate-limit headers for a valid
///   key, `retry-after`, `retry-after-ms` and, for the day limit,
///   `x-should-retry: false` on a 429). The inner service is not called.
/// - **Admitted**: the request reaches the inner service with an
///   [`Authenticated`](crate::Authenticated) in its extensions, and the
///   eight rate-limit headers (with `x-lumyx-key-expires-at` when the key
///   stops working within 7 days) are inserted into whatever the inner
///   service answers, its own errors included, replacing headers of the
///   same names.
///
/// Either way the request's `Authorization` header is marked sensitive, so
/// that middleware further in (tracing, debug output) does not show it. The
/// first `Authorization` header is the one checked.
///
/// The scope belongs to the route: give each route its own layer with
/// axum's `MethodRouter::route_layer` (or `Router::route_layer` for the
/// routes added before it), which also leaves unknown routes and wrong
/// methods to the router's answers, before authentication.
///
/// The inner service's response body must be `From<bytes::Bytes>` (axum's
/// `Body` is) to carry a denial's envelope.
///
/// ```
/// use std::future::poll_fn;
/// use std::sync::Arc;
///
/// use axum::body::{Body, to_bytes};
/// use axum::http::{Request, StatusCode, header::AUTHORIZATION};
/// use axum::routing::{get, post};
/// use axum::{Extension, Router};
/// use chrono::Utc;
/// use lumyx_gate::{Authenticated, Gate, GateLayer, KeyTable, MemoryBackend};
/// use lumyx_keys::{ApiKey, KeyRecord, Scope, Scopes};
/// use tower_service::Service;
///
/// async fn models(Extension(caller): Extension<Authenticated>) -> String {
///     format!("models for {}", caller.record().owner)
/// }
///
/// async fn chat(Extension(caller): Extension<Authenticated>) -> String {
///     format!("{} requests left today", caller.snapshot().day.remaining)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let table = Arc::new(KeyTable::new());
/// let gate = Arc::new(Gate::new(Arc::clone(&table), MemoryBackend::new()));
/// let app = Router::new()
///     .route(
///         "/v1/models",
///         get(models).route_layer(GateLayer::new(gate.clone(), Scope::Models)),
///     )
///     .route(
///         "/v1/chat/completions",
///         post(chat).route_layer(GateLayer::new(gate.clone(), Scope::Chat)),
///     );
///
/// // A key that may list models but not chat.
/// let key = ApiKey::generate()?;
/// let record = KeyRecord::new(key.as_key_ref(), "laptop", "acct_42", Utc::now())
///     .with_scopes(Scopes::NONE.with(Scope::Models));
/// table.put(record);
/// let bearer = format!("Bearer {}", key.expose_secret());
///
/// // The router as a tower service, as a server drives it.
/// let mut app = app.into_service::<Body>();
///
/// let request = Request::get("/v1/models")
///     .header(AUTHORIZATION, &bearer)
///     .body(Body::empty())?;
/// poll_fn(|cx| app.poll_ready(cx)).await?;
/// let response = app.call(request).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "59");
/// assert_eq!(to_bytes(response.into_body(), 1024).await?, "models for acct_42");
///
/// let request = Request::post("/v1/chat/completions")
///     .header(AUTHORIZATION, &bearer)
///     .body(Body::empty())?;
/// poll_fn(|cx| app.poll_ready(cx)).await?;
/// let response = app.call(request).await?;
/// assert_eq!(response.status(), StatusCode::FORBIDDEN);
/// let body = to_bytes(response.into_body(), 1024).await?;
/// let envelope: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(envelope["error"]["code"], "insufficient_scope");
/// # Ok(())
/// # }
/// ```
pub struct GateLayer<B, C = SystemClock> {
    gate: Arc<Gate<B, C>>,
    scope: Scope,
}

impl<B, C> GateLayer<B, C> {
    /// A layer that checks requests with `gate` for routes of `scope`.
    pub fn new(gate: Arc<Gate<B, C>>, scope: Scope) -> GateLayer<B, C> {
        GateLayer { gate, scope }
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<Gate<B, C>> {
        &self.gate
    }

    /// The scope of the guarded routes.
    pub fn scope(&self) -> Scope {
        self.scope
    }
}

impl<S, B, C> Layer<S> for GateLayer<B, C> {
    type Service = GateService<S, B, C>;

    fn layer(&self, inner: S) -> GateService<S, B, C> {
        GateService::new(inner, Arc::clone(&self.gate), self.scope)
    }
}

impl<B, C> Clone for GateLayer<B, C> {
    fn clone(&self) -> Self {
        GateLayer {
            gate: Arc::clone(&self.gate),
            scope: self.scope,
        }
    }
}

impl<B: fmt::Debug, C: fmt::Debug> fmt::Debug for GateLayer<B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateLayer")
            .field("gate", &self.gate)
            .field("scope", &self.scope)
            .finish()
    }
}
