//! [`GateService`]: checks each request with the gate, then calls the inner
//! service or answers the refusal.

use std::fmt;
use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, Entry};
use http::{HeaderMap, Request, Response};
use lumyx_keys::Scope;
use lumyx_ratelimit::{Clock, SystemClock};
use tower_service::Service;

use super::ResponseFuture;
use super::future::Check;
use crate::{Backend, Gate};

/// A service behind a [`Gate`], for routes of one scope: what
/// [`GateLayer`](crate::GateLayer) makes of an inner service (its docs say
/// what a request and its response go through).
///
/// Over a backend that [decides at once](crate::Backend::DECIDES_AT_ONCE)
/// ([`MemoryBackend`](crate::MemoryBackend)) the gate decides inside
/// `call`, and an admitted request goes to the inner service right away:
/// nothing is boxed or cloned.
/// Over one that waits (Redis) the check is boxed, because the gate's
/// `check` is an `async fn` whose future cannot be named in
/// [`Service::Future`](tower_service::Service::Future): one allocation of
/// that future's size, owning a clone of the `Arc` of the gate and of the
/// `Authorization` header value (a reference count for the values hyper
/// parses), and the inner service is cloned to answer once the verdict
/// comes (tower's pattern for a service called from its future). Either
/// way an admitted request's [`Authenticated`](crate::Authenticated) goes
/// into its extensions (the extension map's allocations) and its headers
/// are rendered into the response; a denial renders its envelope and
/// headers. The inner service's future is not boxed.
///
/// For an outer layer that logs or counts: every response to a request
/// whose key was found in the table (admitted, or refused after the key was
/// known) carries the key's [`KeyId`](lumyx_keys::KeyId) in its
/// extensions, and every refusal its [`Refusal`](crate::Refusal); a
/// response with neither did not pass through the gate.
pub struct GateService<S, B, C = SystemClock> {
    inner: S,
    gate: Arc<Gate<B, C>>,
    scope: Scope,
}

impl<S, B, C> GateService<S, B, C> {
    /// `inner` behind `gate`, for routes of `scope`.
    pub fn new(inner: S, gate: Arc<Gate<B, C>>, scope: Scope) -> GateService<S, B, C> {
        GateService { inner, gate, scope }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, without the gate.
    pub fn into_inner(self) -> S {
        self.inner
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

impl<S, B, C, ReqBody, ResBody> Service<Request<ReqBody>> for GateService<S, B, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    B: Backend,
    C: Clock + 'static,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        mark_authorization_sensitive(request.headers_mut());
        let authorization = request.headers().get(AUTHORIZATION);
        if let Some(verdict) = self.gate.check_if_at_once(authorization, self.scope) {
            // Decided: the instance that `poll_ready` readied answers now.
            return ResponseFuture::decided(verdict, request, &mut self.inner);
        }
        let gate = Arc::clone(&self.gate);
        let authorization = authorization.cloned();
        let scope = self.scope;
        let check: Check = Box::pin(async move { gate.check(authorization.as_ref(), scope).await });
        // The instance that `poll_ready` readied waits with this request for
        // its verdict; the clone stays for the next one (tower's "be careful
        // when cloning inner services").
        let mut inner = self.inner.clone();
        mem::swap(&mut self.inner, &mut inner);
        ResponseFuture::checking(check, request, inner)
    }
}

/// Marks every `Authorization` value sensitive, as tower-http's
/// `sensitive_headers` does, so that nothing further in shows it.
fn mark_authorization_sensitive(headers: &mut HeaderMap) {
    if let Entry::Occupied(mut entry) = headers.entry(AUTHORIZATION) {
        for value in entry.iter_mut() {
            value.set_sensitive(true);
        }
    }
}

impl<S: Clone, B, C> Clone for GateService<S, B, C> {
    fn clone(&self) -> Self {
        GateService {
            inner: self.inner.clone(),
            gate: Arc::clone(&self.gate),
            scope: self.scope,
        }
    }
}

impl<S: fmt::Debug, B: fmt::Debug, C: fmt::Debug> fmt::Debug for GateService<S, B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GateService")
            .field("inner", &self.inner)
            .field("gate", &self.gate)
            .field("scope", &self.scope)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn every_authorization_value_is_marked_sensitive_and_nothing_else() {
        let mut headers = HeaderMap::new();
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer one"));
        headers.append(AUTHORIZATION, HeaderValue::from_static("Bearer two"));
        headers.append("x-request-id", HeaderValue::from_static("req_1"));
        mark_authorization_sensitive(&mut headers);
        assert!(
            headers
                .get_all(AUTHORIZATION)
                .iter()
                .all(HeaderValue::is_sensitive)
        );
        assert_eq!(headers.get_all(AUTHORIZATION).iter().count(), 2);
        assert!(!headers["x-request-id"].is_sensitive());
    }
}
