//! Reading request bodies into typed values with OpenAI-style errors, and the
//! checks serde cannot express (ranges, roles, required-by-role fields).
//!
//! Every error names the offending field in `param` as a JSON path:
//! `model`, `messages[0].role`, `messages[2].content[1].type`, `limit`.

use std::fmt;
use std::ops::RangeInclusive;

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::chat::{ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, Metadata};
use crate::client_text::shown;
use crate::conversations::{CreateConversationRequest, UpdateConversationRequest};
use crate::error::ApiError;
use crate::json_path;
use crate::keys::{CreateKeyRequest, KeyListParams, RotateKeyRequest, Scope, UpdateKeyRequest};
use crate::limits::{
    CHOICES_RANGE, DAILY_LIMIT_RANGE, EXPIRES_AT_RANGE, LIST_LIMIT_RANGE, MAX_GRACE_PERIOD_SECONDS,
    METADATA_MAX_KEY_CHARS, METADATA_MAX_PAIRS, METADATA_MAX_VALUE_CHARS,
    RATE_LIMIT_PER_MINUTE_RANGE, TEMPERATURE_RANGE, TOP_P_RANGE,
};
use crate::list::{ListOrder, ListParams};
use crate::role::Role;

/// Checks a value read from the wire beyond what its type guarantees.
pub trait Validate {
    /// `Ok` when the value is acceptable, else the first problem found as a
    /// 400 `invalid_value` or `missing_field` whose `param` locates it.
    fn validate(&self) -> Result<(), ApiError>;
}

/// Reads a request body and validates it: the one call a handler needs.
///
/// ```
/// use lumyx_api_types::{parse_json, ChatCompletionRequest};
///
/// let body = br#"{"model":"nova_1_1","messages":[{"role":"critic","content":"hi"}]}"#;
/// let error = parse_json::<ChatCompletionRequest>(body).unwrap_err();
/// assert_eq!(error.status().as_u16(), 400);
/// assert_eq!(error.param(), Some("messages[0].role"));
///
/// let error = parse_json::<ChatCompletionRequest>(br#"{"messages":[]}"#).unwrap_err();
/// assert_eq!(error.code().unwrap().as_str(), "missing_field");
/// assert_eq!(error.param(), Some("model"));
/// ```
pub fn parse_json<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, ApiError> {
    let value: T = from_json_slice(body)?;
    value.validate()?;
    Ok(value)
}

/// Reads JSON into `T`, turning a failure into a 400 [`ApiError`]:
/// `invalid_json` for a body that is not JSON (or not an object of the right
/// shape at its root), `missing_field` for an absent required field,
/// `invalid_value` for a wrong type or value, each with the JSON path of the
/// field in `param`.
///
/// The path costs nothing on success: only a failed body is read a second
/// time, with a path tracker.
pub fn from_json_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(tracked) => classify(tracked.inner(), &json_path::render(tracked.path())),
            // The value itself read; what failed is after it (trailing data).
            Ok(_) => classify(&error, ""),
        }
    })
}

/// [`from_json_slice`] for a `&str`.
pub fn from_json_str<T: DeserializeOwned>(body: &str) -> Result<T, ApiError> {
    from_json_slice(body.as_bytes())
}

/// Without a path (a framework's extractor gave only the error) the field of
/// a `missing field` or `duplicate field` message may sit at any depth, so it
/// is named in the message but `param` stays `None`: a bare name is not a
/// JSON path. [`from_json_slice`] gives the path.
impl From<serde_json::Error> for ApiError {
    fn from(error: serde_json::Error) -> Self {
        classify(&error, "").without_param()
    }
}

/// `, got 'value'`, with the client's value shown as every error shows it.
fn got(value: &str) -> String {
    format!(", got '{}'", shown(value))
}

/// The field of a message that is exactly `{prefix}name` + a backquote, as
/// serde writes `missing field` and `duplicate field`; `None` for any other
/// text, so a value quoted inside another message cannot pose as one.
fn named_field<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let field = message.strip_prefix(prefix)?.strip_suffix('`')?;
    let plain = !field.is_empty() && !field.contains(['`', '"', ' ']);
    plain.then_some(field)
}

/// Longest detail of a failed read carried into an error message, in
/// characters: enough for `invalid type: string, expected u32`, never a
/// client's whole value.
const MAX_DETAIL_CHARS: usize = 100;

/// serde's message without the client's input it quotes: `invalid type:
/// string "nova_…", expected u32` becomes `invalid type: string, expected
/// u32`, `unknown variant `x`, expected one of …` becomes `unknown variant,
/// expected one of …`; cut to [`MAX_DETAIL_CHARS`] in any case.
fn describe(message: &str) -> String {
    let detail = without_input(message);
    match detail.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => format!("{}…", &detail[..end]),
        None => detail,
    }
}

fn without_input(message: &str) -> String {
    // What comes after the last `, expected ` is the type's own `expecting`
    // text; anything before it may be the client's.
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let Some(at) = rest.rfind(", expected ") else {
                return prefix.trim_end_matches(": ").to_owned();
            };
            let unexpected = &rest[..at];
            let kind = unexpected
                .find(['"', '`'])
                .map_or(unexpected, |quote| &unexpected[..quote])
                .trim_end();
            return format!("{prefix}{kind}{}", &rest[at..]);
        }
    }
    for (prefix, what) in [
        ("unknown variant `", "unknown variant"),
        ("unknown field `", "unknown field"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return match rest.rfind("`, expected ") {
                Some(at) => format!("{what}, {}", &rest[at + 3..]),
                None => what.to_owned(),
            };
        }
    }
    message.to_owned()
}

fn classify(error: &serde_json::Error, path: &str) -> ApiError {
    let full = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    match error.classify() {
        Category::Io | Category::Syntax | Category::Eof => ApiError::invalid_json(format!(
            "{} at line {}, column {}",
            describe(message),
            error.line(),
            error.column()
        )),
        Category::Data => data_error(message, path),
    }
}

fn data_error(message: &str, path: &str) -> ApiError {
    if let Some((inner, rest)) = json_path::split_nested(message) {
        return data_error(rest, &json_path::join(path, inner));
    }
    if let Some(field) = named_field(message, "missing field `") {
        return ApiError::missing_field(json_path::join(path, field));
    }
    if let Some(field) = named_field(message, "duplicate field `") {
        return ApiError::invalid_value(json_path::join(path, field), "the field appears twice");
    }
    // A wrong type at the root (a string, an array) is not a field of the
    // body: the body is not the JSON object asked for.
    if path.is_empty() {
        ApiError::invalid_json(describe(message))
    } else {
        ApiError::invalid_value(path, describe(message))
    }
}

struct Range<'a, T>(&'a RangeInclusive<T>);

impl<T: fmt::Display> fmt::Display for Range<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "from {} to {}", self.0.start(), self.0.end())
    }
}

fn check_range<T: PartialOrd + fmt::Display>(
    param: &str,
    value: T,
    range: &RangeInclusive<T>,
    what: &str,
) -> Result<(), ApiError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(
            param,
            format_args!("expected {what} {}, got {value}", Range(range)),
        ))
    }
}

/// Checks a key's `rate_limit_per_minute` against
/// [`RATE_LIMIT_PER_MINUTE_RANGE`](crate::RATE_LIMIT_PER_MINUTE_RANGE).
pub fn check_rate_limit_per_minute(value: u32) -> Result<(), ApiError> {
    check_range(
        "rate_limit_per_minute",
        value,
        &RATE_LIMIT_PER_MINUTE_RANGE,
        "an integer",
    )
}

/// Checks a key's `daily_limit` against
/// [`DAILY_LIMIT_RANGE`](crate::DAILY_LIMIT_RANGE).
pub fn check_daily_limit(value: u32) -> Result<(), ApiError> {
    check_range("daily_limit", value, &DAILY_LIMIT_RANGE, "an integer")
}

/// Checks a key's `expires_at` against `EXPIRES_AT_RANGE`: after
/// 1970-01-01, at most 9999-12-31T23:59:59Z.
fn check_expires_at(value: i64) -> Result<(), ApiError> {
    if EXPIRES_AT_RANGE.contains(&value) {
        Ok(())
    } else {
        Err(ApiError::invalid_value(
            "expires_at",
            format_args!(
                "expected Unix seconds after 1970-01-01 and at most {} \
                 (9999-12-31T23:59:59Z), got {value}",
                EXPIRES_AT_RANGE.end()
            ),
        ))
    }
}

fn check_not_empty(param: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        Err(ApiError::invalid_value(
            param,
            "expected a non-empty string, got an empty one",
        ))
    } else {
        Ok(())
    }
}

/// The longest name or owner of a key, in characters.
pub const MAX_LABEL_CHARS: usize = 256;

/// A key's name or owner: not empty, at most [`MAX_LABEL_CHARS`]
/// characters, no control characters (they would forge lines in logs and
/// terminals).
fn check_label(param: &str, value: &str) -> Result<(), ApiError> {
    check_not_empty(param, value)?;
    let chars = value.chars().count();
    if chars > MAX_LABEL_CHARS {
        return Err(ApiError::invalid_value(
            param,
            format_args!("expected at most {MAX_LABEL_CHARS} characters, got {chars}"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid_value(
            param,
            "expected text without control characters (line breaks, tabs, escapes)",
        ));
    }
    Ok(())
}

fn check_at_least_one(param: &str, value: Option<u32>) -> Result<(), ApiError> {
    match value {
        Some(0) => Err(ApiError::invalid_value(
            param,
            "expected an integer of at least 1, got 0",
        )),
        _ => Ok(()),
    }
}

fn check_metadata(param: &str, metadata: &Metadata) -> Result<(), ApiError> {
    if metadata.len() > METADATA_MAX_PAIRS {
        return Err(ApiError::invalid_value(
            param,
            format_args!(
                "expected at most {METADATA_MAX_PAIRS} pairs, got {}",
                metadata.len()
            ),
        ));
    }
    for (key, value) in metadata {
        let path = || json_path::map_entry(param, key).unwrap_or_else(|| param.to_owned());
        if key.chars().count() > METADATA_MAX_KEY_CHARS {
            return Err(ApiError::invalid_value(
                param,
                format_args!("expected keys of at most {METADATA_MAX_KEY_CHARS} characters"),
            ));
        }
        if value.chars().count() > METADATA_MAX_VALUE_CHARS {
            return Err(ApiError::invalid_value(
                path(),
                format_args!("expected a value of at most {METADATA_MAX_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

fn known_list<T: fmt::Display>(known: &[T]) -> String {
    known
        .iter()
        .map(|value| format!("'{value}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn part_allowed(role: &Role, part: &ContentPart) -> bool {
    match part {
        ContentPart::Text { .. } => true,
        ContentPart::Refusal { .. } => *role == Role::Assistant,
        ContentPart::ImageUrl { .. }
        | ContentPart::InputAudio { .. }
        | ContentPart::File { .. } => *role == Role::User,
        ContentPart::Other(_) => false,
    }
}

/// Where a message sits (`messages[3]`), rendered only when an error needs it.
#[derive(Clone, Copy)]
struct MessagePath<'a> {
    list: &'a str,
    index: usize,
}

impl MessagePath<'_> {
    fn field(self, field: &str) -> String {
        format!("{}[{}].{field}", self.list, self.index)
    }
}

fn check_message(at: MessagePath<'_>, message: &ChatMessage) -> Result<(), ApiError> {
    let role = &message.role;
    if !role.is_known() {
        return Err(ApiError::invalid_value(
            at.field("role"),
            format_args!(
                "expected one of {}{}",
                known_list(Role::KNOWN),
                got(role.as_str())
            ),
        ));
    }
    match &message.content {
        None => {
            // `tool_calls: []` calls nothing: it is not an output.
            let calls_tools = message
                .tool_calls
                .as_ref()
                .is_some_and(|calls| !calls.is_empty());
            let has_other_output = calls_tools || message.refusal.is_some();
            if !(*role == Role::Assistant && has_other_output) {
                return Err(ApiError::missing_field(at.field("content")));
            }
        }
        Some(MessageContent::Text(_)) => {}
        Some(MessageContent::Parts(parts)) => {
            if parts.is_empty() {
                return Err(ApiError::invalid_value(
                    at.field("content"),
                    "expected a string or at least one content part, got an empty array",
                ));
            }
            for (index, part) in parts.iter().enumerate() {
                if !part_allowed(role, part) {
                    return Err(ApiError::invalid_value(
                        at.field(&format!("content[{index}].type")),
                        format_args!(
                            "a content part of type '{}' is not supported in a '{role}' message",
                            shown(part.kind())
                        ),
                    ));
                }
            }
        }
    }
    if *role == Role::Tool && message.tool_call_id.is_none() {
        return Err(ApiError::missing_field(at.field("tool_call_id")));
    }
    if *role == Role::Function && message.name.is_none() {
        return Err(ApiError::missing_field(at.field("name")));
    }
    Ok(())
}

fn check_messages(list: &str, messages: &[ChatMessage]) -> Result<(), ApiError> {
    for (index, message) in messages.iter().enumerate() {
        check_message(MessagePath { list, index }, message)?;
    }
    Ok(())
}

impl Validate for ChatMessage {
    /// Checks the message as the first of a list (`param` starts at `messages[0]`).
    fn validate(&self) -> Result<(), ApiError> {
        check_message(
            MessagePath {
                list: "messages",
                index: 0,
            },
            self,
        )
    }
}

impl Validate for ChatCompletionRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_not_empty("model", &self.model)?;
        if self.messages.is_empty() {
            return Err(ApiError::invalid_value(
                "messages",
                "expected at least one message, got an empty array",
            ));
        }
        check_messages("messages", &self.messages)?;
        if let Some(temperature) = self.temperature {
            check_range("temperature", temperature, &TEMPERATURE_RANGE, "a number")?;
        }
        if let Some(top_p) = self.top_p {
            check_range("top_p", top_p, &TOP_P_RANGE, "a number")?;
        }
        if let Some(n) = self.n {
            check_range("n", n, &CHOICES_RANGE, "an integer")?;
        }
        check_at_least_one("max_tokens", self.max_tokens)?;
        check_at_least_one("max_completion_tokens", self.max_completion_tokens)?;
        if self.stream_options.is_some() && !self.is_stream() {
            return Err(ApiError::invalid_value(
                "stream_options",
                "'stream_options' is only allowed when 'stream' is true",
            ));
        }
        if let Some(metadata) = &self.metadata {
            check_metadata("metadata", metadata)?;
        }
        if let Some(conversation_id) = &self.conversation_id {
            check_not_empty("conversation_id", conversation_id)?;
        }
        Ok(())
    }
}

/// Checks the name and owner (not empty), the limits (in their ranges), the
/// scopes (known, at least one when given) and `expires_at`: Unix seconds
/// after 1970-01-01 and at most 253402300799 (9999-12-31T23:59:59Z), the
/// latest time a key record holds. Each failure is a 400 `invalid_value`
/// whose `param` names the field.
///
/// Whether `expires_at` is still in the future is not checked here: that
/// needs a clock, so it is the server's job when it creates the key.
impl Validate for CreateKeyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_label("name", &self.name)?;
        check_label("owner", &self.owner)?;
        check_key_settings(
            self.rate_limit_per_minute,
            self.daily_limit,
            self.expires_at,
            self.scopes.as_deref(),
        )
    }
}

/// The same checks as [`CreateKeyRequest`]'s, on the fields present.
impl Validate for UpdateKeyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(name) = &self.name {
            check_label("name", name)?;
        }
        check_key_settings(
            self.rate_limit_per_minute,
            self.daily_limit,
            self.expires_at.flatten(),
            self.scopes.as_deref(),
        )
    }
}

/// The limits, expiry and scopes of a key's creation or update, each when
/// present.
fn check_key_settings(
    rate_limit_per_minute: Option<u32>,
    daily_limit: Option<u32>,
    expires_at: Option<i64>,
    scopes: Option<&[Scope]>,
) -> Result<(), ApiError> {
    if let Some(rpm) = rate_limit_per_minute {
        check_rate_limit_per_minute(rpm)?;
    }
    if let Some(daily) = daily_limit {
        check_daily_limit(daily)?;
    }
    if let Some(expires_at) = expires_at {
        check_expires_at(expires_at)?;
    }
    if let Some(scopes) = scopes {
        if scopes.is_empty() {
            return Err(ApiError::invalid_value(
                "scopes",
                "expected at least one scope (leave 'scopes' out for all of them)",
            ));
        }
        if let Some((index, scope)) = scopes.iter().enumerate().find(|(_, s)| !s.is_known()) {
            return Err(ApiError::invalid_value(
                format!("scopes[{index}]"),
                format_args!(
                    "expected one of {}{}",
                    known_list(Scope::KNOWN),
                    got(scope.as_str())
                ),
            ));
        }
    }
    Ok(())
}

/// Checks `grace_period_seconds`: at most
/// [`MAX_GRACE_PERIOD_SECONDS`](crate::MAX_GRACE_PERIOD_SECONDS). A rotation
/// carries no expiry of its own: the new key keeps the old one's
/// `expires_at`, which was checked when the key was created.
impl Validate for RotateKeyRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(grace) = self.grace_period_seconds {
            check_range(
                "grace_period_seconds",
                grace,
                &(0..=MAX_GRACE_PERIOD_SECONDS),
                "a number of seconds",
            )?;
        }
        Ok(())
    }
}

/// Checks `owner` (not empty when given) and the page as [`ListParams`].
impl Validate for KeyListParams {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(owner) = &self.owner {
            check_not_empty("owner", owner)?;
        }
        self.page().validate()
    }
}

impl Validate for ListParams {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(limit) = self.limit {
            check_range("limit", limit, &LIST_LIMIT_RANGE, "an integer")?;
        }
        if let Some(order) = &self.order
            && !order.is_known()
        {
            return Err(ApiError::invalid_value(
                "order",
                format_args!(
                    "expected one of {}{}",
                    known_list(ListOrder::KNOWN),
                    got(order.as_str())
                ),
            ));
        }
        Ok(())
    }
}

impl Validate for CreateConversationRequest {
    fn validate(&self) -> Result<(), ApiError> {
        if let Some(metadata) = &self.metadata {
            check_metadata("metadata", metadata)?;
        }
        check_messages("messages", &self.messages)
    }
}

impl Validate for UpdateConversationRequest {
    fn validate(&self) -> Result<(), ApiError> {
        check_metadata("metadata", &self.metadata)
    }
}
