//! The data directory of a durable server (`LUMYX_DATA_DIR`): one SQLite
//! database for keys, conversations, the admin token's digest, and what the
//! gate counts in memory (limiter state and usage), written behind.
//!
//! - The directory is created owner-only (0700 on Unix), and a lock file in
//!   it (`lumyx.lock`, an OS file lock held while the server runs) keeps a
//!   second server off the same database.
//! - The database runs in WAL mode with `synchronous=NORMAL`: a crash of
//!   the process loses nothing committed; a power cut can lose the
//!   transactions of the last moments (those not yet synced with the WAL),
//!   never the database's integrity.
//! - Each component keeps its own tables and its own schema version in
//!   `schema_versions` (this module's component is `lumyx_server`); the
//!   migrations run at start, each in one transaction, through
//!   [`lumyx_keys::migrate_schema`], which the key store uses too.
//! - The gate's counts (each key's limiter word and usage) are saved at
//!   most a second after they change and at shutdown, and put back at
//!   start, so a restart hands out no fresh quota and loses at most a
//!   second of counts. A pass walks every key of the table (two atomic
//!   reads each) and writes only the keys that moved, in one transaction.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lumyx_gate::KeyTable;
use lumyx_keys::migrate_schema;
use lumyx_keys::{KeyDigest, KeyId, KeyRecord, KeyStore};
use lumyx_ratelimit::{Counted, Counts, DayUsage, Timestamp, Usage};
use lumyx_redis::Report;
use rusqlite::backup::StepResult;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

/// The database's file name in the data directory.
pub(crate) const DATABASE_FILE: &str = "lumyx.sqlite3";

/// The lock file's name in the data directory.
const LOCK_FILE: &str = "lumyx.lock";

/// This module's component in `schema_versions`.
const COMPONENT: &str = "lumyx_server";

/// The migrations of this module's tables, in order; version N is the
/// first N applied.
const MIGRATIONS: &[&str] = &[
    // 1: settings (the admin token's digest, whether the demo key was
    // made) and the gate's counts per key.
    "CREATE TABLE settings (
         name TEXT PRIMARY KEY NOT NULL,
         value TEXT NOT NULL
     ) STRICT;
     CREATE TABLE key_counts (
         key_id TEXT PRIMARY KEY NOT NULL,
         limiter INTEGER NOT NULL,
         usage TEXT NOT NULL
     ) STRICT;",
];

/// How often the gate's counts are written behind.
pub(crate) const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The directory or its lock file cannot be made or opened.
    #[error("cannot use the data directory {dir} (LUMYX_DATA_DIR)")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Another server holds the directory's lock.
    #[error(
        "another lumyx-server uses the data directory {dir} (it holds {dir}/lumyx.lock); \
         stop it, or give this one another LUMYX_DATA_DIR"
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The database cannot be opened, read or migrated.
    #[error("the database {path} cannot be used: {problem}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
}

/// An open data directory: its lock, held until this is dropped, and the
/// server's own connection to its database.
pub(crate) struct DataDir {
    dir: PathBuf,
    _lock: File,
    db: Arc<Mutex<Connection>>,
}

impl DataDir {
    /// Opens (creating it owner-only when missing) the data directory
    /// `dir`, takes its lock, and opens and migrates the database.
    pub(crate) fn open(dir: &Path) -> Result<DataDir, DataDirError> {
        let io_error = |source| DataDirError::Io {
            dir: dir.to_owned(),
            source,
        };
        create_private_dir(dir).map_err(io_error)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io_error)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(DataDirError::Locked {
                    dir: dir.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(source)) => return Err(io_error(source)),
        }
        let path = dir.join(DATABASE_FILE);
        let db = open_database(&path).map_err(|problem| DataDirError::Database {
            path: path.clone(),
            problem,
        })?;
        Ok(DataDir {
            dir: dir.to_owned(),
            _lock: lock,
            db: Arc::new(Mutex::new(db)),
        })
    }

    /// The database file.
    pub(crate) fn database_path(&self) -> PathBuf {
        self.dir.join(DATABASE_FILE)
    }

    /// A setting, if it was stored.
    pub(crate) fn setting(&self, name: &str) -> Result<Option<String>, DataDirError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        db.query_row(
            "SELECT value FROM settings WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()
        .map_err(|err| self.failure(&err))
    }

    /// Stores `value` for `name` unless one is stored already; answers the
    /// value stored after the call.
    pub(crate) fn setting_or_insert(
        &self,
        name: &str,
        value: &str,
    ) -> Result<String, DataDirError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        db.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
            [name, value],
        )
        .and_then(|_| {
            db.query_row(
                "SELECT value FROM settings WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
        })
        .map_err(|err| self.failure(&err))
    }

    /// Stores `value` for `name`, replacing any.
    pub(crate) fn set_setting(&self, name: &str, value: &str) -> Result<(), DataDirError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        db.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            [name, value],
        )
        .map(|_| ())
        .map_err(|err| self.failure(&err))
    }

    /// Puts the saved counts of every key of `table` back into its entry.
    pub(crate) fn restore_counts(&self, table: &KeyTable) -> Result<usize, DataDirError> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let mut statement = db
            .prepare("SELECT key_id, limiter, usage FROM key_counts")
            .map_err(|err| self.failure(&err))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|err| self.failure(&err))?;
        let mut restored = 0;
        for row in rows {
            let (key_id, limiter, usage) = row.map_err(|err| self.failure(&err))?;
            let Some(entry) = key_id
                .parse::<KeyId>()
                .ok()
                .and_then(|id| table.find_by_id(&id))
            else {
                continue;
            };
            let usage: SavedUsage = serde_json::from_str(&usage).map_err(|err| {
                self.failure(&format!(
                    "the saved usage of {key_id} is unreadable ({err})"
                ))
            })?;
            entry.limiter().restore(limiter.cast_unsigned());
            entry.usage().restore(&usage.into_usage());
            restored += 1;
        }
        Ok(restored)
    }

    /// A [`CountSaver`] of `table` into this database.
    pub(crate) fn count_saver(&self, table: Arc<KeyTable>) -> CountSaver {
        CountSaver {
            db: Arc::clone(&self.db),
            table,
            written: HashMap::new(),
        }
    }

    fn failure(&self, err: &dyn std::fmt::Display) -> DataDirError {
        DataDirError::Database {
            path: self.database_path(),
            problem: err.to_string(),
        }
    }
}

impl std::fmt::Debug for DataDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataDir")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Creates `dir` (and its parents) readable by its owner only; an
/// existing one is made so.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        builder.mode(0o700);
        builder.create(dir)?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
    }
    #[cfg(not(unix))]
    builder.create(dir)
}

/// Creates the file `path` readable and writable by its owner only, unless
/// it exists; SQLite gives its `-wal` and `-shm` files the same mode.
fn create_private_file(path: &Path) -> io::Result<()> {
    let mut options = File::options();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map(drop)
}

/// Opens the database at `path` with the server's settings and runs this
/// module's migrations.
fn open_database(path: &Path) -> Result<Connection, String> {
    create_private_file(path).map_err(|err| err.to_string())?;
    #[cfg(unix)]
    {
        // A database an earlier version left readable by others is not.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|err| err.to_string())?;
    }
    let mut db = Connection::open(path).map_err(|err| err.to_string())?;
    configure(&db).map_err(|err| err.to_string())?;
    migrate_schema(&mut db, COMPONENT, MIGRATIONS).map_err(|err| Report(&err).to_string())?;
    Ok(db)
}

/// WAL, `synchronous=NORMAL`, foreign keys, and a wait of up to 5 s for a
/// lock another connection holds: how every connection of the server to
/// its database is set up.
pub(crate) fn configure(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(Duration::from_secs(5))?;
    // An in-memory database answers `memory`, and keeps it.
    let _mode: String =
        db.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.pragma_update(None, "foreign_keys", "ON")
}

/// Writes the gate's counts behind: each call saves the keys whose limiter
/// word or usage moved since the last call, in one transaction.
pub(crate) struct CountSaver {
    db: Arc<Mutex<Connection>>,
    table: Arc<KeyTable>,
    /// What was last written of each key: its limiter word and the sum of
    /// its totals.
    written: HashMap<KeyId, (u64, u64)>,
}

impl CountSaver {
    /// Saves what changed; answers how many keys were written. Runs SQLite
    /// on this thread: call it where blocking is allowed.
    pub(crate) fn save(&mut self, now: Timestamp) -> rusqlite::Result<usize> {
        let mut changed = Vec::new();
        for entry in self.table.entries() {
            let id = entry.record().id;
            let limiter = entry.limiter().saved();
            let counted = entry.usage().counted();
            if self.written.get(&id) == Some(&(limiter, counted)) {
                continue;
            }
            let usage = entry.usage().usage(now);
            changed.push((id, limiter, counted, SavedUsage::of(&usage)));
        }
        if changed.is_empty() {
            return Ok(0);
        }
        let mut db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        let transaction = db.transaction()?;
        {
            let mut upsert = transaction.prepare_cached(
                "INSERT INTO key_counts (key_id, limiter, usage) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key_id) DO UPDATE SET limiter = excluded.limiter, usage = excluded.usage",
            )?;
            for (id, limiter, _, usage) in &changed {
                let usage = serde_json::to_string(usage).unwrap_or_default();
                upsert.execute(params![id.to_string(), limiter.cast_signed(), usage])?;
            }
        }
        transaction.commit()?;
        let written = changed.len();
        for (id, limiter, total, _) in changed {
            self.written.insert(id, (limiter, total));
        }
        Ok(written)
    }
}

/// A key's usage as the database keeps it (JSON): the days with counts,
/// the totals and the last admission, counts in [`Counted::ALL`]'s order.
#[derive(Debug, Serialize, Deserialize)]
struct SavedUsage {
    days: Vec<(u32, [u64; 6])>,
    totals: [u64; 6],
    last_used_micros: Option<u64>,
}

impl SavedUsage {
    fn of(usage: &Usage) -> SavedUsage {
        let counts = |counts: &Counts| Counted::ALL.map(|kind| counts.get(kind));
        SavedUsage {
            days: usage
                .days
                .iter()
                .filter(|day| !day.counts.is_empty())
                .map(|day| (day.day, counts(&day.counts)))
                .collect(),
            totals: counts(&usage.totals),
            last_used_micros: usage.last_used.map(Timestamp::unix_micros),
        }
    }

    fn into_usage(self) -> Usage {
        let counts = |saved: [u64; 6]| {
            let mut counts = Counts::default();
            for (kind, n) in Counted::ALL.into_iter().zip(saved) {
                counts.add(kind, n);
            }
            counts
        };
        let today = self.days.iter().map(|(day, _)| *day).max().unwrap_or(0);
        Usage::new(
            today,
            self.days.into_iter().map(|(day, saved)| DayUsage {
                day,
                counts: counts(saved),
            }),
            counts(self.totals),
            self.last_used_micros.map(Timestamp::from_unix_micros),
        )
    }
}

/// Copies the database of the data directory `dir` to `to` (a new file)
/// with SQLite's online backup API: a consistent copy, taken while a
/// server may be writing. Answers the pages copied.
///
/// # Errors
/// When the database cannot be read, `to` exists already, or cannot be
/// written.
pub(crate) fn backup(dir: &Path, to: &Path) -> Result<i32, DataDirError> {
    let source_path = dir.join(DATABASE_FILE);
    let failure = |path: &Path, problem: String| DataDirError::Database {
        path: path.to_owned(),
        problem,
    };
    if !source_path.is_file() {
        return Err(failure(
            &source_path,
            "there is no database there".to_owned(),
        ));
    }
    if to.exists() {
        return Err(failure(to, "it exists already; give a new file".to_owned()));
    }
    let source =
        Connection::open_with_flags(&source_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|db| db.busy_timeout(Duration::from_secs(5)).map(|()| db))
            .map_err(|err| failure(&source_path, err.to_string()))?;
    // Into a file beside the target, renamed into place once whole: a
    // failed copy leaves nothing at `to`.
    let partial = to.with_file_name(format!(
        ".{}.partial",
        to.file_name()
            .map_or_else(|| "backup".into(), |name| name.to_string_lossy())
    ));
    let _ = fs::remove_file(&partial);
    let copied = copy_database(&source, &partial, to);
    if copied.is_err() {
        let _ = fs::remove_file(&partial);
    }
    copied.map_err(|problem| failure(to, problem))
}

/// Copies `source` into the new file `partial`, then renames it to `to`.
fn copy_database(source: &Connection, partial: &Path, to: &Path) -> Result<i32, String> {
    create_private_file(partial).map_err(|err| err.to_string())?;
    let mut target = Connection::open(partial).map_err(|err| err.to_string())?;
    let pages = {
        let copy =
            rusqlite::backup::Backup::new(source, &mut target).map_err(|err| err.to_string())?;
        // Every page in one step, under one read snapshot: a step at a time
        // would start over whenever the server writes meanwhile. A step
        // that meets a lock is tried again, for up to 10 s.
        let mut tries = 0;
        loop {
            match copy.step(-1).map_err(|err| err.to_string())? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if tries < 200 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err("the database stayed locked for 10 s".to_owned()),
            }
        }
        copy.progress().pagecount
    };
    target.close().map_err(|(_, err)| err.to_string())?;
    File::open(partial)
        .and_then(|file| file.sync_all())
        .and_then(|()| fs::rename(partial, to))
        .map_err(|err| err.to_string())?;
    Ok(pages)
}

/// A key store whose calls run on Tokio's blocking threads: SQLite's
/// writes wait for locks and disks, and must not hold up the threads that
/// serve requests (the gate never calls the store; the admin API does).
pub(crate) struct OffThread(pub(crate) Arc<dyn KeyStore>);

impl OffThread {
    async fn run<T, F, Fut>(&self, call: F) -> Result<T, lumyx_keys::Error>
    where
        T: Send + 'static,
        F: FnOnce(Arc<dyn KeyStore>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, lumyx_keys::Error>>,
    {
        let store = Arc::clone(&self.0);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(call(store)))
            .await
            .map_err(|err| lumyx_keys::Error::Store(Box::new(err)))?
    }
}

#[async_trait::async_trait]
impl KeyStore for OffThread {
    async fn insert(&self, record: KeyRecord) -> Result<(), lumyx_keys::Error> {
        self.run(move |store| async move { store.insert(record).await })
            .await
    }

    async fn update(&self, record: KeyRecord) -> Result<bool, lumyx_keys::Error> {
        self.run(move |store| async move { store.update(record).await })
            .await
    }

    async fn revoke(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
    ) -> Result<Option<Arc<KeyRecord>>, lumyx_keys::Error> {
        let id = *id;
        self.run(move |store| async move { store.revoke(&id, at).await })
            .await
    }

    async fn find_by_digest(
        &self,
        digest: &KeyDigest,
    ) -> Result<Option<Arc<KeyRecord>>, lumyx_keys::Error> {
        let digest = *digest;
        self.run(move |store| async move { store.find_by_digest(&digest).await })
            .await
    }

    async fn find_by_id(&self, id: &KeyId) -> Result<Option<Arc<KeyRecord>>, lumyx_keys::Error> {
        let id = *id;
        self.run(move |store| async move { store.find_by_id(&id).await })
            .await
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, lumyx_keys::Error> {
        self.run(|store| async move { store.list().await }).await
    }
}

impl std::fmt::Debug for OffThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("OffThread").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: &str = "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL) STRICT;";
    const SECOND: &str = "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;";

    fn version(db: &Connection, component: &str) -> i64 {
        db.query_row(
            "SELECT version FROM schema_versions WHERE component = ?1",
            [component],
            |row| row.get(0),
        )
        .unwrap()
    }

    #[test]
    fn an_older_schema_is_migrated_keeping_its_rows_and_a_newer_one_refused() {
        let mut db = Connection::open_in_memory().unwrap();
        configure(&db).unwrap();
        migrate_schema(&mut db, "notes", &[FIRST]).unwrap();
        db.execute("INSERT INTO notes (text) VALUES ('kept')", [])
            .unwrap();
        migrate_schema(
            &mut db,
            "other",
            &[FIRST.replace("notes", "others").as_str()],
        )
        .unwrap();

        migrate_schema(&mut db, "notes", &[FIRST, SECOND]).unwrap();
        assert_eq!(version(&db, "notes"), 2);
        assert_eq!(
            version(&db, "other"),
            1,
            "another component's version is its own"
        );
        let (text, pinned): (String, i64) = db
            .query_row("SELECT text, pinned FROM notes", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .unwrap();
        assert_eq!((text.as_str(), pinned), ("kept", 0));

        migrate_schema(&mut db, "notes", &[FIRST, SECOND]).unwrap();
        assert_eq!(version(&db, "notes"), 2, "a second start changes nothing");
        let refused = migrate_schema(&mut db, "notes", &[FIRST]).unwrap_err();
        assert!(matches!(
            refused,
            lumyx_keys::Error::SchemaTooNew {
                found: 2,
                known: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_failed_migration_leaves_the_previous_version() {
        let mut db = Connection::open_in_memory().unwrap();
        migrate_schema(&mut db, "notes", &[FIRST]).unwrap();
        let broken = "ALTER TABLE notes ADD COLUMN x INTEGER; THIS IS NOT SQL;";
        assert!(migrate_schema(&mut db, "notes", &[FIRST, broken]).is_err());
        assert_eq!(version(&db, "notes"), 1);
        let columns: i64 = db
            .query_row(
                "SELECT count(*) FROM pragma_table_info('notes')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(
            columns, 2,
            "the failed migration's first statement was rolled back"
        );
    }

    #[test]
    fn saved_usage_reads_back_as_it_was() {
        let mut counts = Counts::default();
        counts.add(Counted::Admitted, 7);
        counts.add(Counted::MinuteLimit, 2);
        let usage = Usage::new(
            20_000,
            [
                DayUsage {
                    day: 19_999,
                    counts,
                },
                DayUsage {
                    day: 20_000,
                    counts,
                },
            ],
            counts,
            Some(Timestamp::from_unix_micros(1_700_000_000_000_000)),
        );
        let json = serde_json::to_string(&SavedUsage::of(&usage)).unwrap();
        let back: SavedUsage = serde_json::from_str(&json).unwrap();
        assert_eq!(back.into_usage(), usage);
    }
}
