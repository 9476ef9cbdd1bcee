//! [`ResponseFuture`]: the gate's check, then the inner service's response
//! with the admitted request's headers, or the refusal.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::Authenticated;
use crate::{Admitted, Denied, Verdict};

/// The gate's check of one request, owning what it reads (the gate and the
/// `Authorization` header), boxed because an `async fn`'s future has no name.
pub(super) type Check = Pin<Box<dyn Future<Output = Verdict> + Send>>;

pin_project! {
    /// The response future of [`GateService`](crate::GateService): polls the
    /// gate's check (when the backend waits), then either answers the
    /// refusal or polls the inner service's future and adds the admitted
    /// request's headers to its response.
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, S::Future, ReqBody, S::Response>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F, ReqBody, Answer> {
        // The gate is deciding; the request and the inner service that
        // `poll_ready` readied wait for its verdict.
        Checking {
            check: Check,
            waiting: Option<(Request<ReqBody>, S)>,
        },
        // The inner service is answering an admitted request.
        Admitted {
            #[pin]
            future: F,
            admitted: Admitted,
        },
        // The request was refused: its answer, until polled.
        Refused {
            response: Option<Answer>,
        },
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    /// The future of a request whose verdict `check` will give; `service`
    /// answers it if it is admitted.
    pub(super) fn checking(check: Check, request: Request<ReqBody>, service: S) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                waiting: Some((request, service)),
            },
        }
    }

    /// The future of a request with its verdict: an admitted request goes
    /// to `service` now.
    pub(super) fn decided<ResBody>(
        verdict: Verdict,
        request: Request<ReqBody>,
        service: &mut S,
    ) -> Self
    where
        S: Service<Request<ReqBody>, Response = Response<ResBody>>,
        ResBody: From<Bytes>,
    {
        ResponseFuture {
            state: State::decided(verdict, request, service),
        }
    }
}

impl<S, F, ReqBody, ResBody> State<S, F, ReqBody, Response<ResBody>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Future = F>,
    ResBody: From<Bytes>,
{
    /// The state after the verdict: the inner service answering an admitted
    /// request, or the refusal.
    fn decided(verdict: Verdict, request: Request<ReqBody>, service: &mut S) -> Self {
        match verdict {
            Verdict::Admitted(admitted) => State::Admitted {
                future: call_admitted(service, request, &admitted),
                admitted,
            },
            Verdict::Denied(denied) => State::Refused {
                response: Some(refusal(&denied)),
            },
        }
    }
}

/// Calls `service` with an admitted request, its [`Authenticated`] in its
/// extensions.
fn call_admitted<S, ReqBody>(
    service: &mut S,
    mut request: Request<ReqBody>,
    admitted: &Admitted,
) -> S::Future
where
    S: Service<Request<ReqBody>>,
{
    request
        .extensions_mut()
        .insert(Authenticated::from(admitted));
    service.call(request)
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<Bytes>,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            match this.state.as_mut().project() {
                StateProj::Checking { check, waiting } => {
                    let verdict = ready!(check.as_mut().poll(cx));
                    let (request, mut service) = waiting
                        .take()
                        .expect("the request leaves the checking state with its verdict");
                    let state = State::decided(verdict, request, &mut service);
                    this.state.set(state);
                }
                StateProj::Admitted { future, admitted } => {
                    let mut response = ready!(future.poll(cx))?;
                    admitted.write_headers(response.headers_mut());
                    response.extensions_mut().insert(admitted.record().id);
                    return Poll::Ready(Ok(response));
                }
                StateProj::Refused { response } => {
                    let response = response
                        .take()
                        .expect("a gate's response future polled after it answered");
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}

/// The response to a refused request: its status, the JSON envelope and the
/// refusal's headers.
fn refusal<ResBody: From<Bytes>>(denied: &Denied) -> Response<ResBody> {
    let mut response = Response::new(ResBody::from(Bytes::from(denied.body())));
    *response.status_mut() = denied.status();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    denied.write_headers(headers);
    response.extensions_mut().insert(denied.refusal());
    if let Some(record) = denied.record() {
        response.extensions_mut().insert(record.id);
    }
    response
}

impl<S, ReqBody> fmt::Debug for ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "checking",
            State::Admitted { .. } => "admitted",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
