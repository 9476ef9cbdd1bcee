//! `GET /metrics`: Prometheus' text format, from `prometheus-client`.
//!
//! - `lumyx_http_requests_total{route,method,status}`: every response;
//! - `lumyx_http_request_duration_seconds{route}`: time to the response's
//!   head (a stream's body is not included);
//! - `lumyx_gate_decisions_total{outcome}`: `admitted`, or the error code of
//!   the refusal (`rate_limit_exceeded`, `invalid_api_key`, ...);
//! - `lumyx_redis_calls_total{purpose}`: round trips to Redis in Redis mode;
//!   `purpose="limits"`, one per gate decision or refusal count (the
//!   decision, its usage count and its headers' snapshot are one script);
//! - `lumyx_redis_degraded`: 1 while the limiter applies its outage policy
//!   because Redis cannot serve, else 0 (Redis mode);
//! - `lumyx_keys`: keys in the gate's table.
//!
//! Routes are the route templates (`/v1/conversations/{id}`), never the
//! client's path, so the series stay bounded whatever the traffic.

use std::fmt;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub(crate) route: &'static str,
    pub(crate) method: &'static str,
    pub(crate) status: u16,
}

/// Labels of a route.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabels {
    pub(crate) route: &'static str,
}

/// Labels of a gate decision.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

/// Labels of a Redis call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PurposeLabels {
    pub(crate) purpose: &'static str,
}

/// The server's metrics.
pub(crate) struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    pub(crate) durations: Family<RouteLabels, Histogram>,
    pub(crate) decisions: Family<OutcomeLabels, Counter>,
    pub(crate) redis_calls: Family<PurposeLabels, Counter>,
    pub(crate) redis_degraded: Gauge<i64, AtomicI64>,
    pub(crate) keys: Gauge<i64, AtomicI64>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::with_prefix("lumyx");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Responses by route template, method and status",
            requests.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to about 3.3 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request to its response's head, by route template",
            durations.clone(),
        );
        let decisions = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "gate_decisions",
            "Gate decisions: admitted, or the error code of the refusal",
            decisions.clone(),
        );
        let redis_calls = Family::<PurposeLabels, Counter>::default();
        registry.register(
            "redis_calls",
            "Round trips to Redis, by purpose (limits: one a gate decision)",
            redis_calls.clone(),
        );
        let redis_degraded = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "redis_degraded",
            "1 while Redis cannot serve and the limiter applies its outage policy",
            redis_degraded.clone(),
        );
        let keys = Gauge::<i64, AtomicI64>::default();
        registry.register("keys", "Keys in the gate's table", keys.clone());
        Metrics {
            registry,
            requests,
            durations,
            decisions,
            redis_calls,
            redis_degraded,
            keys,
        }
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}
