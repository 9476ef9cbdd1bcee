//! `SqliteKeyStore`: the store contract, and what a database file adds:
//! records that outlive the store, migrations, the connection's settings and
//! rows that this crate did not write.
#![cfg(feature = "sqlite")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use lumyx_keys::{
    ApiKey, Error, KeyRecord, KeyStore, Limits, Scope, SqliteKeyStore, Verification, verify,
};
use rusqlite::Connection;

use common::{at, exercise_extreme_times, exercise_store, exercise_time_bounds, record};

/// A fresh directory under the system's temporary directory, removed with
/// everything in it (the database, its WAL and shared-memory files) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = format!(
            "lumyx-keys-sqlite-{}-{}-{}-{test}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
        );
        let dir = std::env::temp_dir().join(unique);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// The path of the database file in the directory.
    fn db(&self) -> PathBuf {
        self.0.join("lumyx.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plain connection to the file, to look at or tamper with what the store
/// wrote.
fn raw(path: &Path) -> Connection {
    Connection::open(path).unwrap()
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[tokio::test]
async fn sqlite_store_keeps_the_store_contract() {
    let store = SqliteKeyStore::open_in_memory().unwrap();
    exercise_store(&store).await;
    assert_eq!(store.list().await.unwrap().len(), 3);
}

#[tokio::test]
async fn sqlite_store_keeps_times_up_to_the_bound_and_refuses_later_ones() {
    exercise_time_bounds(&SqliteKeyStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn sqlite_store_keeps_extreme_times_exactly_and_in_order() {
    exercise_extreme_times(&SqliteKeyStore::open_in_memory().unwrap()).await;
}

#[tokio::test]
async fn a_file_store_keeps_the_store_contract() {
    let dir = TempDir::new("contract");
    exercise_store(&SqliteKeyStore::open(dir.db()).unwrap()).await;
    let dir = TempDir::new("time-bounds");
    exercise_time_bounds(&SqliteKeyStore::open(dir.db()).unwrap()).await;
    let dir = TempDir::new("extreme-times");
    exercise_extreme_times(&SqliteKeyStore::open(dir.db()).unwrap()).await;
}

#[tokio::test]
async fn records_outlive_the_store_and_read_back_exactly_after_reopening() {
    let dir = TempDir::new("persistence");
    let key = ApiKey::generate().unwrap();
    let other = ApiKey::generate().unwrap();
    let stored = record(&key, "kept", at(1) + Duration::nanoseconds(123_456_789))
        .with_limits(Limits::new(7, 70).unwrap())
        .with_scopes([Scope::Agents, Scope::Conversations].into_iter().collect())
        .with_expiry(at(20) + Duration::nanoseconds(1));
    let revoked = {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        store.insert(stored.clone()).await.unwrap();
        store.insert(record(&other, "older", at(0))).await.unwrap();
        store
            .revoke(&other.id(), at(3) + Duration::nanoseconds(1))
            .await
            .unwrap()
            .unwrap()
    };

    let store = SqliteKeyStore::open(dir.db()).unwrap();
    assert_eq!(store.path(), Some(dir.db().as_path()));
    assert_eq!(
        *store.find_by_digest(&key.digest()).await.unwrap().unwrap(),
        stored
    );
    assert_eq!(
        *store.find_by_id(&other.id()).await.unwrap().unwrap(),
        *revoked
    );
    let listed: Vec<KeyRecord> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| (**r).clone())
        .collect();
    assert_eq!(listed, vec![(*revoked).clone(), stored]);
    assert!(matches!(
        verify(&store, other.as_key_ref(), at(4)).await.unwrap(),
        Verification::Revoked(_)
    ));
    // Still a duplicate after reopening.
    assert!(matches!(
        store.insert(record(&key, "again", at(2))).await,
        Err(Error::Duplicate(id)) if id == key.id()
    ));
}

#[tokio::test]
async fn times_round_trip_exactly_at_the_extremes_through_the_file() {
    let dir = TempDir::new("times");
    let nanosecond = Duration::nanoseconds(1);
    let times = [
        KeyRecord::MIN_TIME,
        KeyRecord::MIN_TIME + nanosecond,
        DateTime::UNIX_EPOCH - nanosecond,
        DateTime::UNIX_EPOCH,
        at(0) + Duration::nanoseconds(999_999_999),
        KeyRecord::MAX_TIME - nanosecond,
        KeyRecord::MAX_TIME,
    ];
    let mut written = Vec::new();
    {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        for (i, time) in times.into_iter().enumerate() {
            let key = ApiKey::generate().unwrap();
            let mut extreme = record(&key, &format!("t{i}"), time).with_expiry(KeyRecord::MAX_TIME);
            extreme.revoked_at = Some(times[times.len() - 1 - i]);
            store.insert(extreme.clone()).await.unwrap();
            written.push((key, extreme));
        }
    }
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    for (key, extreme) in &written {
        assert_eq!(
            *store.find_by_digest(&key.digest()).await.unwrap().unwrap(),
            *extreme
        );
    }
    let listed: Vec<KeyRecord> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| (**r).clone())
        .collect();
    let expected: Vec<KeyRecord> = written.iter().map(|(_, r)| r.clone()).collect();
    assert_eq!(listed, expected);

    // On disk: two integers per time, seconds since 1970 and nanoseconds.
    let (key, _) = &written[5];
    let (secs, nanos, expires_secs, expires_nanos): (i64, i64, i64, i64) = raw(&dir.db())
        .query_row(
            "SELECT created_at_secs, created_at_nanos, expires_at_secs, expires_at_nanos \
             FROM lumyx_keys WHERE id = ?1",
            [key.id().to_string()],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .unwrap();
    assert_eq!((secs, nanos), (253_402_300_798, 999_999_999));
    assert_eq!((expires_secs, expires_nanos), (253_402_300_799, 0));
}

#[tokio::test]
async fn a_revocation_is_never_undone_by_an_update_even_after_reopening() {
    let dir = TempDir::new("revocation");
    let key = ApiKey::generate().unwrap();
    let copy = record(&key, "copy", at(0)).with_expiry(at(23));
    {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        store.insert(copy.clone()).await.unwrap();
        store.revoke(&key.id(), at(5)).await.unwrap().unwrap();
    }
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    // A copy read before the revocation, written back with other limits.
    let stale = copy.clone().with_limits(Limits::new(5, 5).unwrap());
    assert!(store.update(stale).await.unwrap());
    let stored = store.find_by_id(&key.id()).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(at(5)));
    assert_eq!(stored.limits, Limits::new(5, 5).unwrap());
    // A later revocation does not postpone it, by update or by revoke; an
    // earlier one brings it forward, to the nanosecond.
    let mut later = copy.clone();
    later.revoked_at = Some(at(5) + Duration::nanoseconds(1));
    assert!(store.update(later).await.unwrap());
    let again = store.revoke(&key.id(), at(6)).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at(5)));
    let mut earlier = copy;
    earlier.revoked_at = Some(at(5) - Duration::nanoseconds(1));
    assert!(store.update(earlier).await.unwrap());
    drop(store);
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    let stored = store.find_by_id(&key.id()).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(at(5) - Duration::nanoseconds(1)));
    assert!(matches!(
        verify(&store, key.as_key_ref(), at(5)).await.unwrap(),
        Verification::Revoked(_)
    ));
}

#[tokio::test]
async fn opening_twice_migrates_once_and_leaves_other_components_alone() {
    let dir = TempDir::new("migrations");
    // Another component of the server got there first.
    raw(&dir.db())
        .execute_batch(
            "CREATE TABLE schema_versions (component TEXT PRIMARY KEY NOT NULL, \
             version INTEGER NOT NULL) STRICT;
             INSERT INTO schema_versions VALUES ('usage', 3);
             CREATE TABLE usage (day TEXT NOT NULL);",
        )
        .unwrap();
    let key = ApiKey::generate().unwrap();
    {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        store.insert(record(&key, "first", at(0))).await.unwrap();
    }
    let schema = || {
        let connection = raw(&dir.db());
        let mut statement = connection
            .prepare("SELECT type, name FROM sqlite_schema ORDER BY type, name")
            .unwrap();
        let objects: Vec<(String, String)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut statement = connection
            .prepare("SELECT component, version FROM schema_versions ORDER BY component")
            .unwrap();
        let versions: Vec<(String, i64)> = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        (objects, versions)
    };
    let first = schema();
    assert_eq!(
        first.1,
        vec![
            ("lumyx_keys".to_owned(), SqliteKeyStore::SCHEMA_VERSION),
            ("usage".to_owned(), 3)
        ]
    );
    assert_eq!(SqliteKeyStore::SCHEMA_COMPONENT, "lumyx_keys");
    assert!(
        first
            .0
            .contains(&("index".to_owned(), "lumyx_keys_owner".to_owned())),
        "{first:?}"
    );
    // `PRAGMA user_version` is the file's, not this crate's: left alone.
    let user_version: i64 = raw(&dir.db())
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(user_version, 0);

    for _ in 0..2 {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
        drop(store);
        assert_eq!(schema(), first);
    }
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = TempDir::new("newer");
    let key = ApiKey::generate().unwrap();
    block_on(async {
        let store = SqliteKeyStore::open(dir.db()).unwrap();
        store.insert(record(&key, "kept", at(0))).await.unwrap();
    });
    let newer = SqliteKeyStore::SCHEMA_VERSION + 1;
    raw(&dir.db())
        .execute(
            "UPDATE schema_versions SET version = ?1 WHERE component = 'lumyx_keys'",
            [newer],
        )
        .unwrap();
    let err = SqliteKeyStore::open(dir.db()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SchemaTooNew { component: "lumyx_keys", found, known }
                if found == newer && known == SqliteKeyStore::SCHEMA_VERSION
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "the database holds version {newer} of the `lumyx_keys` schema, newer than {}, \
             the latest this build knows; open it with a newer build",
            SqliteKeyStore::SCHEMA_VERSION
        )
    );
    // Refused without touching anything.
    let (version, rows): (i64, i64) = raw(&dir.db())
        .query_row(
            "SELECT (SELECT version FROM schema_versions WHERE component = 'lumyx_keys'), \
             (SELECT count(*) FROM lumyx_keys)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((version, rows), (newer, 1));

    // A version that is no version is corrupt, named.
    raw(&dir.db())
        .execute(
            "UPDATE schema_versions SET version = -1 WHERE component = 'lumyx_keys'",
            [],
        )
        .unwrap();
    let err = SqliteKeyStore::open(dir.db()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                field: "version",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_file_is_in_wal_mode_and_passes_the_integrity_check() {
    let dir = TempDir::new("wal");
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    for i in 0..20 {
        let key = ApiKey::generate().unwrap();
        store
            .insert(record(&key, &format!("k{i}"), at(0)))
            .await
            .unwrap();
        store.revoke(&key.id(), at(1)).await.unwrap().unwrap();
    }
    let connection = raw(&dir.db());
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let foreign_key_errors: Option<String> = connection
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .ok();
    assert_eq!(foreign_key_errors, None);
    // The key itself is nowhere in the file, its WAL included.
    drop(connection);
    drop(store);
    let key = ApiKey::generate().unwrap();
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    store.insert(record(&key, "secret", at(0))).await.unwrap();
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let secret = &key.expose_secret().as_bytes()[5..];
        assert!(!bytes.windows(secret.len()).any(|window| window == secret));
    }
}

#[tokio::test]
async fn two_stores_on_one_file_see_each_others_writes() {
    let dir = TempDir::new("shared");
    let first = SqliteKeyStore::open(dir.db()).unwrap();
    let second = SqliteKeyStore::open(dir.db()).unwrap();
    let key = ApiKey::generate().unwrap();
    first.insert(record(&key, "shared", at(0))).await.unwrap();
    assert!(second.find_by_id(&key.id()).await.unwrap().is_some());
    second.revoke(&key.id(), at(2)).await.unwrap().unwrap();
    assert_eq!(
        first
            .find_by_digest(&key.digest())
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(2))
    );
    assert!(matches!(
        second.insert(record(&key, "again", at(0))).await,
        Err(Error::Duplicate(_))
    ));
}

#[test]
fn a_file_that_cannot_be_opened_is_a_store_error() {
    let dir = TempDir::new("unopenable");
    let missing = dir.0.join("no-such-dir").join("lumyx.db");
    let err = SqliteKeyStore::open(&missing).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(err.to_string(), "the key store could not answer");
    // Not a database.
    std::fs::write(dir.db(), vec![b'x'; 4096]).unwrap();
    let err = SqliteKeyStore::open(dir.db()).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
}

#[test]
fn debug_shows_the_path_not_the_records() {
    let dir = TempDir::new("debug");
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    let shown = format!("{store:?}");
    assert!(shown.starts_with("SqliteKeyStore { path: "), "{shown}");
    assert!(shown.contains("lumyx.db"), "{shown}");
    let memory = SqliteKeyStore::open_in_memory().unwrap();
    assert_eq!(memory.path(), None);
    assert_eq!(
        format!("{memory:?}"),
        "SqliteKeyStore { path: \":memory:\", .. }"
    );
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_the_column() {
    use std::error::Error as _;
    let dir = TempDir::new("corrupt");
    let store = SqliteKeyStore::open(dir.db()).unwrap();
    let tamper = raw(&dir.db());
    let other = ApiKey::generate().unwrap();
    // (column, SQL value to store, what the cause says)
    let other_id = format!("'{}'", other.id());
    let cases: &[(&str, &str, Option<&str>)] = &[
        (
            "daily_limit",
            "0",
            Some("daily_limit must be in 1..=10000, got 0"),
        ),
        ("rate_limit_per_minute", "-1", Some("out of range")),
        ("scopes", "'chat,admin'", Some("invalid scope")),
        ("hint", "'nova_0000'", Some("invalid key hint")),
        ("digest", "x'00'", None),
        ("id", &other_id, Some("does not match its digest")),
        ("id", "'key_0'", Some("invalid key id")),
        // One second after 9999-12-31T23:59:59Z, and one before year 0.
        ("created_at_secs", "253402300800", None),
        ("expires_at_secs", "-62167219201", None),
        // Only a leap second has more than 10^9 nanoseconds.
        ("expires_at_nanos", "1000000000", None),
        ("revoked_at_nanos", "-1", None),
        // Half a time.
        ("expires_at_nanos", "NULL", None),
        ("revoked_at_secs", "NULL", None),
        ("created_at_nanos", "9223372036854775807", None),
        ("daily_limit", "4294967296", Some("out of range")),
    ];
    for &(column, value, cause) in cases {
        let key = ApiKey::generate().unwrap();
        store
            .insert(record(&key, column, at(0)).with_expiry(at(20)))
            .await
            .unwrap();
        store.revoke(&key.id(), at(10)).await.unwrap().unwrap();
        let digest = key.digest();
        let rowid: i64 = tamper
            .query_row(
                "SELECT rowid FROM lumyx_keys WHERE digest = ?1",
                [&digest.as_bytes()[..]],
                |row| row.get(0),
            )
            .unwrap();
        tamper
            .execute(
                &format!("UPDATE lumyx_keys SET {column} = {value} WHERE rowid = ?1"),
                [rowid],
            )
            .unwrap();

        let mut errors = vec![store.list().await.unwrap_err()];
        // A changed digest or id is not found by what it was.
        if column != "digest" {
            errors.push(store.find_by_digest(&key.digest()).await.unwrap_err());
        }
        if column != "id" {
            errors.push(store.find_by_id(&key.id()).await.unwrap_err());
        }
        // An earlier revocation takes effect, then the record cannot be read
        // back (unless the corrupt column is the revocation, which it
        // replaces).
        let revokes = column != "id" && !column.starts_with("revoked_at");
        if revokes {
            errors.push(store.revoke(&key.id(), at(9)).await.unwrap_err());
        }
        for err in errors {
            match &err {
                Error::Corrupt { field: named, .. } => assert_eq!(*named, column, "{err}"),
                other => panic!("{column} = {value}: {other:?}"),
            }
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "a stored key record is corrupt: its `{column}` field is missing or not"
                )),
                "{message}"
            );
            match (cause, err.source()) {
                (Some(expected), Some(source)) => {
                    assert!(source.to_string().contains(expected), "{column}: {source}")
                }
                (None, None) => {}
                (expected, source) => {
                    panic!("{column}: expected cause {expected:?}, got {source:?}")
                }
            }
        }
        if revokes {
            let revoked: Option<i64> = tamper
                .query_row(
                    "SELECT revoked_at_secs FROM lumyx_keys WHERE rowid = ?1",
                    [rowid],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(revoked, Some(at(9).timestamp()), "{column}");
        }
        // Other rows are not affected; the table is left clean for the next
        // case.
        tamper
            .execute("DELETE FROM lumyx_keys WHERE rowid = ?1", [rowid])
            .unwrap();
        assert!(store.list().await.unwrap().is_empty());
    }
}
