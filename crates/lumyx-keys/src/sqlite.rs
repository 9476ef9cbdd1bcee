//! A [`KeyStore`] in a SQLite database file, for the admin path of one
//! server.
//!
//! What a user needs (the admin path, the connection's settings, the
//! schema and its migrations) is on [`SqliteKeyStore`], since this module is
//! private. Here, for who changes it:
//! - Every statement is a constant with named parameters. A record's
//!   columns are bound by name, so `INSERT` and `UPDATE` share one binding
//!   ([`write_record`]), and the condition that keeps an earlier revocation
//!   is one piece of SQL that `UPDATE` and `REVOKE` both use.
//! - Rows are read as owned [`Value`]s under the lock and parsed into
//!   records after it is released; every column that does not parse is an
//!   [`Error::Corrupt`] naming it.
//! - A migration, once released, never changes: a new schema is a new
//!   entry at the end of [`MIGRATIONS`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    Connection, OptionalExtension, Transaction, TransactionBehavior, named_params, params,
};

use crate::stored::{NANOS, SCOPES, SECONDS, corrupt, scopes_text, stored_scopes, stored_time};
use crate::{DIGEST_LEN, Error, KeyDigest, KeyId, KeyRecord, KeyStore, Limits};

/// The component name of this crate's row in `schema_versions`.
const COMPONENT: &str = "lumyx_keys";

/// The table of every component's schema version, created by whichever
/// component opens the database first.
const SCHEMA_VERSIONS: &str = "CREATE TABLE IF NOT EXISTS schema_versions (
    component TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL
) STRICT;";

/// The migrations, in order: the one at index `i` takes the schema from
/// version `i` to `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &["CREATE TABLE lumyx_keys (
    id TEXT PRIMARY KEY NOT NULL,
    digest BLOB NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    name TEXT NOT NULL,
    owner TEXT NOT NULL,
    created_at_secs INTEGER NOT NULL,
    created_at_nanos INTEGER NOT NULL,
    expires_at_secs INTEGER,
    expires_at_nanos INTEGER,
    revoked_at_secs INTEGER,
    revoked_at_nanos INTEGER,
    rate_limit_per_minute INTEGER NOT NULL,
    daily_limit INTEGER NOT NULL,
    scopes TEXT NOT NULL
) STRICT;
CREATE INDEX lumyx_keys_owner ON lumyx_keys (owner);"];

/// The latest schema version this build knows.
const LATEST: i64 = MIGRATIONS.len() as i64;

/// How long a call waits for another connection's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads every column of a row, in the order [`StoredRow`] expects.
macro_rules! select_record {
    ($where:literal) => {
        concat!(
            "SELECT id, digest, hint, name, owner, created_at_secs, created_at_nanos, ",
            "expires_at_secs, expires_at_nanos, revoked_at_secs, revoked_at_nanos, ",
            "rate_limit_per_minute, daily_limit, scopes FROM lumyx_keys",
            $where
        )
    };
}

/// Whether the stored revocation is at or before the one in
/// `:revoked_at_secs`, `:revoked_at_nanos` (`NULL` for none), so that it is
/// kept: the rule of `earliest_revocation` that the other stores share, in
/// SQL, with times compared exactly as pairs of integers. A stored time
/// with one of its halves `NULL` counts as no revocation.
macro_rules! stored_revocation_first {
    () => {
        concat!(
            "(revoked_at_secs IS NOT NULL AND revoked_at_nanos IS NOT NULL ",
            "AND (:revoked_at_secs IS NULL OR :revoked_at_nanos IS NULL ",
            "OR (revoked_at_secs, revoked_at_nanos) <= (:revoked_at_secs, :revoked_at_nanos)))"
        )
    };
}

const FIND_BY_ID: &str = select_record!(" WHERE id = :id");
const FIND_BY_DIGEST: &str = select_record!(" WHERE digest = :digest");
const LIST: &str = select_record!("");

/// Adds a record. A row with the same id or digest is left as it is, and
/// then the statement changes no row.
const INSERT: &str = "INSERT INTO lumyx_keys (id, digest, hint, name, owner, \
    created_at_secs, created_at_nanos, expires_at_secs, expires_at_nanos, \
    revoked_at_secs, revoked_at_nanos, rate_limit_per_minute, daily_limit, scopes) \
    VALUES (:id, :digest, :hint, :name, :owner, \
    :created_at_secs, :created_at_nanos, :expires_at_secs, :expires_at_nanos, \
    :revoked_at_secs, :revoked_at_nanos, :rate_limit_per_minute, :daily_limit, :scopes) \
    ON CONFLICT DO NOTHING";

/// Replaces the row with the id, keeping an earlier revocation (see
/// [`KeyStore::update`]). SQLite evaluates every `SET` expression on the row
/// as it was, so both revocation columns see the stored pair.
const UPDATE: &str = concat!(
    "UPDATE lumyx_keys SET digest = :digest, hint = :hint, name = :name, owner = :owner, ",
    "created_at_secs = :created_at_secs, created_at_nanos = :created_at_nanos, ",
    "expires_at_secs = :expires_at_secs, expires_at_nanos = :expires_at_nanos, ",
    "revoked_at_secs = CASE WHEN ",
    stored_revocation_first!(),
    " THEN revoked_at_secs ELSE :revoked_at_secs END, ",
    "revoked_at_nanos = CASE WHEN ",
    stored_revocation_first!(),
    " THEN revoked_at_nanos ELSE :revoked_at_nanos END, ",
    "rate_limit_per_minute = :rate_limit_per_minute, daily_limit = :daily_limit, ",
    "scopes = :scopes WHERE id = :id"
);

/// Revokes the row with the id unless it is revoked at that time or
/// earlier already.
const REVOKE: &str = concat!(
    "UPDATE lumyx_keys SET revoked_at_secs = :revoked_at_secs, ",
    "revoked_at_nanos = :revoked_at_nanos WHERE id = :id AND NOT ",
    stored_revocation_first!()
);

/// A key store in a SQLite database file: the records of one server.
///
/// Opened with [`SqliteKeyStore::open`] on a file, which it creates and
/// migrates as needed, or with [`SqliteKeyStore::open_in_memory`] for tests.
/// Several stores, in one process or many, may open the same file: SQLite
/// serializes their writes, and each sees the others' commits at its next
/// call.
///
/// # The admin path
///
/// This store is where the records live, not what serves requests: a
/// server verifies keys from a copy in memory loaded with
/// [`KeyStore::list`] and kept current by writing through it (as
/// `lumyx-gate`'s `Keys` does), so SQLite sees the management API's calls,
/// not every request. The crate names no async runtime, so each call of the
/// async [`KeyStore`] methods runs SQLite synchronously on the calling
/// thread, one call at a time per store, behind a [`Mutex`] around the
/// connection. Each call is one short transaction: a single statement, or,
/// for [`KeyStore::revoke`], the write and the read of the record in one
/// `BEGIN IMMEDIATE` transaction. A call blocks its thread while SQLite
/// works (a write is an append to the WAL) and, when another connection
/// holds the write lock, up to the busy timeout of 5 s.
///
/// # The connection
///
/// - `PRAGMA journal_mode=WAL`: readers and the writer do not block each
///   other, so other components of the server and tools such as `sqlite3`
///   can read the file while the store writes. [`SqliteKeyStore::open`]
///   refuses a file on which SQLite cannot use WAL (a file system without
///   shared memory), since the durability below depends on it.
/// - `PRAGMA synchronous=NORMAL`: in WAL mode a commit is appended to the
///   log without waiting for the disk, which syncs the log at checkpoints.
///   An application crash loses nothing committed. A power cut or an
///   operating system crash can lose the transactions committed since the
///   last sync, but never corrupts the database: it opens at an earlier,
///   consistent state. A revocation lost that way must be made again.
/// - `PRAGMA foreign_keys=ON`, so that tables of other components that
///   refer to these records get the checks they declare.
/// - A busy timeout of 5 s: a call waits that long for another connection's
///   write lock before it fails with [`Error::Store`].
///
/// # Schema and migrations
///
/// The database may be shared with other components of a server (usage,
/// conversations), so the schema version is not `PRAGMA user_version`, of
/// which a file has one. Each component keeps its own row in
/// `schema_versions(component TEXT PRIMARY KEY, version INTEGER NOT NULL)`;
/// this crate's is [`SqliteKeyStore::SCHEMA_COMPONENT`], `lumyx_keys`.
/// Opening applies the migrations from the stored version to
/// [`SqliteKeyStore::SCHEMA_VERSION`], each with its version bump in one
/// `BEGIN IMMEDIATE` transaction, so a crash leaves the schema at one
/// version or the next, and two processes opening the file at once migrate
/// it once. A database at a newer version than this build knows is refused
/// with [`Error::SchemaTooNew`], and left untouched.
///
/// Version 1 is one `STRICT` table (every column holds its declared type),
/// `lumyx_keys`, with an index on `owner`:
///
/// | column | type | holds |
/// |---|---|---|
/// | `id` | `TEXT PRIMARY KEY` | the key id, `key_` + 16 hex digits |
/// | `digest` | `BLOB NOT NULL UNIQUE` | the 32 bytes of the SHA-256 digest |
/// | `hint`, `name`, `owner` | `TEXT NOT NULL` | as on the record |
/// | `created_at_secs`, `created_at_nanos` | `INTEGER NOT NULL` | creation |
/// | `expires_at_secs`, `expires_at_nanos` | `INTEGER` | expiry; both `NULL` when none |
/// | `revoked_at_secs`, `revoked_at_nanos` | `INTEGER` | revocation; both `NULL` when none |
/// | `rate_limit_per_minute`, `daily_limit` | `INTEGER NOT NULL` | the limits |
/// | `scopes` | `TEXT NOT NULL` | scope names joined by commas: `models,chat` |
///
/// A time is two integers, as in the Redis store: seconds since 1970
/// (negative before) and the nanoseconds within that second, so records
/// read back exactly as they were written, and SQL compares times exactly,
/// as `(secs, nanos)` pairs. Scopes are stored by name, so the column reads
/// the same to other components and does not depend on the order of
/// [`Scope`](crate::Scope)'s variants. A row this crate did not write (a column `NULL` or
/// out of its range) reads as [`Error::Corrupt`] naming its column.
///
/// `Debug` shows the database's path, not the records.
///
/// ```
/// use chrono::Utc;
/// use lumyx_keys::{ApiKey, KeyRecord, KeyStore, SqliteKeyStore, Verification, verify};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// // In a server: SqliteKeyStore::open("/var/lib/lumyx/lumyx.db")?
/// let store = SqliteKeyStore::open_in_memory()?;
/// let key = ApiKey::generate()?;
/// store.insert(KeyRecord::new(key.as_key_ref(), "ci", "acct_1", Utc::now())).await?;
/// assert!(verify(&store, key.as_key_ref(), Utc::now()).await?.valid_record().is_some());
///
/// store.revoke(&key.id(), Utc::now()).await?;
/// let verdict = verify(&store, key.as_key_ref(), Utc::now()).await?;
/// assert!(matches!(verdict, Verification::Revoked(_)));
/// assert_eq!(store.list().await?.len(), 1);
/// # Ok::<(), lumyx_keys::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SqliteKeyStore {
    connection: Mutex<Connection>,
    /// The file, or `None` in memory.
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path: &dyn fmt::Debug = match &self.path {
            Some(path) => path,
            None => &":memory:",
        };
        f.debug_struct("SqliteKeyStore")
            .field("path", path)
            .finish_non_exhaustive()
    }
}

/// A failed SQLite call, kept as the cause of [`Error::Store`].
fn store_error(err: rusqlite::Error) -> Error {
    Error::Store(Box::new(err))
}

impl SqliteKeyStore {
    /// The name of this crate's row in the `schema_versions` table:
    /// `lumyx_keys`.
    pub const SCHEMA_COMPONENT: &'static str = COMPONENT;

    /// The latest schema version this build knows, which
    /// [`SqliteKeyStore::open`] migrates a database to.
    pub const SCHEMA_VERSION: i64 = LATEST;

    /// Opens the database file at `path`, creating it when it does not
    /// exist, sets the connection up (WAL, `synchronous=NORMAL`, foreign
    /// keys, a busy timeout of 5 s) and migrates this crate's tables to
    /// [`SqliteKeyStore::SCHEMA_VERSION`]. Opening a database that is up to
    /// date changes nothing.
    ///
    /// # Errors
    /// [`Error::Store`] when SQLite cannot open or write the file (a missing
    /// directory, no permission, not a database, locked by another
    /// connection for more than 5 s); [`Error::Config`] when SQLite cannot
    /// use WAL on it; [`Error::SchemaTooNew`] when a later version of this
    /// crate migrated it; [`Error::Corrupt`] when its row of
    /// `schema_versions` is not a version.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteKeyStore, Error> {
        let path = path.as_ref();
        let connection = Connection::open(path).map_err(store_error)?;
        SqliteKeyStore::set_up(connection, Some(path.to_owned()))
    }

    /// Opens a private database in memory, gone when the store is dropped:
    /// for tests and examples. It is set up and migrated as
    /// [`SqliteKeyStore::open`] does, except that a database in memory has
    /// no WAL.
    ///
    /// # Errors
    /// [`Error::Store`] when SQLite fails.
    pub fn open_in_memory() -> Result<SqliteKeyStore, Error> {
        let connection = Connection::open_in_memory().map_err(store_error)?;
        SqliteKeyStore::set_up(connection, None)
    }

    fn set_up(mut connection: Connection, path: Option<PathBuf>) -> Result<SqliteKeyStore, Error> {
        connection.busy_timeout(BUSY_TIMEOUT).map_err(store_error)?;
        // The journal mode cannot change inside a transaction, so it comes
        // first. SQLite answers the mode it is in: `memory` for a database in
        // memory, the old mode when the file system cannot do WAL.
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(store_error)?;
        if path.is_some() && !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Config {
                setting: "SQLite journal mode",
                expected: "wal, on a file system that supports it",
                got: mode,
                source: None,
            });
        }
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(store_error)?;
        connection
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(store_error)?;
        migrate_schema(&mut connection, COMPONENT, MIGRATIONS)?;
        Ok(SqliteKeyStore {
            connection: Mutex::new(connection),
            path,
        })
    }

    /// The database file, or `None` for a database in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn connection(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held unwound through any open
        // transaction, which rolled back on drop: the connection is in a
        // clean state, so poisoning is ignored.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The row with this id or digest, read whole.
    fn find(
        &self,
        sql: &str,
        by: (&str, &dyn rusqlite::ToSql),
    ) -> Result<Option<StoredRow>, Error> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql).map_err(store_error)?;
        statement
            .query_row(&[by], StoredRow::read)
            .optional()
            .map_err(store_error)
    }
}

/// Brings `component`'s tables in a database shared by several components
/// (this crate's key store, and whatever else keeps its tables beside it)
/// from its stored version to the last of `migrations`, one migration per
/// transaction. The one at index `i` takes the schema from version `i` to
/// `i + 1`; a released migration never changes.
///
/// Each component's version is its row in `schema_versions`, not `PRAGMA
/// user_version`, which only one component could use. Each transaction
/// reads the version under the write lock (`BEGIN IMMEDIATE`), so a
/// migration that another process applied meanwhile is not applied again.
///
/// ```
/// let mut db = rusqlite::Connection::open_in_memory()?;
/// let notes = ["CREATE TABLE notes (text TEXT NOT NULL) STRICT;"];
/// lumyx_keys::migrate_schema(&mut db, "notes", &notes)?;
/// lumyx_keys::migrate_schema(&mut db, "notes", &notes)?; // nothing to do
/// assert!(lumyx_keys::migrate_schema(&mut db, "notes", &[]).is_err()); // newer than known
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::SchemaTooNew`] when the database holds a later version than
/// `migrations` reach; [`Error::Store`] (with SQLite's error as its source)
/// when a statement fails, the failed migration rolled back.
pub fn migrate_schema(
    connection: &mut Connection,
    component: &'static str,
    migrations: &[&str],
) -> Result<(), Error> {
    let latest = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    loop {
        let transaction = immediate(connection)?;
        transaction
            .execute_batch(SCHEMA_VERSIONS)
            .map_err(store_error)?;
        let version = stored_version(&transaction, component)?;
        if version > latest {
            return Err(Error::SchemaTooNew {
                component,
                found: version,
                known: latest,
            });
        }
        let pending = usize::try_from(version)
            .ok()
            .and_then(|version| migrations.get(version));
        let Some(migration) = pending else {
            // Up to date: the transaction only made sure that
            // `schema_versions` exists.
            return transaction.commit().map_err(store_error);
        };
        transaction.execute_batch(migration).map_err(store_error)?;
        transaction
            .execute(
                "INSERT INTO schema_versions (component, version) VALUES (?1, ?2) \
                 ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                params![component, version + 1],
            )
            .map_err(store_error)?;
        transaction.commit().map_err(store_error)?;
    }
}

/// The version of `component`'s schema in the database; 0 before the
/// first migration.
fn stored_version(transaction: &Transaction<'_>, component: &str) -> Result<i64, Error> {
    let version: Option<Value> = transaction
        .query_row(
            "SELECT version FROM schema_versions WHERE component = ?1",
            [component],
            |row| row.get(0),
        )
        .optional()
        .map_err(store_error)?;
    match version {
        None => Ok(0),
        Some(Value::Integer(version)) if version >= 0 => Ok(version),
        Some(_) => Err(corrupt("version", "a schema version, from 0", None)),
    }
}

/// A transaction that takes the write lock at once, so that it never has to
/// upgrade a read lock, which fails at once, without the busy timeout, when
/// another connection has written meanwhile.
fn immediate(connection: &mut Connection) -> Result<Transaction<'_>, Error> {
    connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(store_error)
}

/// A time as its two columns: seconds since 1970 and nanoseconds within
/// that second.
fn time_columns(time: Option<DateTime<Utc>>) -> (Option<i64>, Option<i64>) {
    match time {
        Some(time) => (
            Some(time.timestamp()),
            Some(i64::from(time.timestamp_subsec_nanos())),
        ),
        None => (None, None),
    }
}

/// Runs [`INSERT`] or [`UPDATE`] with the record's columns, and answers how
/// many rows changed.
fn write_record(connection: &Connection, sql: &str, record: &KeyRecord) -> Result<usize, Error> {
    let (created_at_secs, created_at_nanos) = time_columns(Some(record.created_at));
    let (expires_at_secs, expires_at_nanos) = time_columns(record.expires_at);
    let (revoked_at_secs, revoked_at_nanos) = time_columns(record.revoked_at);
    let mut statement = connection.prepare_cached(sql).map_err(store_error)?;
    statement
        .execute(named_params! {
            ":id": record.id.to_string(),
            ":digest": &record.digest.as_bytes()[..],
            ":hint": record.hint.to_string(),
            ":name": record.name,
            ":owner": record.owner,
            ":created_at_secs": created_at_secs,
            ":created_at_nanos": created_at_nanos,
            ":expires_at_secs": expires_at_secs,
            ":expires_at_nanos": expires_at_nanos,
            ":revoked_at_secs": revoked_at_secs,
            ":revoked_at_nanos": revoked_at_nanos,
            ":rate_limit_per_minute": record.limits.rate_limit_per_minute(),
            ":daily_limit": record.limits.daily_limit(),
            ":scopes": scopes_text(record.scopes),
        })
        .map_err(store_error)
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn insert(&self, record: KeyRecord) -> Result<(), Error> {
        record.validate()?;
        let connection = self.connection();
        match write_record(&connection, INSERT, &record)? {
            0 => Err(Error::Duplicate(record.id)),
            _ => Ok(()),
        }
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, Error> {
        record.validate()?;
        let connection = self.connection();
        Ok(write_record(&connection, UPDATE, &record)? > 0)
    }

    async fn revoke(&self, id: &KeyId, at: DateTime<Utc>) -> Result<Option<Arc<KeyRecord>>, Error> {
        let at = KeyRecord::check_time("revoked_at", at)?;
        let (revoked_at_secs, revoked_at_nanos) = time_columns(Some(at));
        let id = id.to_string();
        let found = {
            let mut connection = self.connection();
            let transaction = immediate(&mut connection)?;
            transaction
                .prepare_cached(REVOKE)
                .and_then(|mut statement| {
                    statement.execute(named_params! {
                        ":id": id,
                        ":revoked_at_secs": revoked_at_secs,
                        ":revoked_at_nanos": revoked_at_nanos,
                    })
                })
                .map_err(store_error)?;
            // The record as this revocation left it, read in the same
            // transaction.
            let found = transaction
                .prepare_cached(FIND_BY_ID)
                .and_then(|mut statement| {
                    statement
                        .query_row(named_params! { ":id": id }, StoredRow::read)
                        .optional()
                })
                .map_err(store_error)?;
            transaction.commit().map_err(store_error)?;
            found
        };
        // Read back after the commit: the revocation takes effect even when
        // another column of the row is unreadable.
        found.map(StoredRow::into_record).transpose()
    }

    async fn find_by_digest(&self, digest: &KeyDigest) -> Result<Option<Arc<KeyRecord>>, Error> {
        let found = self.find(FIND_BY_DIGEST, (":digest", &&digest.as_bytes()[..]))?;
        let record = found.map(StoredRow::into_record).transpose()?;
        // The lookup is by the whole digest; comparing the stored one too,
        // in constant time, is what every store does before it answers.
        Ok(record.filter(|record| record.digest == *digest))
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, Error> {
        let found = self.find(FIND_BY_ID, (":id", &id.to_string()))?;
        found.map(StoredRow::into_record).transpose()
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, Error> {
        let rows = {
            let connection = self.connection();
            let mut statement = connection.prepare_cached(LIST).map_err(store_error)?;
            statement
                .query_map([], StoredRow::read)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(store_error)?
        };
        // Parsed after the lock is released; one corrupt row fails the list.
        let mut records = rows
            .into_iter()
            .map(StoredRow::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        crate::store::sort_oldest_first(&mut records);
        Ok(records)
    }
}

/// A row of `lumyx_keys` as SQLite answered it, in the column order of
/// [`select_record!`], taken as owned values so that it is parsed after the
/// lock is released. Each failure to parse it names its column.
struct StoredRow([Value; 14]);

impl StoredRow {
    /// The values of a row; reading a column as a [`Value`] cannot fail.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
        let mut values: [Value; 14] = std::array::from_fn(|_| Value::Null);
        for (index, value) in values.iter_mut().enumerate() {
            *value = row.get(index)?;
        }
        Ok(StoredRow(values))
    }

    fn into_record(self) -> Result<Arc<KeyRecord>, Error> {
        let [
            id,
            digest,
            hint,
            name,
            owner,
            created_at_secs,
            created_at_nanos,
            expires_at_secs,
            expires_at_nanos,
            revoked_at_secs,
            revoked_at_nanos,
            rate_limit_per_minute,
            daily_limit,
            scopes,
        ] = self.0;
        let rate_limit_per_minute = limit("rate_limit_per_minute", rate_limit_per_minute)?;
        let daily_limit = limit("daily_limit", daily_limit)?;
        let limits = Limits::new(rate_limit_per_minute, daily_limit).map_err(|err| {
            let field = match &err {
                lumyx_ratelimit::Error::OutOfRange { field, .. } => *field,
                _ => "rate_limit_per_minute",
            };
            corrupt(field, LIMIT, Some(Box::new(err)))
        })?;
        let record = KeyRecord {
            id: parsed("id", "a key id", id)?,
            digest: stored_digest(digest)?,
            hint: parsed("hint", "a key hint", hint)?,
            name: text("name", "text", name)?,
            owner: text("owner", "text", owner)?,
            created_at: time(
                ["created_at_secs", "created_at_nanos"],
                created_at_secs,
                created_at_nanos,
            )?
            .ok_or_else(|| corrupt("created_at_secs", SECONDS, None))?,
            expires_at: time(
                ["expires_at_secs", "expires_at_nanos"],
                expires_at_secs,
                expires_at_nanos,
            )?,
            revoked_at: time(
                ["revoked_at_secs", "revoked_at_nanos"],
                revoked_at_secs,
                revoked_at_nanos,
            )?,
            limits,
            scopes: stored_scopes(&text("scopes", SCOPES, scopes)?)?,
        };
        record
            .check_consistent()
            .map_err(|err| corrupt("id", "the id of the stored digest", Some(Box::new(err))))?;
        Ok(Arc::new(record))
    }
}

/// What a limit's column must hold.
const LIMIT: &str = "an integer in its range";

/// The text of a column.
fn text(field: &'static str, expected: &'static str, value: Value) -> Result<String, Error> {
    match value {
        Value::Text(text) => Ok(text),
        _ => Err(corrupt(field, expected, None)),
    }
}

/// The text of a column, parsed; the parser's error is the cause.
fn parsed<T>(field: &'static str, expected: &'static str, value: Value) -> Result<T, Error>
where
    T: FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text(field, expected, value)?
        .parse()
        .map_err(|err| corrupt(field, expected, Some(Box::new(err))))
}

/// The 32 bytes of the digest column.
fn stored_digest(value: Value) -> Result<KeyDigest, Error> {
    let invalid = || corrupt("digest", "the 32 bytes of a SHA-256 digest", None);
    let Value::Blob(bytes) = value else {
        return Err(invalid());
    };
    let bytes: [u8; DIGEST_LEN] = bytes.try_into().map_err(|_| invalid())?;
    Ok(KeyDigest::from_bytes(bytes))
}

/// A limit's column, before [`Limits::new`] checks its range.
fn limit(field: &'static str, value: Value) -> Result<u32, Error> {
    match value {
        Value::Integer(number) => {
            u32::try_from(number).map_err(|err| corrupt(field, LIMIT, Some(Box::new(err))))
        }
        _ => Err(corrupt(field, LIMIT, None)),
    }
}

/// A time from its two columns, `None` when both are `NULL`.
fn time(
    [secs, nanos]: [&'static str; 2],
    seconds: Value,
    nanoseconds: Value,
) -> Result<Option<DateTime<Utc>>, Error> {
    match (seconds, nanoseconds) {
        (Value::Null, Value::Null) => Ok(None),
        (Value::Integer(seconds), Value::Integer(nanoseconds)) => {
            stored_time([secs, nanos], seconds, nanoseconds).map(Some)
        }
        (Value::Integer(_), _) => Err(corrupt(nanos, NANOS, None)),
        _ => Err(corrupt(secs, SECONDS, None)),
    }
}
