//! `GET /metrics` (admin token): the server's metrics in Prometheus' text
//! format.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The metrics, the gauges read now.
pub(crate) async fn render<B>(State(state): State<Arc<AppState<B>>>) -> impl IntoResponse {
    let metrics = &state.metrics;
    metrics
        .keys
        .set(i64::try_from(state.gate.table().len()).unwrap_or(i64::MAX));
    if let Some(degraded) = &state.degraded {
        metrics.redis_degraded.set(i64::from(degraded()));
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
