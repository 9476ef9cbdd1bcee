//! Every error of the server as a response: the status, OpenAI's envelope
//! with its four keys, and `www-authenticate: Bearer` on a 401.

use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lumyx_api_types::ApiError;

/// An [`ApiError`] that a handler answers with.
#[derive(Debug, Clone)]
pub(crate) struct Failure(pub(crate) ApiError);

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Failure {
        Failure(error)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        envelope(&self.0)
    }
}

/// The response of `error`.
pub(crate) fn envelope(error: &ApiError) -> Response {
    let body = serde_json::to_vec(error).unwrap_or_else(|_| {
        br#"{"error":{"message":"The server had an error.","type":"server_error","param":null,"code":"internal_error"}}"#.to_vec()
    });
    let mut response = (error.status(), body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if error.status() == StatusCode::UNAUTHORIZED {
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response.extensions_mut().insert(error.clone());
    response
}

/// What a handler answers: its value, or the error.
pub(crate) type Answer<T> = Result<T, Failure>;

/// A failure of a backing service the caller cannot fix (a store that does
/// not answer, no randomness for a key): logged with its causes, answered
/// 503 `service_unavailable`.
pub(crate) fn unavailable(what: &str, err: &(dyn std::error::Error + 'static)) -> Failure {
    tracing::error!(error = err, "{what}");
    Failure(ApiError::service_unavailable())
}
