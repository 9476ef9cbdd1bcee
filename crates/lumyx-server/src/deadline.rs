//! The deadline of every route: a response whose head takes longer than the
//! server allows (`LUMYX_REQUEST_TIMEOUT_SECS`) is answered 503
//! `service_unavailable`. On a keyed route it runs inside the gate, so the
//! late answer still carries the key's rate-limit headers.
//!
//! A tower layer rather than a middleware function: its future is the
//! timer around the inner one, with no box and no clone of the inner
//! service per request.

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::Map;
use lumyx_api_types::ApiError;
use tokio::time::Timeout;
use tokio::time::error::Elapsed;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Failure;
use crate::logging::LOG_TARGET;

/// Puts a [`Deadline`] around a service.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeadlineLayer {
    timeout: Duration,
}

impl DeadlineLayer {
    /// Responses' heads within `timeout`, or 503.
    pub(crate) fn new(timeout: Duration) -> DeadlineLayer {
        DeadlineLayer { timeout }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            timeout: self.timeout,
        }
    }
}

/// A service whose responses' heads come within a deadline, or are 503.
#[derive(Debug, Clone)]
pub(crate) struct Deadline<S> {
    inner: S,
    timeout: Duration,
}

/// What a deadline makes of the inner answer, or of its absence.
type Settle = fn(Result<Result<Response, Infallible>, Elapsed>) -> Result<Response, Infallible>;

impl<S> Service<Request> for Deadline<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Map<Timeout<S::Future>, Settle>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        tokio::time::timeout(self.timeout, self.inner.call(request)).map(settle as Settle)
    }
}

/// The inner answer, or 503 when the deadline passed first.
fn settle(answered: Result<Result<Response, Infallible>, Elapsed>) -> Result<Response, Infallible> {
    match answered {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!(target: LOG_TARGET, "the request timed out");
            Ok(Failure(ApiError::service_unavailable().with_message(
                "The request took longer than the server allows (LUMYX_REQUEST_TIMEOUT_SECS). \
                 Try again.",
            ))
            .into_response())
        }
    }
}
