//! Logs: `tracing` to standard error, lines for people or JSON lines, and
//! the middleware that gives every request its span, its log line, its
//! metrics and its deadline.
//!
//! A request's line says its method, route template, status, latency,
//! request id and the id of the key it presented (when the key was found),
//! never the key, the path's ids or the body.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use lumyx_gate::Refusal;
use lumyx_keys::KeyId;
use tracing::Instrument;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::LogFormat;
use crate::metrics::{Metrics, OutcomeLabels, RequestLabels, RouteLabels};
use crate::request_id::RequestId;
use crate::router::route_template;

/// The log target of the server's request lines.
pub(crate) const LOG_TARGET: &str = "lumyx_server";

/// Installs the process's log subscriber: `format`'s lines on standard
/// error, at `info` and above unless `RUST_LOG` says otherwise (targets and
/// levels, such as `info,lumyx_gate=debug`). Does nothing when a subscriber
/// is already installed.
///
/// # Errors
/// When `RUST_LOG` cannot be read as targets and levels.
pub fn init_logging(format: LogFormat) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec
            .parse::<Targets>()
            .map_err(|err| format!("RUST_LOG: {err}"))?,
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    // Already installed (a test, or an embedding service): theirs stands.
    let _ = result;
    Ok(())
}

/// Middleware around every request: its span (with the request id), its
/// metrics and its log line.
pub(crate) async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_template(request.uri().path());
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let span = tracing::info_span!(
        target: LOG_TARGET,
        "request",
        id = %request_id,
        key = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let key = response.extensions().get::<KeyId>().copied();
    if let Some(key) = key {
        span.record("key", tracing::field::display(key));
    }
    let outcome = match response.extensions().get::<Refusal>() {
        Some(refusal) => Some(static_code(refusal.code().as_str())),
        None => key.map(|_| "admitted"),
    };
    if let Some(outcome) = outcome {
        metrics
            .decisions
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status,
        })
        .inc();
    metrics
        .durations
        .get_or_create(&RouteLabels { route })
        .observe(elapsed.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            target: LOG_TARGET,
            method,
            route,
            status,
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
    });
    response
}

/// The method as a bounded label: the ones the API knows, else `OTHER`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The gate's outcomes as static labels.
fn static_code(code: &str) -> &'static str {
    const CODES: [&str; 11] = [
        "admitted",
        "missing_api_key",
        "invalid_authorization_header",
        "invalid_api_key",
        "api_key_expired",
        "api_key_revoked",
        "insufficient_scope",
        "rate_limit_exceeded",
        "daily_limit_exceeded",
        "service_unavailable",
        "internal_error",
    ];
    CODES
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("other")
}
