//! Extractors whose every failure is an envelope: a JSON body (its media
//! type, its size, its shape and its values) and query parameters.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use lumyx_api_types::{ApiError, Validate, parse_json};
use serde::de::DeserializeOwned;

use crate::error::Failure;

/// The largest request body, 1 MiB; a larger one is answered 413.
pub(crate) const BODY_LIMIT: usize = 1 << 20;

/// A JSON body, read and validated: 415 without a JSON media type, 413 over
/// [`BODY_LIMIT`], 400 (with the field's path in `param`) when it is not
/// the expected JSON.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(&request)?;
        let body = read_body(request, state).await?;
        Ok(JsonBody(parse_json(&body)?))
    }
}

/// A JSON body that may be absent: an empty body without a media type, or
/// with a JSON one, is `T::default()`; any other is read as [`JsonBody`]
/// reads it (so a body of another media type is 415, even an empty one).
#[derive(Debug)]
pub(crate) struct OptionalJsonBody<T>(pub(crate) T);

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate + Default,
{
    type Rejection = Failure;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_media_type = request.headers().contains_key(CONTENT_TYPE);
        if has_media_type {
            require_json(&request)?;
        }
        let body = read_body(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        if !has_media_type {
            return Err(ApiError::unsupported_media_type(None).into());
        }
        Ok(OptionalJsonBody(parse_json(&body)?))
    }
}

/// 415 unless the request says its body is JSON (`application/json`, with
/// or without parameters such as `charset`).
fn require_json(request: &Request) -> Result<(), Failure> {
    let media_type = request.headers().get(CONTENT_TYPE);
    let is_json = media_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        let shown = media_type.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        Err(ApiError::unsupported_media_type(shown.as_deref()).into())
    }
}

/// The body, at most [`BODY_LIMIT`] bytes.
async fn read_body<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Failure> {
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection: BytesRejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::request_too_large(BODY_LIMIT as u64).into()
            } else {
                ApiError::invalid_json("the body could not be read").into()
            }
        })
}

/// Query parameters, validated: 400 `invalid_value` when they cannot be
/// read, or when a value is out of its range (naming that parameter).
#[derive(Debug)]
pub(crate) struct QueryParams<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Validate,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The parser's message can quote the client's text: not repeated.
        let Query(params) = Query::<T>::try_from_uri(&parts.uri).map_err(|_| {
            ApiError::invalid_value(
                "query",
                "the query parameters could not be read (limit is a whole number, \
                 order is asc or desc, after is an id)",
            )
        })?;
        params.validate()?;
        Ok(QueryParams(params))
    }
}

/// The one parameter of a route's path (an id), percent-decoded: a path
/// whose parameter is not UTF-8 once decoded is 400 `invalid_value` with
/// `param` `path`, in the envelope (axum's own answer is plain text).
#[derive(Debug)]
pub(crate) struct PathParam(pub(crate) String);

impl<S> FromRequestParts<S> for PathParam
where
    S: Send + Sync,
{
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(PathParam(value)),
            Err(_) => Err(Failure(ApiError::invalid_value(
                "path",
                "expected an id of UTF-8 text once percent-decoded",
            ))),
        }
    }
}
