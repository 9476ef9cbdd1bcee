//! Key management, the developer dashboard: `/v1/keys` (admin token).
//!
//! Timestamps (`created_at`, `expires_at`, `revoked_at`, `last_used_at`) are
//! Unix seconds (`i64`), like OpenAI's `created`, so the crate needs no date
//! library and clients compare them as numbers.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::ErrorCode;
use crate::limits::{DEFAULT_DAILY_LIMIT, DEFAULT_RATE_LIMIT_PER_MINUTE};
use crate::list::{ListOrder, ListParams};

open_enum! {
    /// An endpoint group a key may call. A key created without `scopes` may
    /// call every group.
    pub enum Scope {
        /// `/v1/models`.
        Models => "models",
        /// `/v1/chat/completions`.
        Chat => "chat",
        /// `/v1/agents/{persona_id}/chat/completions`.
        Agents => "agents",
        /// `/v1/personas`.
        Personas => "personas",
        /// `/v1/conversations`.
        Conversations => "conversations",
    }
}

impl Scope {
    /// Every scope: what a key gets when it is created without `scopes`.
    pub fn all() -> Vec<Scope> {
        Scope::KNOWN.to_vec()
    }
}

/// The body of `POST /v1/keys`. Limits and scopes left out take their
/// defaults ([`DEFAULT_RATE_LIMIT_PER_MINUTE`], [`DEFAULT_DAILY_LIMIT`], every
/// scope); validation keeps them in their ranges.
///
/// ```
/// use lumyx_api_types::{CreateKeyRequest, Validate};
///
/// let request = CreateKeyRequest::new("ci", "acct_1").with_limits(120, 5000);
/// request.validate().unwrap();
/// assert_eq!(request.rate_limit_per_minute(), 120);
/// assert_eq!(CreateKeyRequest::new("ci", "acct_1").daily_limit(), 1000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKeyRequest {
    /// A name to recognise the key by.
    pub name: String,
    /// The account the key belongs to.
    pub owner: String,
    /// Requests per minute, 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// Requests per UTC day, 1 to 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
    /// Unix seconds after which the key is refused; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Endpoint groups the key may call; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
}

impl CreateKeyRequest {
    /// A request with the required name and owner and every default.
    pub fn new(name: impl Into<String>, owner: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            owner: owner.into(),
            rate_limit_per_minute: None,
            daily_limit: None,
            expires_at: None,
            scopes: None,
        }
    }

    /// Sets both limits.
    #[must_use]
    pub fn with_limits(mut self, rate_limit_per_minute: u32, daily_limit: u32) -> Self {
        self.rate_limit_per_minute = Some(rate_limit_per_minute);
        self.daily_limit = Some(daily_limit);
        self
    }

    /// Sets the expiry, in Unix seconds.
    #[must_use]
    pub fn with_expires_at(mut self, expires_at: i64) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets the scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: Vec<Scope>) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// The per-minute limit, default applied.
    pub fn rate_limit_per_minute(&self) -> u32 {
        self.rate_limit_per_minute
            .unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE)
    }

    /// The daily limit, default applied.
    pub fn daily_limit(&self) -> u32 {
        self.daily_limit.unwrap_or(DEFAULT_DAILY_LIMIT)
    }

    /// The scopes, default (all) applied.
    pub fn scopes(&self) -> Vec<Scope> {
        self.scopes.clone().unwrap_or_else(Scope::all)
    }
}

/// A key as management endpoints show it: everything but the key itself.
/// `expires_at` and `revoked_at` are always written, `null` when unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Public id, `key_` + 16 hex digits.
    pub id: String,
    /// Public hint, such as `nova_0123…6dce`.
    pub hint: String,
    /// Name given at creation.
    pub name: String,
    /// The account the key belongs to.
    pub owner: String,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of expiry.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Unix seconds of revocation.
    #[serde(default)]
    pub revoked_at: Option<i64>,
    /// Requests per minute.
    pub rate_limit_per_minute: u32,
    /// Requests per UTC day.
    pub daily_limit: u32,
    /// Endpoint groups the key may call.
    pub scopes: Vec<Scope>,
}

/// The answer of `POST /v1/keys` and `POST /v1/keys/{id}/rotate` (201): the
/// key in a `key` field, beside the fields of its record.
///
/// This is the only time the key is shown. `Debug` prints the record, not
/// the key; [`expose_key`](Self::expose_key) reads it, and its memory is
/// zeroized when this value is dropped.
///
/// ```
/// use lumyx_api_types::{CreatedKey, KeyRecord, Scope};
///
/// let record = KeyRecord {
///     id: "key_4e58d9f4757ccfc3".into(),
///     hint: "nova_0123…6dce".into(),
///     name: "ci".into(),
///     owner: "acct_1".into(),
///     created_at: 1_764_000_000,
///     expires_at: None,
///     revoked_at: None,
///     rate_limit_per_minute: 60,
///     daily_limit: 1000,
///     scopes: Scope::all(),
/// };
/// let created = CreatedKey::new("nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce", record);
/// let json = serde_json::to_value(&created).unwrap();
/// assert_eq!(json["id"], "key_4e58d9f4757ccfc3");
/// assert!(json["key"].as_str().unwrap().starts_with("nova_"));
/// assert!(!format!("{created:?}").contains("ece76dce"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedKey {
    key: Zeroizing<String>,
    /// The record of the new key.
    #[serde(flatten)]
    pub record: KeyRecord,
}

impl CreatedKey {
    /// The answer for a freshly created or rotated `key` and its record.
    pub fn new(key: impl Into<String>, record: KeyRecord) -> Self {
        Self {
            key: Zeroizing::new(key.into()),
            record,
        }
    }

    /// The key. Show it to its owner once; never log it.
    pub fn expose_key(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &self.record.hint)
            .field("record", &self.record)
            .finish()
    }
}

/// The body of `POST /v1/keys/{id}`: the fields to change, each optional;
/// the key's limiter state is kept. `expires_at: null` removes the expiry,
/// a left-out field is unchanged.
///
/// ```
/// use lumyx_api_types::{UpdateKeyRequest, Validate};
///
/// let update: UpdateKeyRequest =
///     serde_json::from_str(r#"{"rate_limit_per_minute":120,"expires_at":null}"#).unwrap();
/// assert_eq!(update.rate_limit_per_minute, Some(120));
/// assert_eq!(update.expires_at, Some(None));
/// assert!(update.validate().is_ok());
///
/// let unchanged: UpdateKeyRequest = serde_json::from_str("{}").unwrap();
/// assert_eq!(unchanged.expires_at, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdateKeyRequest {
    /// A new name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New requests per minute, 1 to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    /// New requests per UTC day, 1 to 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
    /// A new expiry in Unix seconds (`Some(Some(_))`), none (`Some(None)`,
    /// written `null`), or unchanged (`None`, left out).
    #[serde(
        default,
        with = "crate::wire::double_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires_at: Option<Option<i64>>,
    /// New endpoint groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
}

/// Query parameters of `GET /v1/keys`: the keys of `owner` (every owner's
/// when left out), a page of them as [`ListParams`] asks.
///
/// The page's fields are repeated here rather than flattened: through
/// `#[serde(flatten)]` a query string's numbers would arrive as text and be
/// refused.
///
/// ```
/// use lumyx_api_types::{KeyListParams, Validate};
///
/// let params: KeyListParams = serde_json::from_str(r#"{"owner":"acct_1","limit":2}"#).unwrap();
/// assert_eq!(params.page().limit, Some(2));
/// assert!(params.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct KeyListParams {
    /// Only this owner's keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Items per page, 1 to 100, default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Sort order by creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<ListOrder>,
    /// Cursor: the id of the key after which the page starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl KeyListParams {
    /// The page asked for.
    pub fn page(&self) -> ListParams {
        ListParams {
            limit: self.limit,
            order: self.order.clone(),
            after: self.after.clone(),
        }
    }
}

/// The body of `POST /v1/keys/{id}/rotate`; `{}` (or no body) rotates
/// without a grace period. The new key keeps the old one's settings.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RotateKeyRequest {
    /// Seconds during which the old key stays valid beside the new one, at
    /// most [`MAX_GRACE_PERIOD_SECONDS`](crate::MAX_GRACE_PERIOD_SECONDS)
    /// (checked by [`Validate`](crate::Validate)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period_seconds: Option<u64>,
}

/// Request counts of a key over a period.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageCounts {
    /// Requests admitted.
    pub admitted: u64,
    /// Requests denied, all reasons together.
    pub denied: u64,
    /// Requests denied, by the error code that denied them
    /// (`rate_limit_exceeded`, `daily_limit_exceeded`, `insufficient_scope`,
    /// `api_key_expired`, `api_key_revoked`, …).
    #[serde(default)]
    pub denied_by_reason: BTreeMap<ErrorCode, u64>,
}

impl UsageCounts {
    /// Counts one admitted request.
    pub fn record_admitted(&mut self) {
        self.admitted += 1;
    }

    /// Counts one request denied with `reason`.
    pub fn record_denied(&mut self, reason: ErrorCode) {
        self.denied += 1;
        *self.denied_by_reason.entry(reason).or_insert(0) += 1;
    }
}

/// The answer of `GET /v1/keys/{id}/usage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUsage {
    /// The key's public id.
    pub id: String,
    /// Counts of the current UTC day.
    pub today: UsageCounts,
    /// Counts since the key was created.
    pub total: UsageCounts,
    /// Unix seconds of the last admitted request (`null` if never used).
    #[serde(default)]
    pub last_used_at: Option<i64>,
    /// The last 31 UTC days, oldest first, every day present (days without
    /// requests have zero counts).
    #[serde(default)]
    pub days: Vec<DayUsage>,
    /// The key's limits now, read without consuming anything.
    #[serde(default)]
    pub limits: Option<UsageLimits>,
}

/// The counts of one UTC day of a key's usage.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayUsage {
    /// The day, `YYYY-MM-DD` (UTC).
    pub date: String,
    /// What the day's requests came to.
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// Both limits of a key at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UsageLimits {
    /// The per-minute bucket.
    pub minute: LimitState,
    /// The per-UTC-day count.
    pub day: LimitState,
}

/// One limit at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LimitState {
    /// Requests per minute, or per UTC day.
    pub limit: u32,
    /// How many more requests it admits now.
    pub remaining: u32,
    /// Whole seconds, rounded up, until it is full again (minute) or until
    /// the next UTC midnight (day).
    pub reset: u64,
}
