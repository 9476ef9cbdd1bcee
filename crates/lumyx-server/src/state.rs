//! What every handler shares: the gate and its key table, the conversation
//! store, the model, the personas, the admin token and the metrics. Generic
//! over the gate's backend, so that a server in memory decides without
//! waiting and one over Redis shares its limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lumyx_api_types::{Model, ModelList};
use lumyx_gate::{Backend, Gate, KeyEntry, Keys};
use lumyx_ratelimit::{Counted, Decision, Error, Snapshot, Timestamp, Usage};
use prometheus_client::metrics::counter::Counter;

use crate::admin::TokenDigest;
use crate::conversations::ConversationStore;
use crate::metrics::Metrics;
use crate::{ChatModel, Personas};

/// The shared state of a server over backend `B`: where its state lives
/// (the gate and its backend, the keys, the conversations) and what it
/// serves.
pub(crate) struct AppState<B> {
    pub(crate) gate: Arc<Gate<Measured<B>>>,
    pub(crate) keys: Keys,
    pub(crate) conversations: Arc<dyn ConversationStore>,
    /// Whether the limiter applies its outage policy now (Redis mode).
    pub(crate) degraded: Option<Box<dyn Fn() -> bool + Send + Sync>>,
    pub(crate) model: Arc<dyn ChatModel>,
    pub(crate) catalog: Catalog,
    pub(crate) personas: Personas,
    pub(crate) admin_token: TokenDigest,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
}

/// What a server serves whatever its stores: the model, its catalog, the
/// personas, the admin token's digest, the metrics and the deadline.
pub(crate) struct Served {
    pub(crate) model: Arc<dyn ChatModel>,
    pub(crate) personas: Personas,
    pub(crate) admin_token: TokenDigest,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
}

impl<B> AppState<B> {
    /// The state of a server whose state lives in `gate`, `keys` and
    /// `conversations`, serving `served`.
    pub(crate) fn new(
        gate: Arc<Gate<Measured<B>>>,
        keys: Keys,
        conversations: Arc<dyn ConversationStore>,
        degraded: Option<Box<dyn Fn() -> bool + Send + Sync>>,
        served: Served,
    ) -> AppState<B> {
        AppState {
            gate,
            keys,
            conversations,
            degraded,
            catalog: Catalog::of(served.model.as_ref()),
            model: served.model,
            personas: served.personas,
            admin_token: served.admin_token,
            metrics: served.metrics,
            request_timeout: served.request_timeout,
        }
    }
}

/// The models a chat model serves, read once at start, and the body of
/// `GET /v1/models` rendered once.
pub(crate) struct Catalog {
    models: Vec<Model>,
    list_body: Bytes,
}

impl Catalog {
    fn of(model: &dyn ChatModel) -> Catalog {
        let models = model.models();
        let list = ModelList::new(models.clone());
        // A list of plain strings and numbers always serializes.
        let list_body = serde_json::to_vec(&list)
            .map(Bytes::from)
            .unwrap_or_default();
        Catalog { models, list_body }
    }

    /// The model with this id.
    pub(crate) fn find(&self, id: &str) -> Option<&Model> {
        self.models.iter().find(|model| model.id == id)
    }

    /// The JSON body of the list of every model.
    pub(crate) fn list_body(&self) -> Bytes {
        self.list_body.clone()
    }
}

/// A gate backend whose calls are counted in `lumyx_redis_calls_total`
/// when it is remote (one round trip a call).
#[derive(Debug)]
pub(crate) struct Measured<B> {
    inner: B,
    calls: Option<Counter>,
}

impl<B> Measured<B> {
    /// `inner`, its calls counted by `calls` when given.
    pub(crate) fn new(inner: B, calls: Option<Counter>) -> Measured<B> {
        Measured { inner, calls }
    }

    pub(crate) fn inner(&self) -> &B {
        &self.inner
    }

    fn count(&self) {
        if let Some(calls) = &self.calls {
            calls.inc();
        }
    }
}

impl<B: Backend> Backend for Measured<B> {
    const DECIDES_AT_ONCE: bool = B::DECIDES_AT_ONCE;

    fn decide(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Decision, Error>> + Send {
        self.count();
        self.inner.decide(entry, now)
    }

    fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
        now: Timestamp,
    ) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        self.count();
        self.inner.refuse(entry, what, now)
    }

    fn peek(&self, entry: &KeyEntry) -> impl Future<Output = Result<Snapshot, Error>> + Send {
        self.count();
        self.inner.peek(entry)
    }

    fn usage(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<Usage, Error>> + Send {
        self.count();
        self.inner.usage(entry, now)
    }
}
