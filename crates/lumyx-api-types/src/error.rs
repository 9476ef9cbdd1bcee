//! The error envelope of every error response of the Lumyx API, from every
//! route and every layer, in OpenAI's shape with all four keys present:
//! `{"error":{"message":"...","type":"...","param":null,"code":"..."}}`.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::client_text::shown;

open_enum! {
    /// The `type` of an error: the broad class a client branches on.
    pub enum ErrorType {
        /// The request is wrong: missing or invalid key, bad body, unknown
        /// resource or route.
        InvalidRequestError => "invalid_request_error",
        /// The credentials are missing or wrong (sent by some OpenAI-compatible
        /// servers; Lumyx itself uses `invalid_request_error`, as OpenAI does).
        AuthenticationError => "authentication_error",
        /// The key is known but may not do this: expired, revoked, out of scope.
        PermissionError => "permission_error",
        /// A rate limit denied the request; retry after the `retry-after` header.
        RateLimitError => "rate_limit_error",
        /// The server failed; the request may succeed later.
        ServerError => "server_error",
    }
}

impl ErrorType {
    /// The HTTP status an error of this type has when its code does not say
    /// better; used when an envelope is read back without its status.
    pub fn default_status(&self) -> StatusCode {
        match self {
            ErrorType::InvalidRequestError => StatusCode::BAD_REQUEST,
            ErrorType::AuthenticationError => StatusCode::UNAUTHORIZED,
            ErrorType::PermissionError => StatusCode::FORBIDDEN,
            ErrorType::RateLimitError => StatusCode::TOO_MANY_REQUESTS,
            ErrorType::ServerError | ErrorType::Other(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

open_enum! {
    /// The machine-readable `code` of an error: one for each way the API
    /// refuses a request, with the HTTP status it answers in parentheses.
    pub enum ErrorCode {
        /// No `Authorization` header, or an empty one (401).
        MissingApiKey => "missing_api_key",
        /// The `Authorization` header is not `Bearer <token>` (401).
        InvalidAuthorizationHeader => "invalid_authorization_header",
        /// The key is malformed or unknown (401).
        InvalidApiKey => "invalid_api_key",
        /// The key has expired (403).
        ApiKeyExpired => "api_key_expired",
        /// The key has been revoked (403).
        ApiKeyRevoked => "api_key_revoked",
        /// The key lacks the scope of the route (403).
        InsufficientScope => "insufficient_scope",
        /// The per-minute limit of the key is exhausted (429).
        RateLimitExceeded => "rate_limit_exceeded",
        /// The daily limit of the key is exhausted (429).
        DailyLimitExceeded => "daily_limit_exceeded",
        /// The body is not JSON, or not the expected JSON object (400).
        InvalidJson => "invalid_json",
        /// A field has a wrong type or a value out of range (400).
        InvalidValue => "invalid_value",
        /// A required field is missing (400).
        MissingField => "missing_field",
        /// No such model (404).
        ModelNotFound => "model_not_found",
        /// No such persona (404).
        PersonaNotFound => "persona_not_found",
        /// No such conversation, or not one of the caller's (404).
        ConversationNotFound => "conversation_not_found",
        /// No such key (404).
        KeyNotFound => "key_not_found",
        /// No such route (404).
        NotFound => "not_found",
        /// The route exists but not with this method (405).
        MethodNotAllowed => "method_not_allowed",
        /// The body is larger than the server accepts (413).
        RequestTooLarge => "request_too_large",
        /// The body is not `application/json` (415).
        UnsupportedMediaType => "unsupported_media_type",
        /// A backend is down and the server fails closed (503).
        ServiceUnavailable => "service_unavailable",
        /// Anything else went wrong on the server (500).
        InternalError => "internal_error",
    }
}

impl ErrorCode {
    /// The HTTP status and `type` of an error with this code; `None` for
    /// `Other`.
    ///
    /// Authentication failures (401) and faults of the request (400, 404,
    /// 405, 413, 415) are `invalid_request_error`, as OpenAI sends them; a key
    /// that may not do this (403) is a `permission_error`, an exhausted limit
    /// (429) a `rate_limit_error`, and a failure of the server (500, 503) a
    /// `server_error`.
    pub fn classification(&self) -> Option<(StatusCode, ErrorType)> {
        use ErrorCode::*;
        let pair = match self {
            MissingApiKey | InvalidAuthorizationHeader | InvalidApiKey => {
                (StatusCode::UNAUTHORIZED, ErrorType::InvalidRequestError)
            }
            ApiKeyExpired | ApiKeyRevoked | InsufficientScope => {
                (StatusCode::FORBIDDEN, ErrorType::PermissionError)
            }
            RateLimitExceeded | DailyLimitExceeded => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorType::RateLimitError)
            }
            InvalidJson | InvalidValue | MissingField => {
                (StatusCode::BAD_REQUEST, ErrorType::InvalidRequestError)
            }
            ModelNotFound | PersonaNotFound | ConversationNotFound | KeyNotFound | NotFound => {
                (StatusCode::NOT_FOUND, ErrorType::InvalidRequestError)
            }
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorType::InvalidRequestError,
            ),
            RequestTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorType::InvalidRequestError,
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorType::InvalidRequestError,
            ),
            ServiceUnavailable => (StatusCode::SERVICE_UNAVAILABLE, ErrorType::ServerError),
            InternalError => (StatusCode::INTERNAL_SERVER_ERROR, ErrorType::ServerError),
            Other(_) => return None,
        };
        Some(pair)
    }
}

/// An error answer of the API: HTTP status plus OpenAI's error object.
///
/// Serializes as the envelope with all four keys, nulls included:
///
/// ```
/// use lumyx_api_types::ApiError;
///
/// let error = ApiError::invalid_value("temperature", "expected a number from 0 to 2, got 3");
/// assert_eq!(error.status().as_u16(), 400);
/// assert_eq!(
///     serde_json::to_string(&error).unwrap(),
///     r#"{"error":{"message":"Invalid value for 'temperature': expected a number from 0 to 2, got 3.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}"#
/// );
/// ```
///
/// The status is not part of the body; reading an envelope back derives it
/// from the code ([`ErrorCode::classification`]), else from the type
/// ([`ErrorType::default_status`]), and [`ApiError::with_status`]
/// sets the one a response actually carried.
///
/// Messages help the caller fix the request and never show an API key. The
/// constructors that repeat the client's text (a model name, an id, a method,
/// a path, a content type, the JSON path in `param`) show it only after every
/// key-shaped part (32 or more ASCII letters and digits in runs of at least 8
/// joined by single separators, as `lumyx_keys::redact` finds them) is
/// replaced by its hint, and cut to at most 64 characters; a cut text keeps its first
/// 63 characters and ends in `…`.
///
/// ```
/// use lumyx_api_types::ApiError;
///
/// let key = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
/// let error = ApiError::model_not_found(key);
/// assert!(error.message().starts_with("The model 'nova_0123…6dce' does not exist"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    error_type: ErrorType,
    code: Option<ErrorCode>,
    message: String,
    param: Option<String>,
}

impl ApiError {
    /// An error with every part given; `param` starts empty.
    pub fn new(
        status: StatusCode,
        error_type: ErrorType,
        code: Option<ErrorCode>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            code,
            message: message.into(),
            param: None,
        }
    }

    /// An error whose status and type follow from `code`
    /// ([`ErrorCode::classification`]; 500 `server_error` for a code this
    /// crate does not know).
    pub fn from_code(code: ErrorCode, message: impl Into<String>) -> Self {
        let (status, error_type) = code
            .classification()
            .unwrap_or((StatusCode::INTERNAL_SERVER_ERROR, ErrorType::ServerError));
        Self::new(status, error_type, Some(code), message)
    }

    /// Sets `param`, the JSON path of the offending field (`messages[0].role`).
    ///
    /// A path can hold the client's map keys, so it is stored as the client's
    /// text is shown: key-shaped parts replaced by their hint, cut to at most
    /// 64 characters.
    #[must_use]
    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(shown(&param.into()).into_owned());
        self
    }

    /// Clears `param`.
    #[must_use]
    pub(crate) fn without_param(mut self) -> Self {
        self.param = None;
        self
    }

    /// Replaces the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Replaces the human-readable message.
    #[must_use]
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The HTTP status of the response carrying this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `type` of the error.
    pub fn error_type(&self) -> &ErrorType {
        &self.error_type
    }

    /// The `code` of the error, if it has one.
    pub fn code(&self) -> Option<&ErrorCode> {
        self.code.as_ref()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The JSON path of the offending field, if the error is about one.
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }

    /// 401 `missing_api_key`: no `Authorization` header, or an empty one.
    pub fn missing_api_key() -> Self {
        Self::from_code(
            ErrorCode::MissingApiKey,
            "You didn't provide an API key. Send it in an Authorization header as \
             'Authorization: Bearer YOUR_KEY'; client libraries read it from NOVA_AI_API_KEY.",
        )
    }

    /// 401 `invalid_authorization_header`: the header is not `Bearer <token>`.
    pub fn invalid_authorization_header() -> Self {
        Self::from_code(
            ErrorCode::InvalidAuthorizationHeader,
            "The Authorization header is malformed. Use the form 'Authorization: Bearer YOUR_KEY'.",
        )
    }

    /// 401 `invalid_api_key`: the key is malformed or unknown. The message
    /// never repeats the presented key.
    pub fn invalid_api_key() -> Self {
        Self::from_code(
            ErrorCode::InvalidApiKey,
            "Incorrect API key provided. Check that you copied the whole key (64 characters) \
             or create a new one in the developer dashboard.",
        )
    }

    /// 403 `api_key_expired`. `hint` is the key's public hint (never the key).
    pub fn api_key_expired(hint: &str) -> Self {
        Self::from_code(
            ErrorCode::ApiKeyExpired,
            format!("The API key {hint} has expired. Create a new key in the developer dashboard."),
        )
    }

    /// 403 `api_key_revoked`. `hint` is the key's public hint (never the key).
    pub fn api_key_revoked(hint: &str) -> Self {
        Self::from_code(
            ErrorCode::ApiKeyRevoked,
            format!("The API key {hint} has been revoked. Use another key or create a new one."),
        )
    }

    /// 403 `insufficient_scope`: the key may not call routes of `scope`.
    pub fn insufficient_scope(scope: &str) -> Self {
        Self::from_code(
            ErrorCode::InsufficientScope,
            format!(
                "This API key lacks the '{scope}' scope this endpoint requires. \
                 Use a key created with that scope."
            ),
        )
    }

    /// 429 `rate_limit_exceeded`: the minute limit of the key is used up.
    pub fn rate_limit_exceeded(limit_per_minute: u32, retry_after: Duration) -> Self {
        Self::from_code(
            ErrorCode::RateLimitExceeded,
            format!(
                "Rate limit reached for requests: limit {limit_per_minute} per minute. \
                 Please try again in {}s.",
                whole_seconds_up(retry_after)
            ),
        )
    }

    /// 429 `daily_limit_exceeded`: the daily limit of the key is used up.
    pub fn daily_limit_exceeded(daily_limit: u32, retry_after: Duration) -> Self {
        Self::from_code(
            ErrorCode::DailyLimitExceeded,
            format!(
                "Daily request limit reached: limit {daily_limit} per day (UTC). \
                 Please try again in {}s, after midnight UTC.",
                whole_seconds_up(retry_after)
            ),
        )
    }

    /// 400 `invalid_json`: the body could not be read as the expected JSON.
    pub fn invalid_json(detail: impl fmt::Display) -> Self {
        Self::from_code(
            ErrorCode::InvalidJson,
            format!(
                "We could not parse the JSON body of your request ({detail}). \
                 Send a JSON object with 'Content-Type: application/json'."
            ),
        )
    }

    /// 400 `invalid_value` about the field at `param`; `problem` says what
    /// was expected and what came. `problem` is written as given, so it must
    /// not quote the client's value unchecked; `param` is shown as
    /// [`with_param`](Self::with_param) stores it.
    pub fn invalid_value(param: impl Into<String>, problem: impl fmt::Display) -> Self {
        let param = param.into();
        let param = shown(&param);
        Self::from_code(
            ErrorCode::InvalidValue,
            format!("Invalid value for '{param}': {problem}."),
        )
        .with_param(param)
    }

    /// 400 `missing_field`: the required field at `param` is absent.
    pub fn missing_field(param: impl Into<String>) -> Self {
        let param = param.into();
        let param = shown(&param);
        Self::from_code(
            ErrorCode::MissingField,
            format!("Missing required parameter: '{param}'."),
        )
        .with_param(param)
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> Self {
        let model = shown(model);
        Self::from_code(
            ErrorCode::ModelNotFound,
            format!(
                "The model '{model}' does not exist or you do not have access to it. \
                 GET /v1/models lists the available models."
            ),
        )
        .with_param("model")
    }

    /// 404 `persona_not_found`.
    pub fn persona_not_found(persona_id: &str) -> Self {
        let persona_id = shown(persona_id);
        Self::from_code(
            ErrorCode::PersonaNotFound,
            format!(
                "No persona with id '{persona_id}'. GET /v1/personas lists the available personas."
            ),
        )
    }

    /// 404 `conversation_not_found` (also for a conversation of another owner).
    pub fn conversation_not_found(conversation_id: &str) -> Self {
        let conversation_id = shown(conversation_id);
        Self::from_code(
            ErrorCode::ConversationNotFound,
            format!("No conversation with id '{conversation_id}' belongs to this API key's owner."),
        )
    }

    /// 404 `key_not_found`. `key_id` is the public id (`key_…`).
    pub fn key_not_found(key_id: &str) -> Self {
        let key_id = shown(key_id);
        Self::from_code(
            ErrorCode::KeyNotFound,
            format!("No API key with id '{key_id}'. GET /v1/keys lists the keys."),
        )
    }

    /// 404 `not_found`: no route matches `path`.
    pub fn not_found(method: &str, path: &str) -> Self {
        let (method, path) = (shown(method), shown(path));
        Self::from_code(
            ErrorCode::NotFound,
            format!("Unknown request URL: {method} {path}. Check the path and the /v1 prefix."),
        )
    }

    /// 405 `method_not_allowed`: `path` exists, but not for `method`.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let (method, path) = (shown(method), shown(path));
        Self::from_code(
            ErrorCode::MethodNotAllowed,
            format!(
                "The method {method} is not allowed for {path}. \
                 The Allow header lists the methods it accepts."
            ),
        )
    }

    /// 413 `request_too_large`: the body exceeds `limit_bytes`.
    pub fn request_too_large(limit_bytes: u64) -> Self {
        Self::from_code(
            ErrorCode::RequestTooLarge,
            format!("The request body is larger than the {limit_bytes} bytes this server accepts."),
        )
    }

    /// 415 `unsupported_media_type`: the body is not `application/json`.
    pub fn unsupported_media_type(content_type: Option<&str>) -> Self {
        let got = match content_type {
            Some(content_type) => format!("'{}'", shown(content_type)),
            None => "no Content-Type header".to_owned(),
        };
        Self::from_code(
            ErrorCode::UnsupportedMediaType,
            format!("Expected 'Content-Type: application/json', got {got}."),
        )
    }

    /// 503 `service_unavailable`: a backend is down and the server fails closed.
    pub fn service_unavailable() -> Self {
        Self::from_code(
            ErrorCode::ServiceUnavailable,
            "The service is temporarily unavailable. Please retry after a short wait.",
        )
    }

    /// 500 `internal_error`: anything else. Log the cause; do not show it.
    pub fn internal_error() -> Self {
        Self::from_code(
            ErrorCode::InternalError,
            "The server had an error while processing your request. Please retry; \
             if the error persists, contact support with the x-request-id header.",
        )
    }
}

fn whole_seconds_up(duration: Duration) -> u64 {
    let secs = duration.as_secs();
    if duration.subsec_nanos() > 0 {
        secs.saturating_add(1)
    } else {
        secs
    }
    .max(1)
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.error_type)?;
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(param) = &self.param {
            write!(f, " [param: {param}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    error: ObjectRef<'a>,
}

#[derive(Serialize)]
struct ObjectRef<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    error_type: &'a ErrorType,
    param: Option<&'a str>,
    code: Option<&'a ErrorCode>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Object,
}

#[derive(Deserialize)]
struct Object {
    message: String,
    #[serde(rename = "type")]
    error_type: ErrorType,
    #[serde(default)]
    param: Option<String>,
    #[serde(default)]
    code: Option<ErrorCode>,
}

impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EnvelopeRef {
            error: ObjectRef {
                message: &self.message,
                error_type: &self.error_type,
                param: self.param.as_deref(),
                code: self.code.as_ref(),
            },
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ApiError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Envelope { error } = Envelope::deserialize(deserializer)?;
        let status = error
            .code
            .as_ref()
            .and_then(ErrorCode::classification)
            .map(|(status, _)| status)
            .unwrap_or_else(|| error.error_type.default_status());
        Ok(Self {
            status,
            error_type: error.error_type,
            code: error.code,
            message: error.message,
            param: error.param,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status_and_type() {
        let table: &[(ErrorCode, u16, &str)] = &[
            (ErrorCode::MissingApiKey, 401, "invalid_request_error"),
            (
                ErrorCode::InvalidAuthorizationHeader,
                401,
                "invalid_request_error",
            ),
            (ErrorCode::InvalidApiKey, 401, "invalid_request_error"),
            (ErrorCode::ApiKeyExpired, 403, "permission_error"),
            (ErrorCode::ApiKeyRevoked, 403, "permission_error"),
            (ErrorCode::InsufficientScope, 403, "permission_error"),
            (ErrorCode::RateLimitExceeded, 429, "rate_limit_error"),
            (ErrorCode::DailyLimitExceeded, 429, "rate_limit_error"),
            (ErrorCode::InvalidJson, 400, "invalid_request_error"),
            (ErrorCode::InvalidValue, 400, "invalid_request_error"),
            (ErrorCode::MissingField, 400, "invalid_request_error"),
            (ErrorCode::ModelNotFound, 404, "invalid_request_error"),
            (ErrorCode::PersonaNotFound, 404, "invalid_request_error"),
            (
                ErrorCode::ConversationNotFound,
                404,
                "invalid_request_error",
            ),
            (ErrorCode::KeyNotFound, 404, "invalid_request_error"),
            (ErrorCode::NotFound, 404, "invalid_request_error"),
            (ErrorCode::MethodNotAllowed, 405, "invalid_request_error"),
            (ErrorCode::RequestTooLarge, 413, "invalid_request_error"),
            (
                ErrorCode::UnsupportedMediaType,
                415,
                "invalid_request_error",
            ),
            (ErrorCode::ServiceUnavailable, 503, "server_error"),
            (ErrorCode::InternalError, 500, "server_error"),
        ];
        assert_eq!(table.len(), ErrorCode::KNOWN.len());
        for (code, status, error_type) in table {
            let (got_status, got_type) = code.classification().unwrap();
            assert_eq!(got_status.as_u16(), *status, "{code}");
            assert_eq!(got_type.as_str(), *error_type, "{code}");
        }
        assert_eq!(ErrorCode::from("brand_new").classification(), None);
    }

    #[test]
    fn constructors_match_their_code() {
        let day = Duration::from_secs(3600);
        let cases = [
            (ApiError::missing_api_key(), ErrorCode::MissingApiKey),
            (
                ApiError::invalid_authorization_header(),
                ErrorCode::InvalidAuthorizationHeader,
            ),
            (ApiError::invalid_api_key(), ErrorCode::InvalidApiKey),
            (
                ApiError::api_key_expired("nova_0123…6dce"),
                ErrorCode::ApiKeyExpired,
            ),
            (
                ApiError::api_key_revoked("nova_0123…6dce"),
                ErrorCode::ApiKeyRevoked,
            ),
            (
                ApiError::insufficient_scope("chat"),
                ErrorCode::InsufficientScope,
            ),
            (
                ApiError::rate_limit_exceeded(60, Duration::from_millis(1500)),
                ErrorCode::RateLimitExceeded,
            ),
            (
                ApiError::daily_limit_exceeded(1000, day),
                ErrorCode::DailyLimitExceeded,
            ),
            (
                ApiError::invalid_json("EOF while parsing"),
                ErrorCode::InvalidJson,
            ),
            (
                ApiError::invalid_value("n", "expected at least 1"),
                ErrorCode::InvalidValue,
            ),
            (ApiError::missing_field("model"), ErrorCode::MissingField),
            (ApiError::model_not_found("gpt-9"), ErrorCode::ModelNotFound),
            (ApiError::persona_not_found("p"), ErrorCode::PersonaNotFound),
            (
                ApiError::conversation_not_found("c"),
                ErrorCode::ConversationNotFound,
            ),
            (ApiError::key_not_found("key_0"), ErrorCode::KeyNotFound),
            (ApiError::not_found("GET", "/v2/x"), ErrorCode::NotFound),
            (
                ApiError::method_not_allowed("PUT", "/v1/models"),
                ErrorCode::MethodNotAllowed,
            ),
            (
                ApiError::request_too_large(1 << 20),
                ErrorCode::RequestTooLarge,
            ),
            (
                ApiError::unsupported_media_type(Some("text/plain")),
                ErrorCode::UnsupportedMediaType,
            ),
            (
                ApiError::service_unavailable(),
                ErrorCode::ServiceUnavailable,
            ),
            (ApiError::internal_error(), ErrorCode::InternalError),
        ];
        for (error, code) in cases {
            let (status, error_type) = code.classification().unwrap();
            assert_eq!(error.code(), Some(&code));
            assert_eq!(error.status(), status, "{code}");
            assert_eq!(error.error_type(), &error_type, "{code}");
            assert!(!error.message().is_empty());
        }
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        let error = ApiError::rate_limit_exceeded(60, Duration::from_millis(1001));
        assert!(error.message().contains("in 2s"), "{}", error.message());
        let error = ApiError::rate_limit_exceeded(60, Duration::from_millis(10));
        assert!(error.message().contains("in 1s"), "{}", error.message());
        // The longest wait does not overflow (debug builds would panic).
        let error = ApiError::daily_limit_exceeded(1000, Duration::MAX);
        assert!(
            error.message().contains(&format!("in {}s", u64::MAX)),
            "{}",
            error.message()
        );
    }

    #[test]
    fn envelope_has_all_four_keys_with_nulls() {
        let value = serde_json::to_value(ApiError::missing_api_key()).unwrap();
        let object = value["error"].as_object().unwrap();
        let mut keys: Vec<_> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"]);
        assert!(object["param"].is_null());
        assert_eq!(object["code"], "missing_api_key");
        assert_eq!(value.as_object().unwrap().len(), 1);
    }

    #[test]
    fn reading_back_derives_the_status() {
        let text = r#"{"error":{"message":"m","type":"rate_limit_error","param":null,"code":"daily_limit_exceeded"}}"#;
        let error: ApiError = serde_json::from_str(text).unwrap();
        assert_eq!(error.status(), StatusCode::TOO_MANY_REQUESTS);
        let text = r#"{"error":{"message":"m","type":"permission_error"}}"#;
        let error: ApiError = serde_json::from_str(text).unwrap();
        assert_eq!(error.status(), StatusCode::FORBIDDEN);
        assert_eq!(error.code(), None);
        let text = r#"{"error":{"message":"m","type":"quota_error","param":null,"code":"quota"}}"#;
        let error: ApiError = serde_json::from_str(text).unwrap();
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.error_type().as_str(), "quota_error");
        assert_eq!(serde_json::to_string(&error).unwrap(), text);
    }

    #[test]
    fn display_names_status_code_and_param() {
        let error = ApiError::missing_field("model");
        assert_eq!(
            error.to_string(),
            "400 invalid_request_error (missing_field): Missing required parameter: 'model'. [param: model]"
        );
    }
}
