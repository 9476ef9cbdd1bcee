//! What every handler shares: the gate and its key table, the conversation
//! store, the model, the personas, the admin token and the metrics. Generic
//! over the gate's backend, so that a server in memory decides without
//! waiting and one over Redis shares its limits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lumyx_gate::{Backend, Gate, KeyEntry, Keys};
use lumyx_ratelimit::{Counted, Decision, Error, Snapshot, Timestamp, Usage};
use prometheus_client::metrics::counter::Counter;

use crate::admin::TokenDigest;
use crate::conversations::ConversationStore;
use crate::metrics::Metrics;
use crate::{ChatModel, Personas};

/// The shared state of a server over backend `B`.
pub(crate) struct AppState<B> {
    pub(crate) gate: Arc<Gate<Measured<B>>>,
    pub(crate) keys: Keys,
    pub(crate) conversations: Arc<dyn ConversationStore>,
    pub(crate) model: Arc<dyn ChatModel>,
    pub(crate) personas: Personas,
    pub(crate) admin_token: TokenDigest,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) request_timeout: Duration,
    /// Whether the limiter applies its outage policy now (Redis mode).
    pub(crate) degraded: Option<Box<dyn Fn() -> bool + Send + Sync>>,
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
