//! What a store keeps of a key: never the key, only its digest,
//! its public id and hint, and the settings that govern it.
//!
//! Every time on a record lies between [`KeyRecord::MIN_TIME`] and
//! [`KeyRecord::MAX_TIME`], checked by every store before it writes and by
//! deserialization, so that whatever a store accepted it can read back.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use lumyx_ratelimit::Limits;
use serde::{Deserialize, Deserializer, Serialize};

use crate::{ApiKeyRef, Error, KeyDigest, KeyHint, KeyId};

/// An endpoint group a key may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `GET /v1/models`, `GET /v1/models/{id}`.
    Models,
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/agents/{persona_id}/chat/completions`.
    Agents,
    /// `GET /v1/personas`, `GET /v1/personas/{id}`.
    Personas,
    /// `/v1/conversations` and everything below it.
    Conversations,
}

impl Scope {
    /// Every scope, in the order lists show them.
    pub const ALL: [Scope; 5] = [
        Scope::Models,
        Scope::Chat,
        Scope::Agents,
        Scope::Personas,
        Scope::Conversations,
    ];

    /// The scope's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Models => "models",
            Scope::Chat => "chat",
            Scope::Agents => "agents",
            Scope::Personas => "personas",
            Scope::Conversations => "conversations",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == name)
            .ok_or(Error::Text {
                what: "scope",
                expected: "one of models, chat, agents, personas, conversations",
            })
    }
}

/// A set of [`Scope`]s; all of them by default. Serialized as a list of names.
///
/// ```
/// use lumyx_keys::{Scope, Scopes};
///
/// let scopes: Scopes = [Scope::Models, Scope::Chat].into_iter().collect();
/// assert!(scopes.contains(Scope::Chat));
/// assert!(!scopes.contains(Scope::Agents));
/// assert!(Scopes::default().contains(Scope::Agents));
/// assert_eq!(serde_json::to_string(&scopes).unwrap(), r#"["models","chat"]"#);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "Vec<Scope>", from = "Vec<Scope>")]
pub struct Scopes(u8);

impl Scopes {
    /// No scope at all: such a key may call nothing.
    pub const NONE: Scopes = Scopes(0);
    /// Every scope.
    pub const ALL: Scopes = Scopes(
        Scope::Models.bit()
            | Scope::Chat.bit()
            | Scope::Agents.bit()
            | Scope::Personas.bit()
            | Scope::Conversations.bit(),
    );

    /// Whether `scope` is in the set.
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// The set with `scope` added.
    #[must_use]
    pub const fn with(self, scope: Scope) -> Scopes {
        Scopes(self.0 | scope.bit())
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The scopes in the set, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }
}

impl Default for Scopes {
    fn default() -> Self {
        Scopes::ALL
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        scopes.into_iter().fold(Scopes::NONE, Scopes::with)
    }
}

impl From<Vec<Scope>> for Scopes {
    fn from(scopes: Vec<Scope>) -> Self {
        scopes.into_iter().collect()
    }
}

impl From<Scopes> for Vec<Scope> {
    fn from(scopes: Scopes) -> Self {
        scopes.iter().collect()
    }
}

/// What a store keeps of a key: its digest, public id and hint, and settings.
///
/// Build one with [`KeyRecord::new`], which derives `id`, `digest` and `hint`
/// from the key. Stores refuse a record that [`KeyRecord::validate`]
/// refuses: one whose id is not its digest's, or with a time outside
/// [`KeyRecord::MIN_TIME`]`..=`[`KeyRecord::MAX_TIME`] (deserialization
/// refuses such times too).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// use lumyx_keys::{ApiKey, KeyRecord, KeyStatus};
///
/// let key = ApiKey::generate()?;
/// let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
/// let record = KeyRecord::new(key.as_key_ref(), "ci", "acct_1", created)
///     .with_expiry(created + chrono::Duration::days(30));
/// assert_eq!(record.id, key.id());
/// assert_eq!(record.status(created), KeyStatus::Active);
/// assert!(!serde_json::to_string(&record).unwrap().contains(key.expose_secret()));
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The public id, derived from `digest`.
    pub id: KeyId,
    /// The SHA-256 digest of the key.
    pub digest: KeyDigest,
    /// The public hint of the key.
    pub hint: KeyHint,
    /// A name its owner gave the key.
    pub name: String,
    /// The account that owns the key.
    pub owner: String,
    /// When the key was minted.
    #[serde(deserialize_with = "bounded::created_at")]
    pub created_at: DateTime<Utc>,
    /// From when on the key is refused as expired, if ever.
    #[serde(default, deserialize_with = "bounded::expires_at")]
    pub expires_at: Option<DateTime<Utc>>,
    /// From when on the key is refused as revoked, if ever.
    #[serde(default, deserialize_with = "bounded::revoked_at")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The key's limits, requests per minute (1 to 1000) and per UTC day
    /// (1 to 10000), validated; serialized as the two fields
    /// `rate_limit_per_minute` and `daily_limit`, which default to 60 and 1000.
    #[serde(flatten)]
    pub limits: Limits,
    /// The endpoint groups the key may call.
    #[serde(default)]
    pub scopes: Scopes,
}

/// Whether a record admits its key at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "at")]
pub enum KeyStatus {
    /// Neither expired nor revoked.
    Active,
    /// Expired at the given time.
    Expired(DateTime<Utc>),
    /// Revoked at the given time.
    Revoked(DateTime<Utc>),
}

impl KeyRecord {
    /// The earliest time a record may hold: 0000-01-01T00:00:00Z, the first
    /// instant RFC 3339 can write, so that a record's JSON reads back in any
    /// language.
    pub const MIN_TIME: DateTime<Utc> = match DateTime::from_timestamp(-62_167_219_200, 0) {
        Some(time) => time,
        None => panic!("year 0 is within chrono's range"),
    };

    /// The latest time a record may hold: 9999-12-31T23:59:59Z. A key that
    /// should never expire has no `expires_at`; a later time is refused.
    pub const MAX_TIME: DateTime<Utc> = match DateTime::from_timestamp(253_402_300_799, 0) {
        Some(time) => time,
        None => panic!("year 9999 is within chrono's range"),
    };

    /// A record of `key` with default limits and all scopes, never expiring.
    pub fn new(
        key: ApiKeyRef<'_>,
        name: impl Into<String>,
        owner: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> KeyRecord {
        let digest = key.digest();
        KeyRecord {
            id: digest.id(),
            digest,
            hint: key.hint(),
            name: name.into(),
            owner: owner.into(),
            created_at,
            expires_at: None,
            revoked_at: None,
            limits: Limits::default(),
            scopes: Scopes::ALL,
        }
    }

    /// The record with an expiry time.
    #[must_use]
    pub fn with_expiry(mut self, expires_at: DateTime<Utc>) -> KeyRecord {
        self.expires_at = Some(expires_at);
        self
    }

    /// The record with other limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> KeyRecord {
        self.limits = limits;
        self
    }

    /// The record with other scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: Scopes) -> KeyRecord {
        self.scopes = scopes;
        self
    }

    /// Whether the key is active, expired or revoked at `now`. Expiry is
    /// checked first, as the error table orders them: a key that has both
    /// expired and been revoked is expired (`api_key_expired`), whichever
    /// happened first.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        match (self.expires_at, self.revoked_at) {
            (Some(expires_at), _) if expires_at <= now => KeyStatus::Expired(expires_at),
            (_, Some(revoked_at)) if revoked_at <= now => KeyStatus::Revoked(revoked_at),
            _ => KeyStatus::Active,
        }
    }

    /// Checks what every store checks before it writes a record: that `id`
    /// is derived from `digest`, and that every time lies within
    /// [`KeyRecord::MIN_TIME`]`..=`[`KeyRecord::MAX_TIME`].
    ///
    /// ```
    /// use chrono::{Duration, TimeZone, Utc};
    /// use lumyx_keys::{ApiKey, Error, KeyRecord};
    ///
    /// let key = ApiKey::generate()?;
    /// let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    /// let record = KeyRecord::new(key.as_key_ref(), "ci", "acct_1", created);
    /// assert!(record.clone().with_expiry(KeyRecord::MAX_TIME).validate().is_ok());
    ///
    /// let too_late = record.with_expiry(KeyRecord::MAX_TIME + Duration::seconds(1));
    /// let err = too_late.validate().unwrap_err();
    /// assert!(matches!(err, Error::TimeOutOfRange { field: "expires_at", .. }));
    /// assert_eq!(
    ///     err.to_string(),
    ///     "expires_at must be from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, \
    ///      got +10000-01-01T00:00:00Z"
    /// );
    /// # Ok::<(), lumyx_keys::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::IdMismatch`] or [`Error::TimeOutOfRange`].
    pub fn validate(&self) -> Result<(), Error> {
        self.check_consistent()?;
        KeyRecord::check_time("created_at", self.created_at)?;
        if let Some(expires_at) = self.expires_at {
            KeyRecord::check_time("expires_at", expires_at)?;
        }
        if let Some(revoked_at) = self.revoked_at {
            KeyRecord::check_time("revoked_at", revoked_at)?;
        }
        Ok(())
    }

    /// Checks that `time`, meant for the record field `field`, lies within
    /// [`KeyRecord::MIN_TIME`]`..=`[`KeyRecord::MAX_TIME`]: what stores check
    /// of a revocation time, and what an API can check of an expiry it is
    /// given.
    ///
    /// # Errors
    /// [`Error::TimeOutOfRange`] naming `field`.
    pub fn check_time(field: &'static str, time: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
        if (KeyRecord::MIN_TIME..=KeyRecord::MAX_TIME).contains(&time) {
            Ok(time)
        } else {
            Err(Error::TimeOutOfRange { field, time })
        }
    }

    /// Checks that `id` is derived from `digest`, as stores require.
    pub(crate) fn check_consistent(&self) -> Result<(), Error> {
        let digest_id = self.digest.id();
        if digest_id == self.id {
            Ok(())
        } else {
            Err(Error::IdMismatch {
                id: self.id,
                digest_id,
            })
        }
    }
}

/// A time as RFC 3339 text, as error messages show it.
pub(crate) fn rfc3339(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Deserialization of the record's times, refusing those outside
/// [`KeyRecord::MIN_TIME`]`..=`[`KeyRecord::MAX_TIME`] with an error naming
/// the field.
mod bounded {
    use super::*;

    fn time<'de, D: Deserializer<'de>>(
        field: &'static str,
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(deserializer)?
            .map(|time| KeyRecord::check_time(field, time))
            .transpose()
            .map_err(serde::de::Error::custom)
    }

    pub(super) fn created_at<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        time("created_at", deserializer)?
            .ok_or_else(|| serde::de::Error::custom("created_at must be a time, got null"))
    }

    pub(super) fn expires_at<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        time("expires_at", deserializer)
    }

    pub(super) fn revoked_at<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<DateTime<Utc>>, D::Error> {
        time("revoked_at", deserializer)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_bounds_are_the_first_and_last_seconds_of_four_digit_years() {
        assert_eq!(
            KeyRecord::MIN_TIME,
            Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            KeyRecord::MAX_TIME,
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap()
        );
        assert_eq!(rfc3339(&KeyRecord::MIN_TIME), "0000-01-01T00:00:00Z");
        assert_eq!(rfc3339(&KeyRecord::MAX_TIME), "9999-12-31T23:59:59Z");
    }
}
