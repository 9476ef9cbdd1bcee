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
    /// gate's check, then either answers the refusal or polls the inner
    /// service's future and adds the admitted request's headers to its
    /// response.
    pub struct ResponseFuture<S, ReqBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S::Future, ReqBody>,
        // The inner service `poll_ready` readied, called once admitted.
        service: S,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, ReqBody> {
        // The gate is deciding; the request waits for its verdict.
        Checking {
            check: Check,
            request: Option<Request<ReqBody>>,
        },
        // The inner service is answering an admitted request.
        Admitted {
            #[pin]
            future: F,
            admitted: Admitted,
        },
        // The request was refused, and the refusal answered.
        Denied,
    }
}

impl<S, ReqBody> ResponseFuture<S, ReqBody>
where
    S: Service<Request<ReqBody>>,
{
    pub(super) fn new(check: Check, request: Request<ReqBody>, service: S) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                request: Some(request),
            },
            service,
        }
    }
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
                StateProj::Checking { check, request } => {
                    let verdict = ready!(check.as_mut().poll(cx));
                    let mut request = request
                        .take()
                        .expect("the request leaves the checking state with its verdict");
                    match verdict {
                        Verdict::Denied(denied) => {
                            this.state.set(State::Denied);
                            return Poll::Ready(Ok(refusal(&denied)));
                        }
                        Verdict::Admitted(admitted) => {
                            request
                                .extensions_mut()
                                .insert(Authenticated::from(&admitted));
                            let future = this.service.call(request);
                            this.state.set(State::Admitted { future, admitted });
                        }
                    }
                }
                StateProj::Admitted { future, admitted } => {
                    let mut response = ready!(future.poll(cx))?;
                    admitted.write_headers(response.headers_mut());
                    return Poll::Ready(Ok(response));
                }
                StateProj::Denied => panic!("a gate's response future polled after it answered"),
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
            State::Denied => "denied",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
