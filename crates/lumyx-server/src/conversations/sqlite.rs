//! Conversations in a SQLite database: for one instance (or a few processes
//! on one machine) whose conversations must outlive the process.
//!
//! The database file may be shared with other components (keys, usage), so
//! the store names and versions only its own tables: it never reads or sets
//! `PRAGMA user_version`. Instead the table `schema_versions(component,
//! version)` holds one row per component; this store's is
//! `lumyx_conversations`. At open, each migration this build knows and the
//! database has not had is applied in a transaction of its own, together
//! with the new version; a database of a newer version than this build
//! knows is refused, since this build cannot tell what it holds.
//!
//! Layout (version 1):
//! - `conversations(id, owner, created_at, seq, metadata, message_count,
//!   bytes)`: `seq` is the order of creation, which breaks ties of equal
//!   `created_at`; `metadata` is JSON, or NULL when there is none;
//!   `message_count` and `bytes` are the running counts the caps check. An
//!   index on `(owner, created_at, seq)` serves the lists;
//! - `messages(id, conversation_id, position, created_at, role, content)`:
//!   `position` counts from 0 in the order the messages were added; the
//!   messages go with their conversation (`ON DELETE CASCADE`).
//!
//! One connection, behind a mutex, serves every call; a call runs its SQL on
//! Tokio's blocking threads, never on the runtime's, in one transaction.
//! Writes take the write lock when they begin (`BEGIN IMMEDIATE`), so a cap
//! is checked against counts that no other writer, in this process or
//! another, can change before the write commits. Lists read one page (and
//! one item more, for `has_more`) from the index, after the item `after`
//! names; nothing reads a whole conversation or a whole owner's list.
//!
//! An error for data the store cannot read says what is wrong and where (the
//! column, the conversation, the message's position) but never the stored
//! text, which is the clients' and may be large or secret.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use lumyx_api_types::{
    Conversation, ConversationMessage, ListOrder, ListPage, ListParams, Metadata, Role,
};
use rusqlite::types::FromSql;
use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::durable::configure;

use super::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, StoreError,
    content_bytes, full, json_failure, new_conversation_id, new_messages, now,
};

/// This store's row in `schema_versions`.
const COMPONENT: &str = "lumyx_conversations";

/// The migrations, oldest first: the database is at version `n` when the
/// first `n` have been applied. Append only; never change one that has
/// shipped.
const MIGRATIONS: &[&str] = &["
CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seq INTEGER NOT NULL UNIQUE,
    metadata TEXT,
    message_count INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conversations_by_owner ON conversations (owner, created_at, seq);
CREATE TABLE messages (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    UNIQUE (conversation_id, position)
);
"];

/// Conversations in a SQLite database, kept when the process ends: one
/// connection behind a mutex, each call one transaction on Tokio's blocking
/// threads, writes checking the caps inside their transaction.
///
/// The database file may hold other components' tables: the store's schema
/// version is its row in `schema_versions`, not `PRAGMA user_version`.
/// Cloning is cheap: clones share the connection.
///
/// ```
/// use lumyx_server::{ConversationStore, SqliteConversations};
/// use lumyx_api_types::Role;
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = SqliteConversations::open_in_memory()?;
/// let conversation = store
///     .create("acct_1", None, vec![(Role::User, "Hello".to_owned())])
///     .await?;
/// let history = store.history("acct_1", &conversation.id, 50).await?;
/// assert_eq!(history.map(|messages| messages.len()), Some(1));
/// // Another owner is told nothing about it.
/// assert!(store.get("acct_2", &conversation.id).await?.is_none());
/// # Ok::<(), lumyx_server::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SqliteConversations {
    inner: Arc<Inner>,
}

/// What the clones of a store share.
struct Inner {
    connection: Mutex<Connection>,
    /// The database file; `None` in memory.
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteConversations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteConversations")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteConversations {
    /// The newest schema version of `lumyx_conversations` this build knows,
    /// and brings a database to at open.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens the database file at `path`, made if it does not exist, and
    /// brings this store's tables to [`Self::SCHEMA_VERSION`]. It blocks
    /// while it does: call it before serving, or on a blocking thread.
    ///
    /// The connection writes ahead (`journal_mode=WAL`), syncs at
    /// checkpoints (`synchronous=NORMAL`), enforces foreign keys and waits
    /// up to 5 s for another connection's lock.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened, read or
    /// written; [`StoreError::Corrupt`] when it is not a database, or its
    /// `lumyx_conversations` schema is newer than this build knows.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(failed)?;
        Self::setup(connection, Some(path.to_owned()))
    }

    /// A new database in this process's memory, lost when the last clone
    /// of the store is dropped: for tests.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when SQLite cannot make it.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory().map_err(failed)?;
        Self::setup(connection, None)
    }

    fn setup(mut connection: Connection, path: Option<PathBuf>) -> Result<Self, StoreError> {
        configure(&connection).map_err(failed)?;
        lumyx_keys::migrate_schema(&mut connection, COMPONENT, MIGRATIONS).map_err(|err| {
            match err {
                // SQLite's own failure, classified as every other.
                lumyx_keys::Error::Store(cause) => match cause.downcast::<rusqlite::Error>() {
                    Ok(sqlite) => failed(*sqlite),
                    Err(other) => StoreError::Unavailable(other),
                },
                other => StoreError::Corrupt(other.to_string()),
            }
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                connection: Mutex::new(connection),
                path,
            }),
        })
    }

    /// Runs `call` on the connection on a blocking thread. A panic of
    /// `call` rolls its transaction back (a dropped transaction does) and
    /// is raised again here.
    async fn run<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        let task = tokio::task::spawn_blocking(move || call(&mut inner.connection()));
        match task.await {
            Ok(result) => result,
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            // Only when the runtime shuts down.
            Err(err) => Err(StoreError::Unavailable(Box::new(err))),
        }
    }

    /// Runs `call` in a transaction that takes the write lock when it
    /// begins, and commits what it did when it answers `Ok`.
    async fn write<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |connection| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(failed)?;
            let answer = call(&transaction)?;
            transaction.commit().map_err(failed)?;
            Ok(answer)
        })
        .await
    }

    /// Runs `call` in a read transaction, so that its statements see one
    /// state of the database.
    async fn read<T, F>(&self, call: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.run(move |connection| {
            let transaction = connection.transaction().map_err(failed)?;
            let answer = call(&transaction)?;
            transaction.commit().map_err(failed)?;
            Ok(answer)
        })
        .await
    }
}

impl Inner {
    /// The connection; a panic of another call while it held the lock
    /// dropped that call's transaction, which rolled it back, so a poisoned
    /// lock is taken as it is.
    fn connection(&self) -> MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a failed statement tells the caller: the database holds what
/// cannot be used (it is not a database, or damaged, or its rows break the
/// store's own constraints), or it cannot answer now (busy, locked, a
/// failing disk). SQLite's messages name tables and columns, never values.
fn failed(err: rusqlite::Error) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(
                failure.code,
                ErrorCode::DatabaseCorrupt
                    | ErrorCode::NotADatabase
                    | ErrorCode::ConstraintViolation
                    | ErrorCode::TypeMismatch
            ) =>
        {
            StoreError::Corrupt(format!("SQLite: {err}"))
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => unreadable(err, || "a column read".to_owned()),
        _ => StoreError::Unavailable(Box::new(err)),
    }
}

/// The error for a column that `what` names and that could not be read:
/// its type, but not its value (a conversion's own message may quote it).
fn unreadable(err: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
    let why = match &err {
        rusqlite::Error::InvalidColumnType(_, _, stored) => {
            format!("is {stored}, not what the store writes")
        }
        rusqlite::Error::FromSqlConversionFailure(_, stored, _) => {
            format!("is {stored} that cannot be read as what the store writes")
        }
        rusqlite::Error::IntegralValueOutOfRange(..) => "is out of range".to_owned(),
        rusqlite::Error::Utf8Error(..) => "is not UTF-8".to_owned(),
        _ => return failed(err),
    };
    StoreError::Corrupt(format!("{} {why}", what()))
}

/// Column `index` of `row`, which `what` names for the error.
fn column<T: FromSql>(
    row: &Row<'_>,
    index: usize,
    what: impl FnOnce() -> String,
) -> Result<T, StoreError> {
    row.get(index).map_err(|err| unreadable(err, what))
}

/// A count of the store's (`message_count`, `bytes`) as kept.
fn count(stored: i64, what: impl FnOnce() -> String) -> Result<usize, StoreError> {
    usize::try_from(stored).map_err(|_| StoreError::Corrupt(format!("{} is negative", what())))
}

/// A number of the store's as SQLite keeps it (every count is far below
/// `i64::MAX`; a larger one is cut to it, which reads the same in a
/// `LIMIT`).
fn sql_int(number: usize) -> i64 {
    i64::try_from(number).unwrap_or(i64::MAX)
}

fn metadata_json(metadata: Option<&Metadata>) -> Result<Option<String>, StoreError> {
    metadata
        .map(serde_json::to_string)
        .transpose()
        .map_err(|err| StoreError::Corrupt(format!("metadata did not serialize: {err}")))
}

/// The metadata of conversation `id` as stored: JSON, or NULL.
fn parse_metadata(stored: Option<String>, id: &str) -> Result<Option<Metadata>, StoreError> {
    let Some(text) = stored else {
        return Ok(None);
    };
    serde_json::from_str(&text).map_err(|err| {
        StoreError::Corrupt(format!(
            "the metadata of conversation {id} is not JSON of pairs of strings, or null \
             ({} bytes; {})",
            text.len(),
            json_failure(&err)
        ))
    })
}

/// The columns a conversation is read from, in [`read_conversation`]'s
/// order.
const CONVERSATION_COLUMNS: &str = "id, created_at, metadata";

/// A conversation from a row of [`CONVERSATION_COLUMNS`].
fn read_conversation(row: &Row<'_>) -> Result<Conversation, StoreError> {
    let id: String = column(row, 0, || "the id of a listed conversation".to_owned())?;
    let created_at = column(row, 1, || format!("the created_at of conversation {id}"))?;
    let metadata = column(row, 2, || format!("the metadata of conversation {id}"))?;
    let metadata = parse_metadata(metadata, &id)?;
    Ok(Conversation::new(id, created_at, metadata))
}

/// The columns a message is read from, in [`read_message`]'s order.
const MESSAGE_COLUMNS: &str = "position, id, created_at, role, content";

/// A message of conversation `conversation` from a row of
/// [`MESSAGE_COLUMNS`].
fn read_message(row: &Row<'_>, conversation: &str) -> Result<ConversationMessage, StoreError> {
    let position: i64 = column(row, 0, || {
        format!("the position of a message of conversation {conversation}")
    })?;
    let what = |field: &str| {
        format!("the {field} of the message at position {position} of conversation {conversation}")
    };
    let id: String = column(row, 1, || what("id"))?;
    let created_at = column(row, 2, || what("created_at"))?;
    let role: String = column(row, 3, || what("role"))?;
    let content: String = column(row, 4, || what("content"))?;
    Ok(ConversationMessage::new(
        id,
        created_at,
        Role::from_wire(&role),
        content,
    ))
}

/// Every row `sql` answers for `params`, each read with `read`.
fn rows<T, P: rusqlite::Params>(
    transaction: &Transaction<'_>,
    sql: &str,
    params: P,
    mut read: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut statement = transaction.prepare_cached(sql).map_err(failed)?;
    let mut rows = statement.query(params).map_err(failed)?;
    let mut found = Vec::new();
    while let Some(row) = rows.next().map_err(failed)? {
        found.push(read(row)?);
    }
    Ok(found)
}

/// The (`message_count`, `bytes`) of `owner`'s conversation `id`, or `None`
/// when there is no such conversation.
fn owned_counts(
    transaction: &Transaction<'_>,
    owner: &str,
    id: &str,
) -> Result<Option<(usize, usize)>, StoreError> {
    let counts: Option<(i64, i64)> = transaction
        .query_row(
            "SELECT message_count, bytes FROM conversations WHERE id = ?1 AND owner = ?2",
            (id, owner),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(|err| unreadable(err, || format!("the counts of conversation {id}")))?;
    counts
        .map(|(messages, bytes)| {
            Ok((
                count(messages, || {
                    format!("the message_count of conversation {id}")
                })?,
                count(bytes, || format!("the bytes of conversation {id}"))?,
            ))
        })
        .transpose()
}

/// Whether `owner` has a conversation `id`.
fn owns(transaction: &Transaction<'_>, owner: &str, id: &str) -> Result<bool, StoreError> {
    transaction
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1 AND owner = ?2)",
            (id, owner),
            |row| row.get(0),
        )
        .map_err(failed)
}

/// Adds `messages` to conversation `id` at positions from `from` on.
fn insert_messages(
    transaction: &Transaction<'_>,
    id: &str,
    from: usize,
    messages: &[ConversationMessage],
) -> Result<(), StoreError> {
    let mut statement = transaction
        .prepare_cached(
            "INSERT INTO messages (id, conversation_id, position, created_at, role, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .map_err(failed)?;
    for (offset, message) in messages.iter().enumerate() {
        statement
            .execute((
                &message.id,
                id,
                sql_int(from + offset),
                message.created_at,
                message.role.as_str(),
                &message.content,
            ))
            .map_err(failed)?;
    }
    Ok(())
}

/// Whether a conversation of `messages` messages and `bytes` bytes of
/// content, with `new` added, stays within the caps.
fn fits(messages: usize, bytes: usize, new: &[ConversationMessage]) -> bool {
    messages.saturating_add(new.len()) <= MAX_MESSAGES_PER_CONVERSATION
        && bytes.saturating_add(content_bytes(new)) <= MAX_CONVERSATION_BYTES
}

/// Whether the page is asked for oldest first; anything but `asc` (which
/// validation has refused) is the default, newest first.
fn ascending(page: &ListParams) -> bool {
    matches!(page.order, Some(ListOrder::Asc))
}

/// The page of `found`, read with one item more than `limit` to tell
/// whether items follow it.
fn page_of<T>(mut found: Vec<T>, limit: usize, id: impl Fn(&T) -> &str) -> ListPage<T> {
    let has_more = found.len() > limit;
    found.truncate(limit);
    ListPage::new(found, has_more, id)
}

#[async_trait]
impl ConversationStore for SqliteConversations {
    async fn create(
        &self,
        owner: &str,
        metadata: Option<Metadata>,
        messages: Vec<(Role, String)>,
    ) -> Result<Conversation, StoreError> {
        let created_at = now();
        let messages = new_messages(created_at, messages);
        let metadata_arg = metadata_json(metadata.as_ref())?;
        let owner = owner.to_owned();
        self.write(move |transaction| {
            if !fits(0, 0, &messages) {
                return Err(full());
            }
            // 96 random bits do not collide in practice; a collision must
            // still not replace someone's conversation.
            let id = loop {
                let id = new_conversation_id();
                let taken: bool = transaction
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)",
                        [&id],
                        |row| row.get(0),
                    )
                    .map_err(failed)?;
                if !taken {
                    break id;
                }
            };
            transaction
                .execute(
                    "INSERT INTO conversations
                         (id, owner, created_at, seq, metadata, message_count, bytes)
                     VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM conversations),
                         ?4, ?5, ?6)",
                    (
                        &id,
                        &owner,
                        created_at,
                        &metadata_arg,
                        sql_int(messages.len()),
                        sql_int(content_bytes(&messages)),
                    ),
                )
                .map_err(failed)?;
            insert_messages(transaction, &id, 0, &messages)?;
            Ok(Conversation::new(id, created_at, metadata))
        })
        .await
    }

    async fn get(&self, owner: &str, id: &str) -> Result<Option<Conversation>, StoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.read(move |transaction| {
            let found = rows(
                transaction,
                &format!(
                    "SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?1 AND owner = ?2"
                ),
                (&id, &owner),
                read_conversation,
            )?;
            Ok(found.into_iter().next())
        })
        .await
    }

    async fn update(
        &self,
        owner: &str,
        id: &str,
        metadata: Metadata,
    ) -> Result<Option<Conversation>, StoreError> {
        let metadata_arg = metadata_json(Some(&metadata))?;
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.write(move |transaction| {
            let created_at: Option<i64> = transaction
                .query_row(
                    "UPDATE conversations SET metadata = ?3 WHERE id = ?1 AND owner = ?2
                     RETURNING created_at",
                    (&id, &owner, &metadata_arg),
                    |row| row.get(0),
                )
                .optional()
                .map_err(|err| {
                    unreadable(err, || format!("the created_at of conversation {id}"))
                })?;
            Ok(created_at.map(|created_at| Conversation::new(id, created_at, Some(metadata))))
        })
        .await
    }

    async fn delete(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.write(move |transaction| {
            // Its messages go with it (`ON DELETE CASCADE`).
            let deleted = transaction
                .execute(
                    "DELETE FROM conversations WHERE id = ?1 AND owner = ?2",
                    (&id, &owner),
                )
                .map_err(failed)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list(
        &self,
        owner: &str,
        page: &ListParams,
    ) -> Result<ListPage<Conversation>, StoreError> {
        let owner = owner.to_owned();
        let after = page.after.clone();
        let ascending = ascending(page);
        let limit = usize::try_from(page.limit_or_default()).unwrap_or(usize::MAX);
        self.read(move |transaction| {
            // The place in the order of (created_at, seq) of the
            // conversation `after` names, if it is this owner's.
            let start: Option<(i64, i64)> = match &after {
                Some(after) => {
                    let place = transaction
                        .query_row(
                            "SELECT created_at, seq FROM conversations
                             WHERE id = ?1 AND owner = ?2",
                            (after, &owner),
                            |row| Ok((row.get(0)?, row.get(1)?)),
                        )
                        .optional()
                        .map_err(|err| {
                            unreadable(err, || format!("the place of conversation {after}"))
                        })?;
                    Some(place.ok_or(StoreError::UnknownCursor)?)
                }
                None => None,
            };
            let (beyond, order) = if ascending {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            let cursor = if start.is_some() {
                format!("AND (created_at, seq) {beyond} (?3, ?4)")
            } else {
                String::new()
            };
            let sql = format!(
                "SELECT {CONVERSATION_COLUMNS} FROM conversations
                 WHERE owner = ?1 {cursor}
                 ORDER BY created_at {order}, seq {order}
                 LIMIT ?2"
            );
            let fetch = sql_int(limit.saturating_add(1));
            let found = match start {
                Some((created_at, seq)) => rows(
                    transaction,
                    &sql,
                    (&owner, fetch, created_at, seq),
                    read_conversation,
                )?,
                None => rows(transaction, &sql, (&owner, fetch), read_conversation)?,
            };
            Ok(page_of(found, limit, |conversation| &conversation.id))
        })
        .await
    }

    async fn append(
        &self,
        owner: &str,
        id: &str,
        messages: Vec<(Role, String)>,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        let messages = new_messages(now(), messages);
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.write(move |transaction| {
            let Some((stored, stored_bytes)) = owned_counts(transaction, &owner, &id)? else {
                return Ok(None);
            };
            if !fits(stored, stored_bytes, &messages) {
                return Err(full());
            }
            insert_messages(transaction, &id, stored, &messages)?;
            transaction
                .execute(
                    "UPDATE conversations SET message_count = ?2, bytes = ?3 WHERE id = ?1",
                    (
                        &id,
                        sql_int(stored + messages.len()),
                        sql_int(stored_bytes + content_bytes(&messages)),
                    ),
                )
                .map_err(failed)?;
            Ok(Some(messages))
        })
        .await
    }

    async fn messages(
        &self,
        owner: &str,
        id: &str,
        page: &ListParams,
    ) -> Result<Option<ListPage<ConversationMessage>>, StoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        let after = page.after.clone();
        let ascending = ascending(page);
        let limit = usize::try_from(page.limit_or_default()).unwrap_or(usize::MAX);
        self.read(move |transaction| {
            if !owns(transaction, &owner, &id)? {
                return Ok(None);
            }
            // The position of the message `after` names, if it is one of
            // this conversation's.
            let start: Option<i64> = match &after {
                Some(after) => {
                    let position = transaction
                        .query_row(
                            "SELECT position FROM messages WHERE id = ?1 AND conversation_id = ?2",
                            (after, &id),
                            |row| row.get(0),
                        )
                        .optional()
                        .map_err(|err| {
                            unreadable(err, || {
                                format!("the position of a message of conversation {id}")
                            })
                        })?;
                    Some(position.ok_or(StoreError::UnknownCursor)?)
                }
                None => None,
            };
            let (beyond, order) = if ascending {
                (">", "ASC")
            } else {
                ("<", "DESC")
            };
            let cursor = if start.is_some() {
                format!("AND position {beyond} ?3")
            } else {
                String::new()
            };
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages
                 WHERE conversation_id = ?1 {cursor}
                 ORDER BY position {order}
                 LIMIT ?2"
            );
            let fetch = sql_int(limit.saturating_add(1));
            let read = |row: &Row<'_>| read_message(row, &id);
            let found = match start {
                Some(position) => rows(transaction, &sql, (&id, fetch, position), read)?,
                None => rows(transaction, &sql, (&id, fetch), read)?,
            };
            Ok(Some(page_of(found, limit, |message| &message.id)))
        })
        .await
    }

    async fn history(
        &self,
        owner: &str,
        id: &str,
        last: usize,
    ) -> Result<Option<Vec<ConversationMessage>>, StoreError> {
        let (owner, id) = (owner.to_owned(), id.to_owned());
        self.read(move |transaction| {
            if !owns(transaction, &owner, &id)? {
                return Ok(None);
            }
            let mut found = rows(
                transaction,
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1
                     ORDER BY position DESC LIMIT ?2"
                ),
                (&id, sql_int(last)),
                |row| read_message(row, &id),
            )?;
            found.reverse();
            Ok(Some(found))
        })
        .await
    }
}
