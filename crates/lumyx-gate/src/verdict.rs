//! What the gate answers: admitted, with the key and its limits, or denied,
//! with the refusal. Either renders its own headers into an
//! `http::HeaderMap`; a denial also makes its error envelope. Nothing is
//! allocated for either until it is rendered.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use lumyx_api_types::{ApiError, ErrorCode};
use lumyx_keys::{KeyRecord, Scope};
use lumyx_ratelimit::{Denial, RateLimitHeaders, Snapshot};

use crate::KeyEntry;

/// `x-lumyx-key-expires-at`: when the presented key stops working, sent on
/// admitted responses while that is less than 7 days away.
pub const KEY_EXPIRES_AT: HeaderName = HeaderName::from_static("x-lumyx-key-expires-at");

/// The gate's answer to one request.
#[derive(Debug, Clone)]
#[must_use = "a verdict that is not looked at admits everything"]
pub enum Verdict {
    /// The key is valid, has the scope, and both limits admitted the request.
    Admitted(Admitted),
    /// The request is refused.
    Denied(Denied),
}

impl Verdict {
    /// Whether the request was admitted.
    pub fn is_admitted(&self) -> bool {
        matches!(self, Verdict::Admitted(_))
    }

    /// The HTTP status of the response: 200 when admitted (the route's own
    /// status wins), else the refusal's.
    pub fn status(&self) -> StatusCode {
        match self {
            Verdict::Admitted(_) => StatusCode::OK,
            Verdict::Denied(denied) => denied.status(),
        }
    }

    /// Inserts the verdict's headers into `headers`.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        match self {
            Verdict::Admitted(admitted) => admitted.write_headers(headers),
            Verdict::Denied(denied) => denied.write_headers(headers),
        }
    }
}

/// An admitted request: the key's entry, its limits after this request, and
/// when the key stops working if that is near.
#[derive(Clone)]
pub struct Admitted {
    pub(crate) entry: Arc<KeyEntry>,
    pub(crate) snapshot: Snapshot,
    pub(crate) stops_at: Option<DateTime<Utc>>,
}

impl Admitted {
    /// The key's record.
    pub fn record(&self) -> &KeyRecord {
        self.entry.record()
    }

    /// The key's entry in the table (its record, limits and usage).
    pub fn entry(&self) -> &Arc<KeyEntry> {
        &self.entry
    }

    /// The key's limits after this request.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// When the key stops working (its expiry, or the end of its rotation
    /// grace period), if that is within 7 days.
    pub fn stops_at(&self) -> Option<DateTime<Utc>> {
        self.stops_at
    }

    /// Inserts the eight rate-limit headers, and `x-lumyx-key-expires-at`
    /// when the key stops working within 7 days.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        self.snapshot
            .headers()
            .write_to_with_policy(self.entry.policy_header(), headers);
        if let Some(stops_at) = self.stops_at {
            let text = stops_at.to_rfc3339_opts(SecondsFormat::Secs, true);
            if let Ok(value) = HeaderValue::from_str(&text) {
                headers.insert(KEY_EXPIRES_AT, value);
            }
        }
    }
}

impl fmt::Debug for Admitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admitted")
            .field("key", &self.entry)
            .field("snapshot", &self.snapshot)
            .field("stops_at", &self.stops_at)
            .finish()
    }
}

/// Why a request was refused, in the order the gate checks: the header, the
/// key, its expiry, its revocation, its scope, then the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No `Authorization` header, or an empty one (401).
    MissingApiKey,
    /// The header is not `Bearer <token>` (401).
    InvalidAuthorizationHeader,
    /// The token is not a well-formed key, or no such key exists (401).
    InvalidApiKey,
    /// The key has expired (403).
    KeyExpired,
    /// The key was revoked (403).
    KeyRevoked,
    /// The key lacks the route's scope (403).
    InsufficientScope,
    /// The minute limit refused (429).
    RateLimitExceeded,
    /// The day limit refused, alone or with the minute's (429).
    DailyLimitExceeded,
    /// The limits could not be decided: Redis cannot serve under a
    /// fail-closed policy, or it refused this key's call (503).
    ServiceUnavailable,
    /// The gate is misconfigured (500).
    InternalError,
}

impl Refusal {
    /// The HTTP status the API answers with.
    pub fn status(self) -> StatusCode {
        self.code()
            .classification()
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, |(status, _)| status)
    }

    /// The error code the API answers with.
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::MissingApiKey => ErrorCode::MissingApiKey,
            Refusal::InvalidAuthorizationHeader => ErrorCode::InvalidAuthorizationHeader,
            Refusal::InvalidApiKey => ErrorCode::InvalidApiKey,
            Refusal::KeyExpired => ErrorCode::ApiKeyExpired,
            Refusal::KeyRevoked => ErrorCode::ApiKeyRevoked,
            Refusal::InsufficientScope => ErrorCode::InsufficientScope,
            Refusal::RateLimitExceeded => ErrorCode::RateLimitExceeded,
            Refusal::DailyLimitExceeded => ErrorCode::DailyLimitExceeded,
            Refusal::ServiceUnavailable => ErrorCode::ServiceUnavailable,
            Refusal::InternalError => ErrorCode::InternalError,
        }
    }
}

/// What of the limits a refusal saw.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LimitsSeen {
    /// The refusal came before the key was known to be valid.
    Nothing,
    /// A valid key refused for its scope: its limits, untouched.
    Untouched(Snapshot),
    /// Refused by a limit.
    Refused(Denial),
}

/// A refused request: the refusal, the key when it was found, and what of
/// its limits the refusal saw.
#[derive(Clone)]
pub struct Denied {
    pub(crate) refusal: Refusal,
    pub(crate) entry: Option<Arc<KeyEntry>>,
    pub(crate) scope: Option<Scope>,
    pub(crate) limits: LimitsSeen,
}

impl Denied {
    pub(crate) fn new(refusal: Refusal) -> Denied {
        Denied {
            refusal,
            entry: None,
            scope: None,
            limits: LimitsSeen::Nothing,
        }
    }

    /// Why.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.refusal.status()
    }

    /// The record of the presented key, when it was found.
    pub fn record(&self) -> Option<&KeyRecord> {
        self.entry.as_deref().map(KeyEntry::record)
    }

    /// The error to answer with (its message names the key by its hint).
    pub fn error(&self) -> ApiError {
        let hint = || {
            self.record()
                .map_or_else(String::new, |record| record.hint.to_string())
        };
        match (self.refusal, &self.limits) {
            (Refusal::MissingApiKey, _) => ApiError::missing_api_key(),
            (Refusal::InvalidAuthorizationHeader, _) => ApiError::invalid_authorization_header(),
            (Refusal::InvalidApiKey, _) => ApiError::invalid_api_key(),
            (Refusal::KeyExpired, _) => ApiError::api_key_expired(&hint()),
            (Refusal::KeyRevoked, _) => ApiError::api_key_revoked(&hint()),
            (Refusal::InsufficientScope, _) => {
                ApiError::insufficient_scope(self.scope.map_or("", |scope| scope.as_str()))
            }
            (Refusal::RateLimitExceeded, LimitsSeen::Refused(denial)) => {
                ApiError::rate_limit_exceeded(denial.snapshot.minute.limit, denial.retry_after)
            }
            (Refusal::DailyLimitExceeded, LimitsSeen::Refused(denial)) => {
                ApiError::daily_limit_exceeded(denial.snapshot.day.limit, denial.retry_after)
            }
            (Refusal::RateLimitExceeded | Refusal::DailyLimitExceeded, _)
            | (Refusal::InternalError, _) => ApiError::internal_error(),
            (Refusal::ServiceUnavailable, _) => ApiError::service_unavailable(),
        }
    }

    /// The response body: the error envelope, as JSON.
    pub fn body(&self) -> Vec<u8> {
        // An `ApiError` always serializes.
        serde_json::to_vec(&self.error()).unwrap_or_default()
    }

    /// Inserts the refusal's headers: `www-authenticate: Bearer` on a 401;
    /// the rate-limit headers when the key was valid (with `retry-after`,
    /// `retry-after-ms` and, for the day limit, `x-should-retry: false` on a
    /// 429).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let limits = match &self.limits {
            LimitsSeen::Nothing => None,
            LimitsSeen::Untouched(snapshot) => Some(snapshot.headers()),
            LimitsSeen::Refused(denial) => Some(RateLimitHeaders::of_decision(
                &lumyx_ratelimit::Decision::Denied(*denial),
            )),
        };
        if let Some(limits) = limits {
            match &self.entry {
                Some(entry) => limits.write_to_with_policy(entry.policy_header(), headers),
                None => limits.write_to(headers),
            }
        }
        if matches!(
            self.refusal,
            Refusal::MissingApiKey | Refusal::InvalidAuthorizationHeader | Refusal::InvalidApiKey
        ) {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
    }
}

impl fmt::Debug for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Denied")
            .field("refusal", &self.refusal)
            .field("key", &self.entry)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
