//! A [`KeyStore`] in Redis, shared by every server instance.
//!
//! Layout, under a namespace (default `lumyx:keys`), all in one cluster hash
//! slot thanks to the `{namespace}` tag:
//! - `{ns}:record:<digest hex>`: a hash per record (fields below);
//! - `{ns}:index`: a hash from key id to digest hex, for lookups by id and
//!   for listing.
//!
//! Every write is one Lua script, so it is atomic and one round trip; reads by
//! digest are one `HGETALL`. Nothing is cached, so a revocation is seen by the
//! next verification of every instance. Times are stored as RFC 3339 UTC text
//! with nine fractional digits, which keeps full precision and compares
//! correctly as text inside the scripts. The scripts that start from an id
//! find the record's key through the index, so they name a key that is not in
//! `KEYS`; it shares the namespace's hash tag, so it is in the same slot.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use crate::{Error, KeyDigest, KeyId, KeyRecord, KeyStore, Limits, Scope, Scopes};

/// How long a command or a connection attempt may take before it fails, so
/// that an outage answers an error promptly instead of hanging a request.
const TIMEOUT: Duration = Duration::from_secs(1);

/// Adds a record unless its id is indexed. KEYS: index, record.
/// ARGV: id, digest hex, then field/value pairs.
const INSERT: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 3))
return 1";

/// Replaces a record whose id is indexed, keeping an earlier revocation
/// (see `KeyStore::update`). KEYS: index, record. ARGV: id, then
/// field/value pairs.
const UPDATE: &str = r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
local earlier = redis.call('HGET', KEYS[2], 'revoked_at')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, 2))
if earlier and earlier ~= '' then
  local now = redis.call('HGET', KEYS[2], 'revoked_at')
  if not now or now == '' or now > earlier then
    redis.call('HSET', KEYS[2], 'revoked_at', earlier)
  end
end
return 1";

/// Sets `revoked_at` unless an earlier one is set, and answers the record.
/// KEYS: index. ARGV: id, revocation time, record key prefix.
const REVOKE: &str = r"
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return false end
local record = ARGV[3] .. digest
if redis.call('EXISTS', record) == 0 then return false end
local earlier = redis.call('HGET', record, 'revoked_at')
if not earlier or earlier == '' or earlier > ARGV[2] then
  redis.call('HSET', record, 'revoked_at', ARGV[2])
end
return redis.call('HGETALL', record)";

/// Answers the record with an id. KEYS: index. ARGV: id, record key prefix.
const FIND_BY_ID: &str = r"
local digest = redis.call('HGET', KEYS[1], ARGV[1])
if not digest then return false end
return redis.call('HGETALL', ARGV[2] .. digest)";

/// A key store in Redis; see the module docs for the layout.
///
/// Cloning is cheap: clones share one multiplexed, self-reconnecting
/// connection.
#[derive(Clone)]
pub struct RedisKeyStore {
    connection: ConnectionManager,
    index_key: String,
    record_key_prefix: String,
    insert: Arc<Script>,
    update: Arc<Script>,
    revoke: Arc<Script>,
    find_by_id: Arc<Script>,
}

impl std::fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisKeyStore")
            .field("index_key", &self.index_key)
            .finish_non_exhaustive()
    }
}

fn store_error(err: redis::RedisError) -> Error {
    Error::Store(err.to_string())
}

impl RedisKeyStore {
    /// The namespace of [`RedisKeyStore::connect`].
    pub const DEFAULT_NAMESPACE: &'static str = "lumyx:keys";

    /// Connects to `url` (`redis://host:port/db`) with the default namespace.
    pub async fn connect(url: &str) -> Result<RedisKeyStore, Error> {
        let client = redis::Client::open(url).map_err(store_error)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(store_error)?;
        RedisKeyStore::new(connection, RedisKeyStore::DEFAULT_NAMESPACE)
    }

    /// A store on an existing connection, under `namespace`.
    ///
    /// # Errors
    /// [`Error::Store`] when the namespace is empty or holds `{` or `}`: it
    /// becomes the hash tag that keeps a store's keys in one cluster slot.
    pub fn new(connection: ConnectionManager, namespace: &str) -> Result<RedisKeyStore, Error> {
        if namespace.is_empty() || namespace.contains(['{', '}']) {
            return Err(Error::Store(format!(
                "a Redis namespace is non-empty text without braces, got `{namespace}`"
            )));
        }
        Ok(RedisKeyStore {
            connection,
            index_key: format!("{{{namespace}}}:index"),
            record_key_prefix: format!("{{{namespace}}}:record:"),
            insert: Arc::new(Script::new(INSERT)),
            update: Arc::new(Script::new(UPDATE)),
            revoke: Arc::new(Script::new(REVOKE)),
            find_by_id: Arc::new(Script::new(FIND_BY_ID)),
        })
    }

    fn record_key(&self, digest: &KeyDigest) -> String {
        format!("{}{}", self.record_key_prefix, digest.to_hex())
    }
}

#[async_trait]
impl KeyStore for RedisKeyStore {
    async fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        record.check_consistent()?;
        let inserted: i64 = self
            .insert
            .key(&self.index_key)
            .key(self.record_key(&record.digest))
            .arg(record.id.to_string())
            .arg(record.digest.to_hex())
            .arg(fields_of(&record))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        if inserted == 1 {
            Ok(())
        } else {
            Err(Error::Duplicate(record.id))
        }
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, Error> {
        record.check_consistent()?;
        let updated: i64 = self
            .update
            .key(&self.index_key)
            .key(self.record_key(&record.digest))
            .arg(record.id.to_string())
            .arg(fields_of(&record))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        Ok(updated == 1)
    }

    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        let fields: Option<HashMap<String, String>> = self
            .revoke
            .key(&self.index_key)
            .arg(id.to_string())
            .arg(time_text(at))
            .arg(&self.record_key_prefix)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        record_from_fields(fields)
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error> {
        let fields: HashMap<String, String> = self
            .connection
            .clone()
            .hgetall(self.record_key(digest))
            .await
            .map_err(store_error)?;
        // The key name already holds the digest; comparing the stored one too
        // (in constant time) refuses a record filed under the wrong name.
        Ok(record_from_fields(Some(fields))?.filter(|record| record.digest == *digest))
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        let fields: Option<HashMap<String, String>> = self
            .find_by_id
            .key(&self.index_key)
            .arg(id.to_string())
            .arg(&self.record_key_prefix)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(store_error)?;
        record_from_fields(fields)
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error> {
        let mut connection = self.connection.clone();
        let index: HashMap<String, String> = connection
            .hgetall(&self.index_key)
            .await
            .map_err(store_error)?;
        if index.is_empty() {
            // Redis refuses an empty pipeline.
            return Ok(Vec::new());
        }
        let mut pipeline = redis::pipe();
        for digest in index.values() {
            pipeline.hgetall(format!("{}{digest}", self.record_key_prefix));
        }
        let all: Vec<HashMap<String, String>> = pipeline
            .query_async(&mut connection)
            .await
            .map_err(store_error)?;
        let mut records = Vec::with_capacity(all.len());
        for fields in all {
            records.extend(record_from_fields(Some(fields))?);
        }
        crate::store::sort_oldest_first(&mut records);
        Ok(records)
    }
}

/// The stored form of a time: fixed-width RFC 3339 UTC, nanoseconds included,
/// so that text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn optional_time_text(time: Option<DateTime<Utc>>) -> String {
    time.map(time_text).unwrap_or_default()
}

/// The hash fields of a record. Empty strings stand for absent times.
fn fields_of(record: &KeyRecord) -> Vec<(&'static str, String)> {
    let scopes: Vec<&str> = record.scopes.iter().map(Scope::as_str).collect();
    vec![
        ("id", record.id.to_string()),
        ("digest", record.digest.to_hex()),
        ("hint", record.hint.to_string()),
        ("name", record.name.clone()),
        ("owner", record.owner.clone()),
        ("created_at", time_text(record.created_at)),
        ("expires_at", optional_time_text(record.expires_at)),
        ("revoked_at", optional_time_text(record.revoked_at)),
        (
            "rate_limit_per_minute",
            record.limits.rate_limit_per_minute().to_string(),
        ),
        ("daily_limit", record.limits.daily_limit().to_string()),
        ("scopes", scopes.join(",")),
    ]
}

/// A record from its hash fields; `None` for a missing (empty) hash.
fn record_from_fields(
    fields: Option<HashMap<String, String>>,
) -> Result<Option<Arc<KeyRecord>>, Error> {
    let Some(mut fields) = fields.filter(|fields| !fields.is_empty()) else {
        return Ok(None);
    };
    let mut take = |name: &'static str| {
        fields
            .remove(name)
            .ok_or_else(|| Error::Store(format!("stored key record has no `{name}` field")))
    };
    let corrupt =
        |name: &'static str| Error::Store(format!("stored key record has a bad `{name}` field"));
    let time = |name: &'static str, text: String| -> Result<Option<DateTime<Utc>>, Error> {
        if text.is_empty() {
            return Ok(None);
        }
        DateTime::parse_from_rfc3339(&text)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| corrupt(name))
    };
    let number = |name: &'static str, text: String| text.parse::<u32>().map_err(|_| corrupt(name));

    let scopes = take("scopes")?;
    let record = KeyRecord {
        id: take("id")?.parse()?,
        digest: take("digest")?.parse()?,
        hint: take("hint")?.parse()?,
        name: take("name")?,
        owner: take("owner")?,
        created_at: time("created_at", take("created_at")?)?
            .ok_or_else(|| corrupt("created_at"))?,
        expires_at: time("expires_at", take("expires_at")?)?,
        revoked_at: time("revoked_at", take("revoked_at")?)?,
        limits: Limits::new(
            number("rate_limit_per_minute", take("rate_limit_per_minute")?)?,
            number("daily_limit", take("daily_limit")?)?,
        )
        .map_err(|err| Error::Store(format!("stored key record has bad limits: {err}")))?,
        scopes: scopes
            .split(',')
            .filter(|name| !name.is_empty())
            .map(str::parse)
            .collect::<Result<Scopes, Error>>()?,
    };
    record.check_consistent()?;
    Ok(Some(Arc::new(record)))
}
