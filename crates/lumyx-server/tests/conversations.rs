//! The contract of a conversation store, run against every store, and what
//! only Redis adds (sharing between instances, a Redis Cluster, what a
//! failure between the steps of a call leaves, outages, timeouts and data
//! it cannot read) or only SQLite adds (a file that outlives its store,
//! migrations, and data it cannot read).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lumyx_api_types::{
    Conversation, ConversationMessage, ListOrder, ListPage, ListParams, Metadata, Role,
};
use lumyx_redis::{RedisConnection, RedisConnector};
use lumyx_server::{
    ConversationStore, MAX_CONVERSATION_BYTES, MAX_MESSAGES_PER_CONVERSATION, MemoryConversations,
    RedisConversations, SqliteConversations, StoreError,
};
use lumyx_test_support::{RedisCluster, RedisServer};
use sha2::{Digest, Sha256};

/// The owners of the contract; the first has characters a Redis key or a
/// hash tag would trip on.
const OWNER: &str = "acct: one {x}/ü";
const OTHER: &str = "acct_2";
const LISTER: &str = "acct_3";
/// The owner of the conversations that reach the caps.
const FILLER: &str = "acct_4";

/// A `last` of history that asks for every message.
const ALL: usize = usize::MAX;

/// One MiB.
const MIB: usize = 1024 * 1024;

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect::<BTreeMap<_, _>>()
}

fn text(messages: &[(Role, &str)]) -> Vec<(Role, String)> {
    messages
        .iter()
        .map(|(role, content)| (role.clone(), (*content).to_owned()))
        .collect()
}

fn params(limit: u32, order: Option<ListOrder>, after: Option<&str>) -> ListParams {
    ListParams {
        limit: Some(limit),
        order,
        after: after.map(str::to_owned),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn assert_id(id: &str, prefix: &str) {
    let digits = id
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{id} starts with {prefix}"));
    assert_eq!(digits.len(), 24, "{id}");
    assert!(
        digits
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{id}"
    );
}

fn ids<T>(page: &ListPage<T>, id: impl Fn(&T) -> &str) -> Vec<String> {
    page.data.iter().map(|item| id(item).to_owned()).collect()
}

fn conversation_ids(page: &ListPage<Conversation>) -> Vec<String> {
    ids(page, |conversation| &conversation.id)
}

fn message_ids(page: &ListPage<ConversationMessage>) -> Vec<String> {
    ids(page, |message| &message.id)
}

fn contents(messages: &[ConversationMessage]) -> Vec<(Role, String)> {
    messages
        .iter()
        .map(|message| (message.role.clone(), message.content.clone()))
        .collect()
}

/// Checks a page: its items' ids (as `ids_of` reads them), `first_id`,
/// `last_id` and `has_more`.
fn assert_page<T>(
    page: &ListPage<T>,
    ids_of: fn(&ListPage<T>) -> Vec<String>,
    want: &[&String],
    has_more: bool,
) {
    let want_ids: Vec<String> = want.iter().map(|id| (*id).clone()).collect();
    assert_eq!(ids_of(page), want_ids);
    assert_eq!(page.first_id.as_ref(), want.first().copied());
    assert_eq!(page.last_id.as_ref(), want.last().copied());
    assert_eq!(page.has_more, has_more, "has_more of {want_ids:?}");
}

fn unknown_cursor<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    assert!(
        matches!(result, Err(StoreError::UnknownCursor)),
        "expected UnknownCursor, got {result:?}"
    );
}

fn full<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(err @ StoreError::Full { .. }) => {
            assert!(
                matches!(
                    err,
                    StoreError::Full {
                        max_messages: MAX_MESSAGES_PER_CONVERSATION,
                        max_bytes: MAX_CONVERSATION_BYTES,
                    }
                ),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!(
                    "the conversation is full: at most {MAX_MESSAGES_PER_CONVERSATION} messages \
                     and {MAX_CONVERSATION_BYTES} bytes"
                )
            );
        }
        other => panic!("expected Full, got {other:?}"),
    }
}

/// `count` user messages of `size` bytes each.
fn many(count: usize, size: usize) -> Vec<(Role, String)> {
    (0..count).map(|_| (Role::User, "m".repeat(size))).collect()
}

/// Asserts that `owner`'s conversation `id` is still `conversation` with
/// the messages `history`.
async fn assert_unchanged(
    store: &dyn ConversationStore,
    owner: &str,
    conversation: &Conversation,
    history: &[ConversationMessage],
) {
    let id = &conversation.id;
    assert_eq!(
        store.get(owner, id).await.unwrap().as_ref(),
        Some(conversation)
    );
    let now = store.history(owner, id, ALL).await.unwrap().unwrap();
    assert_eq!(now.len(), history.len());
    assert!(now == history, "the history changed");
}

/// The caps of one conversation, in messages and in bytes.
async fn caps(store: &dyn ConversationStore) {
    // Creating past either cap is refused, and makes no conversation.
    full(
        store
            .create(FILLER, None, many(MAX_MESSAGES_PER_CONVERSATION + 1, 1))
            .await,
    );
    full(
        store
            .create(FILLER, None, many(1, MAX_CONVERSATION_BYTES + 1))
            .await,
    );
    full(
        store
            .create(
                FILLER,
                None,
                vec![
                    (Role::User, "m".repeat(MAX_CONVERSATION_BYTES - 1)),
                    (Role::Assistant, "mm".to_owned()),
                ],
            )
            .await,
    );
    assert!(
        store
            .list(FILLER, &ListParams::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );

    // The message cap: one short, two more are refused, one is not, and
    // then nothing more.
    let conversation = store
        .create(FILLER, None, many(MAX_MESSAGES_PER_CONVERSATION - 1, 1))
        .await
        .unwrap();
    let id = &conversation.id;
    let history = store.history(FILLER, id, ALL).await.unwrap().unwrap();
    assert_eq!(history.len(), MAX_MESSAGES_PER_CONVERSATION - 1);
    full(store.append(FILLER, id, many(2, 1)).await);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    // Another owner still finds nothing rather than a full conversation.
    assert_eq!(store.append(OTHER, id, many(2, 1)).await.unwrap(), None);
    let last = store.append(FILLER, id, many(1, 1)).await.unwrap().unwrap();
    let mut history = history;
    history.extend(last);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    full(store.append(FILLER, id, many(1, 0)).await);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    let page = store
        .messages(FILLER, id, &params(100, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.data.len(), 100);
    assert_eq!(page.data[0], history[MAX_MESSAGES_PER_CONVERSATION - 1]);
    // History answers the tail only.
    assert_eq!(
        store.history(FILLER, id, 3).await.unwrap().unwrap(),
        history[MAX_MESSAGES_PER_CONVERSATION - 3..]
    );
    // A full conversation still changes its metadata and is deleted.
    let updated = store
        .update(FILLER, id, metadata(&[("full", "yes")]))
        .await
        .unwrap()
        .unwrap();
    assert_unchanged(store, FILLER, &updated, &history).await;
    assert!(store.delete(FILLER, id).await.unwrap());

    // The byte cap: a few large messages, 10 bytes short; 11 more bytes are
    // refused, 10 are not, and then not one more byte.
    let first = vec![
        (Role::System, "s".repeat(MIB)),
        (Role::User, "u".repeat(MIB)),
        (Role::Assistant, "a".repeat(MIB)),
        (Role::User, "é".repeat((MIB - 10) / 2)),
    ];
    assert_eq!(
        first.iter().map(|(_, text)| text.len()).sum::<usize>(),
        MAX_CONVERSATION_BYTES - 10
    );
    let conversation = store.create(FILLER, None, first.clone()).await.unwrap();
    let id = &conversation.id;
    let history = store.history(FILLER, id, ALL).await.unwrap().unwrap();
    assert_eq!(contents(&history), first);
    full(store.append(FILLER, id, many(1, 11)).await);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    full(store.append(FILLER, id, many(11, 1)).await);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    // Two bytes of one character count as two.
    full(
        store
            .append(FILLER, id, vec![(Role::User, "é".repeat(5) + "x")])
            .await,
    );
    assert_unchanged(store, FILLER, &conversation, &history).await;
    let appended = store.append(FILLER, id, many(2, 5)).await.unwrap().unwrap();
    let mut history = history;
    history.extend(appended);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    full(store.append(FILLER, id, many(1, 1)).await);
    // A message without content adds no bytes.
    let empty = store.append(FILLER, id, many(1, 0)).await.unwrap().unwrap();
    history.extend(empty);
    assert_unchanged(store, FILLER, &conversation, &history).await;
    assert!(store.delete(FILLER, id).await.unwrap());

    // Appends at the same time do not pass the cap together: of ten
    // appends of one message to a conversation two short, two are stored.
    let conversation = store
        .create(FILLER, None, many(MAX_MESSAGES_PER_CONVERSATION - 2, 1))
        .await
        .unwrap();
    let id = &conversation.id;
    let results =
        futures_util::future::join_all((0..10).map(|_| store.append(FILLER, id, many(1, 1)))).await;
    let mut stored = 0;
    for result in results {
        match result {
            Ok(Some(_)) => stored += 1,
            other => full(other),
        }
    }
    assert_eq!(stored, 2);
    assert_eq!(
        store.history(FILLER, id, ALL).await.unwrap().unwrap().len(),
        MAX_MESSAGES_PER_CONVERSATION
    );
    assert!(store.delete(FILLER, id).await.unwrap());
}

/// What every store must do.
async fn contract(store: &dyn ConversationStore) {
    // Create, with metadata and messages; get answers it.
    let before = now();
    let first_metadata = metadata(&[("topic", "tea"), ("lang", "en")]);
    let conversation = store
        .create(
            OWNER,
            Some(first_metadata.clone()),
            text(&[(Role::System, "Be brief."), (Role::User, "Hello")]),
        )
        .await
        .unwrap();
    assert_id(&conversation.id, "conv_");
    assert_eq!(conversation.object, "conversation");
    assert!((before..=now()).contains(&conversation.created_at));
    assert_eq!(conversation.metadata, Some(first_metadata.clone()));
    let id = conversation.id.clone();
    assert_eq!(
        store.get(OWNER, &id).await.unwrap(),
        Some(conversation.clone())
    );
    let history = store.history(OWNER, &id, ALL).await.unwrap().unwrap();
    assert_eq!(
        contents(&history),
        text(&[(Role::System, "Be brief."), (Role::User, "Hello")])
    );
    for message in &history {
        assert_id(&message.id, "msg_");
        assert_eq!(message.object, "conversation.message");
        assert!((before..=now()).contains(&message.created_at));
    }
    assert_ne!(history[0].id, history[1].id);

    // A conversation without metadata or messages.
    let bare = store.create(OWNER, None, Vec::new()).await.unwrap();
    assert_ne!(bare.id, id);
    assert_eq!(bare.metadata, None);
    assert_eq!(
        store.get(OWNER, &bare.id).await.unwrap(),
        Some(bare.clone())
    );
    assert_eq!(
        store.history(OWNER, &bare.id, ALL).await.unwrap(),
        Some(vec![])
    );

    // Another owner: as if it did not exist, and it changes nothing.
    assert_eq!(store.get(OTHER, &id).await.unwrap(), None);
    assert_eq!(
        store
            .update(OTHER, &id, metadata(&[("stolen", "yes")]))
            .await
            .unwrap(),
        None
    );
    assert!(!store.delete(OTHER, &id).await.unwrap());
    assert_eq!(
        store
            .append(OTHER, &id, text(&[(Role::User, "intrusion")]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .messages(OTHER, &id, &ListParams::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.history(OTHER, &id, ALL).await.unwrap(), None);
    let others = store.list(OTHER, &ListParams::default()).await.unwrap();
    assert!(others.data.is_empty());
    assert_eq!((others.first_id, others.last_id), (None, None));
    assert!(!others.has_more);
    unknown_cursor(store.list(OTHER, &params(20, None, Some(&id))).await);
    assert_eq!(
        store.get(OWNER, &id).await.unwrap(),
        Some(conversation.clone())
    );
    assert_eq!(
        store.history(OWNER, &id, ALL).await.unwrap(),
        Some(history.clone())
    );

    // Unknown ids.
    assert_eq!(store.get(OWNER, "conv_missing").await.unwrap(), None);
    assert_eq!(
        store
            .append(OWNER, "conv_missing", text(&[(Role::User, "x")]))
            .await
            .unwrap(),
        None
    );
    assert!(!store.delete(OWNER, "conv_missing").await.unwrap());

    // Update replaces the metadata.
    let new_metadata = metadata(&[("topic", "coffee")]);
    let updated = store
        .update(OWNER, &id, new_metadata.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        updated,
        Conversation::new(id.clone(), conversation.created_at, Some(new_metadata))
    );
    assert_eq!(store.get(OWNER, &id).await.unwrap(), Some(updated.clone()));

    // Append answers the messages as stored, in order; history has them all.
    let appended = store
        .append(
            OWNER,
            &id,
            text(&[(Role::Assistant, "Hi!"), (Role::User, "How are you?")]),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        contents(&appended),
        text(&[(Role::Assistant, "Hi!"), (Role::User, "How are you?")])
    );
    for message in &appended {
        assert_id(&message.id, "msg_");
    }
    let mut all = history.clone();
    all.extend(appended.iter().cloned());
    assert_eq!(
        store.history(OWNER, &id, ALL).await.unwrap(),
        Some(all.clone())
    );
    let more = store
        .append(OWNER, &id, text(&[(Role::Assistant, "Fine.")]))
        .await
        .unwrap()
        .unwrap();
    all.extend(more);
    let all_ids: Vec<&String> = all.iter().map(|message| &message.id).collect();
    // History with `last`: the most recent, oldest first.
    for (last, want) in [
        (0, &all[5..]),
        (1, &all[4..]),
        (2, &all[3..]),
        (4, &all[1..]),
        (5, &all[..]),
        (6, &all[..]),
        (1000, &all[..]),
    ] {
        assert_eq!(
            store.history(OWNER, &id, last).await.unwrap().as_deref(),
            Some(want),
            "last {last}"
        );
    }
    assert_eq!(
        store.history(OWNER, &bare.id, 1).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(
        store.history(OWNER, &bare.id, 0).await.unwrap(),
        Some(vec![])
    );
    assert_eq!(store.history(OTHER, &id, 2).await.unwrap(), None);
    assert_eq!(store.history(OWNER, "conv_missing", 2).await.unwrap(), None);
    let mut unique = all_ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "message ids are unique");

    // Messages, page by page, both ways; newest first by default.
    let page = store
        .messages(OWNER, &id, &ListParams::default())
        .await
        .unwrap()
        .unwrap();
    let newest_first: Vec<&String> = all_ids.iter().rev().copied().collect();
    assert_page(&page, message_ids, &newest_first, false);
    assert_eq!(page.data[0], all[4]);
    let pages = [
        (None, &all_ids[0..2], true),
        (Some(all_ids[1]), &all_ids[2..4], true),
        (Some(all_ids[3]), &all_ids[4..5], false),
    ];
    for (after, want, has_more) in pages {
        let page = store
            .messages(
                OWNER,
                &id,
                &params(2, Some(ListOrder::Asc), after.map(String::as_str)),
            )
            .await
            .unwrap()
            .unwrap();
        assert_page(&page, message_ids, want, has_more);
    }
    let pages = [
        (None, &newest_first[0..2], true),
        (Some(newest_first[1]), &newest_first[2..4], true),
        (Some(newest_first[3]), &newest_first[4..5], false),
    ];
    for (after, want, has_more) in pages {
        let page = store
            .messages(
                OWNER,
                &id,
                &params(2, Some(ListOrder::Desc), after.map(String::as_str)),
            )
            .await
            .unwrap()
            .unwrap();
        assert_page(&page, message_ids, want, has_more);
    }
    // A page that ends exactly at the last message has nothing after it.
    let page = store
        .messages(
            OWNER,
            &id,
            &params(3, Some(ListOrder::Asc), Some(all_ids[1])),
        )
        .await
        .unwrap()
        .unwrap();
    assert_page(&page, message_ids, &all_ids[2..5], false);
    // After the last (or, newest first, the oldest) message: an empty page.
    let page = store
        .messages(
            OWNER,
            &id,
            &params(2, Some(ListOrder::Asc), Some(all_ids[4])),
        )
        .await
        .unwrap()
        .unwrap();
    assert_page(&page, message_ids, &[], false);
    let page = store
        .messages(
            OWNER,
            &id,
            &params(2, Some(ListOrder::Desc), Some(all_ids[0])),
        )
        .await
        .unwrap()
        .unwrap();
    assert_page(&page, message_ids, &[], false);
    // A cursor that is no message of this conversation.
    unknown_cursor(
        store
            .messages(OWNER, &id, &params(2, None, Some("msg_missing")))
            .await,
    );
    unknown_cursor(
        store
            .messages(OWNER, &id, &params(2, None, Some(&id)))
            .await,
    );
    let elsewhere = store
        .create(OWNER, None, text(&[(Role::User, "elsewhere")]))
        .await
        .unwrap();
    let elsewhere_message = store
        .history(OWNER, &elsewhere.id, ALL)
        .await
        .unwrap()
        .unwrap()[0]
        .id
        .clone();
    unknown_cursor(
        store
            .messages(OWNER, &id, &params(2, None, Some(&elsewhere_message)))
            .await,
    );

    // Conversations, page by page, both ways.
    let empty = store.list(LISTER, &ListParams::default()).await.unwrap();
    assert!(empty.data.is_empty() && !empty.has_more && empty.first_id.is_none());
    let mut created = Vec::new();
    for n in 0..5 {
        let meta = metadata(&[("n", &n.to_string())]);
        created.push(store.create(LISTER, Some(meta), Vec::new()).await.unwrap());
    }
    let oldest_first: Vec<&String> = created.iter().map(|c| &c.id).collect();
    let newest_first: Vec<&String> = oldest_first.iter().rev().copied().collect();
    let page = store.list(LISTER, &ListParams::default()).await.unwrap();
    assert_page(&page, conversation_ids, &newest_first, false);
    let mut newest_first_conversations = created.clone();
    newest_first_conversations.reverse();
    assert_eq!(page.data, newest_first_conversations);
    for (order, ids) in [
        (Some(ListOrder::Desc), &newest_first),
        (None, &newest_first),
        (Some(ListOrder::Asc), &oldest_first),
    ] {
        let pages = [
            (None, &ids[0..2], true),
            (Some(ids[1]), &ids[2..4], true),
            (Some(ids[3]), &ids[4..5], false),
        ];
        for (after, want, has_more) in pages {
            let page = store
                .list(LISTER, &params(2, order.clone(), after.map(String::as_str)))
                .await
                .unwrap();
            assert_page(&page, conversation_ids, want, has_more);
        }
        // Following last_id until has_more is false visits each once.
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = store
                .list(LISTER, &params(2, order.clone(), after.as_deref()))
                .await
                .unwrap();
            seen.extend(conversation_ids(&page));
            if !page.has_more {
                break;
            }
            after = page.last_id;
        }
        assert_eq!(seen, ids.iter().map(|id| (*id).clone()).collect::<Vec<_>>());
        let page = store
            .list(LISTER, &params(5, order.clone(), None))
            .await
            .unwrap();
        assert_eq!(page.data.len(), 5);
        assert!(!page.has_more, "a page of exactly all has nothing after it");
        let page = store
            .list(LISTER, &params(2, order.clone(), Some(ids[4])))
            .await
            .unwrap();
        assert!(page.data.is_empty() && !page.has_more);
    }
    unknown_cursor(
        store
            .list(LISTER, &params(2, None, Some("conv_missing")))
            .await,
    );
    unknown_cursor(store.list(LISTER, &params(2, None, Some(&id))).await);
    unknown_cursor(
        store
            .list(LISTER, &params(2, None, Some(&elsewhere_message)))
            .await,
    );
    let mine = store.list(OWNER, &ListParams::default()).await.unwrap();
    assert_eq!(
        conversation_ids(&mine),
        vec![elsewhere.id.clone(), bare.id.clone(), id.clone()]
    );
    assert_eq!(mine.data[2], updated);

    // Delete: once, then gone everywhere.
    assert!(store.delete(OWNER, &id).await.unwrap());
    assert!(!store.delete(OWNER, &id).await.unwrap());
    assert_eq!(store.get(OWNER, &id).await.unwrap(), None);
    assert_eq!(store.history(OWNER, &id, ALL).await.unwrap(), None);
    assert_eq!(
        store
            .messages(OWNER, &id, &ListParams::default())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .append(OWNER, &id, text(&[(Role::User, "late")]))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.update(OWNER, &id, Metadata::new()).await.unwrap(),
        None
    );
    let mine = store.list(OWNER, &ListParams::default()).await.unwrap();
    assert_eq!(
        conversation_ids(&mine),
        vec![elsewhere.id.clone(), bare.id.clone()]
    );
    unknown_cursor(store.list(OWNER, &params(2, None, Some(&id))).await);
    assert_eq!(store.get(OWNER, &bare.id).await.unwrap(), Some(bare));
    assert_eq!(
        store
            .list(LISTER, &ListParams::default())
            .await
            .unwrap()
            .data
            .len(),
        5
    );

    caps(store).await;
}

#[tokio::test]
async fn memory_keeps_the_contract() {
    contract(&MemoryConversations::new()).await;
}

#[tokio::test]
async fn sqlite_in_memory_keeps_the_contract() {
    contract(&SqliteConversations::open_in_memory().unwrap()).await;
}

/// A directory of its own under the system's temporary directory, removed
/// with everything in it when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "lumyx-sqlite-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// The database file of the tests, not made yet.
    fn database(&self) -> PathBuf {
        self.0.join("lumyx.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn sqlite_file_keeps_the_contract() {
    let dir = TempDir::new("contract");
    let store = SqliteConversations::open(&dir.database()).unwrap();
    contract(&store).await;
    drop(store);
    // WAL, so that readers do not wait for a writer.
    let connection = rusqlite::Connection::open(dir.database()).unwrap();
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn sqlite_data_survives_closing_and_reopening_the_file() {
    let dir = TempDir::new("reopen");
    let path = dir.database();
    let store = SqliteConversations::open(&path).unwrap();
    let conversation = store
        .create(
            OWNER,
            Some(metadata(&[("topic", "tea")])),
            text(&[(Role::System, "Be brief."), (Role::User, "Hello")]),
        )
        .await
        .unwrap();
    let id = &conversation.id;
    let reply = store
        .append(OWNER, id, text(&[(Role::Assistant, "Hi")]))
        .await
        .unwrap()
        .unwrap();
    let bare = store.create(OWNER, None, Vec::new()).await.unwrap();
    let gone = store.create(OWNER, None, many(3, 1)).await.unwrap();
    assert!(store.delete(OWNER, &gone.id).await.unwrap());
    let history = store.history(OWNER, id, ALL).await.unwrap().unwrap();
    assert_eq!(history[2], reply[0]);
    let listed = store.list(OWNER, &ListParams::default()).await.unwrap();
    drop(store);

    let store = SqliteConversations::open(&path).unwrap();
    assert_eq!(
        store.get(OWNER, id).await.unwrap(),
        Some(conversation.clone())
    );
    assert_eq!(store.history(OWNER, id, ALL).await.unwrap(), Some(history));
    assert_eq!(
        store.list(OWNER, &ListParams::default()).await.unwrap(),
        listed
    );
    assert_eq!(conversation_ids(&listed), vec![bare.id.clone(), id.clone()]);
    assert_eq!(store.get(OWNER, &gone.id).await.unwrap(), None);
    assert_eq!(store.get(OTHER, id).await.unwrap(), None);
    // It goes on where it left off: positions, counts, creation order.
    let more = store
        .append(OWNER, id, text(&[(Role::User, "Again")]))
        .await
        .unwrap()
        .unwrap();
    let page = store
        .messages(OWNER, id, &params(1, None, None))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.data, more);
    assert!(page.has_more);
    let newer = store.create(OWNER, None, Vec::new()).await.unwrap();
    assert_eq!(
        conversation_ids(&store.list(OWNER, &ListParams::default()).await.unwrap()),
        vec![newer.id, bare.id, id.clone()]
    );
}

/// The version of `lumyx_conversations` in `path`'s `schema_versions`.
fn schema_version(path: &Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT version FROM schema_versions WHERE component = 'lumyx_conversations'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn sqlite_migrations_apply_once() {
    let dir = TempDir::new("migrations");
    let path = dir.database();
    // Another component's tables and version in the same file, and a
    // user_version that is not the store's to read or set.
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL);
                 INSERT INTO schema_versions VALUES ('lumyx_keys', 7);
                 CREATE TABLE keys (id TEXT PRIMARY KEY);
                 INSERT INTO keys VALUES ('key_1');
                 PRAGMA user_version = 42;",
            )
            .unwrap();
    }
    let first = SqliteConversations::open(&path).unwrap();
    let conversation = first
        .create(OWNER, None, text(&[(Role::User, "Hello")]))
        .await
        .unwrap();
    assert_eq!(schema_version(&path), SqliteConversations::SCHEMA_VERSION);
    // Opened again, while the first is open and after it is closed: the
    // migrations are not applied again, and nothing is lost.
    let second = SqliteConversations::open(&path).unwrap();
    assert_eq!(
        second.get(OWNER, &conversation.id).await.unwrap(),
        Some(conversation.clone())
    );
    drop((first, second));
    let third = SqliteConversations::open(&path).unwrap();
    assert_eq!(
        third.get(OWNER, &conversation.id).await.unwrap(),
        Some(conversation)
    );
    assert_eq!(schema_version(&path), SqliteConversations::SCHEMA_VERSION);
    drop(third);

    let connection = rusqlite::Connection::open(&path).unwrap();
    let versions: Vec<(String, i64)> = connection
        .prepare("SELECT component, version FROM schema_versions ORDER BY component")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        versions,
        vec![
            (
                "lumyx_conversations".to_owned(),
                SqliteConversations::SCHEMA_VERSION
            ),
            ("lumyx_keys".to_owned(), 7),
        ]
    );
    let user_version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(user_version, 42);
    let key: String = connection
        .query_row("SELECT id FROM keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(key, "key_1");
}

#[tokio::test]
async fn sqlite_refuses_a_newer_schema() {
    let dir = TempDir::new("newer");
    let path = dir.database();
    drop(SqliteConversations::open(&path).unwrap());
    let newer = SqliteConversations::SCHEMA_VERSION + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE schema_versions SET version = ?1 WHERE component = 'lumyx_conversations'",
            [newer],
        )
        .unwrap();
    match SqliteConversations::open(&path) {
        Err(err @ StoreError::Corrupt(_)) => {
            let shown = err.to_string();
            assert!(shown.contains("lumyx_conversations"), "{shown}");
            assert!(shown.contains(&format!("version {newer}")), "{shown}");
            assert!(shown.contains("newer build"), "{shown}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Refused, and left as it was.
    assert_eq!(schema_version(&path), newer);
}

#[tokio::test]
async fn sqlite_a_file_that_is_no_database_is_refused() {
    let dir = TempDir::new("garbage");
    let path = dir.database();
    std::fs::write(
        &path,
        "SECRET, and not a SQLite database at all".repeat(100),
    )
    .unwrap();
    match SqliteConversations::open(&path) {
        Err(err @ StoreError::Corrupt(_)) => {
            assert!(!format!("{err} {err:?}").contains("SECRET"), "{err:?}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // A directory that does not exist cannot be opened now: unavailable.
    let result = SqliteConversations::open(&dir.0.join("missing").join("lumyx.db"));
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
}

#[tokio::test]
async fn sqlite_a_database_locked_by_another_writer_is_unavailable() {
    let dir = TempDir::new("locked");
    let path = dir.database();
    let store = SqliteConversations::open(&path).unwrap();
    let conversation = store.create(OWNER, None, Vec::new()).await.unwrap();
    let blocker = rusqlite::Connection::open(&path).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Readers still read (WAL); a writer waits for the lock, then gives up.
    assert!(store.get(OWNER, &conversation.id).await.unwrap().is_some());
    let started = Instant::now();
    let result = store
        .append(OWNER, &conversation.id, text(&[(Role::User, "x")]))
        .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    blocker.execute_batch("ROLLBACK").unwrap();
    assert!(
        store
            .append(OWNER, &conversation.id, text(&[(Role::User, "x")]))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sqlite_data_it_cannot_read_is_corrupt() {
    let dir = TempDir::new("corrupt");
    let path = dir.database();
    let store = SqliteConversations::open(&path).unwrap();
    let conversation = store
        .create(OWNER, None, text(&[(Role::User, "Hello")]))
        .await
        .unwrap();
    let id = &conversation.id;
    let connection = rusqlite::Connection::open(&path).unwrap();
    let set = |sql: &str| {
        connection.execute(sql, [id]).unwrap();
    };

    set("UPDATE conversations SET metadata = '\"sk-SECRET-metadata\"' WHERE id = ?1");
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    corrupt_without(
        store.list(OWNER, &ListParams::default()).await,
        id,
        "SECRET",
    );
    set("UPDATE conversations SET metadata = 'not json SECRET' WHERE id = ?1");
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    set("UPDATE conversations SET metadata = NULL, created_at = 'sk-SECRET-created' WHERE id = ?1");
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    corrupt_without(
        store.update(OWNER, id, metadata(&[("k", "v")])).await,
        id,
        "SECRET",
    );
    set(&format!(
        "UPDATE conversations SET created_at = {} WHERE id = ?1",
        conversation.created_at
    ));
    assert_eq!(
        store.get(OWNER, id).await.unwrap(),
        Some(conversation.clone())
    );

    // A message whose content is not text, or not UTF-8.
    for content in ["CAST(X'80534543524554' AS TEXT)", "CAST('SECRET' AS BLOB)"] {
        set(&format!(
            "INSERT INTO messages (id, conversation_id, position, created_at, role, content)
             VALUES ('msg_broken', ?1, 1, 0, 'user', {content})"
        ));
        let result = store.history(OWNER, id, ALL).await;
        assert!(format!("{result:?}").contains("position 1"), "{result:?}");
        corrupt_without(result, id, "SECRET");
        corrupt_without(
            store.messages(OWNER, id, &ListParams::default()).await,
            id,
            "SECRET",
        );
        // Only what is read is read.
        assert_eq!(store.history(OWNER, id, 0).await.unwrap(), Some(vec![]));
        set("DELETE FROM messages WHERE id = 'msg_broken' AND conversation_id = ?1");
    }
    let history = store.history(OWNER, id, ALL).await.unwrap().unwrap();
    assert_eq!(contents(&history), text(&[(Role::User, "Hello")]));

    // A byte count that is no count: the append is refused, nothing added.
    set("UPDATE conversations SET bytes = -5 WHERE id = ?1");
    corrupt_without(
        store.append(OWNER, id, text(&[(Role::User, "more")])).await,
        id,
        "SECRET",
    );
    assert_eq!(store.history(OWNER, id, ALL).await.unwrap(), Some(history));
}

fn redis_store(server: &RedisServer) -> lumyx_server::RedisConversationsBuilder {
    RedisConversations::builder(server.url().parse().unwrap())
}

#[tokio::test]
async fn redis_keeps_the_contract() {
    let Some(server) = RedisServer::start_or_skip("redis_keeps_the_contract") else {
        return;
    };
    let store = redis_store(&server).connect().await.unwrap();
    contract(&store).await;
}

#[tokio::test]
async fn redis_instances_share_conversations() {
    let Some(server) = RedisServer::start_or_skip("redis_instances_share_conversations") else {
        return;
    };
    let one = redis_store(&server).connect().await.unwrap();
    let two = redis_store(&server).connect().await.unwrap();
    let elsewhere = redis_store(&server)
        .namespace("other")
        .connect()
        .await
        .unwrap();

    let conversation = one
        .create(OWNER, None, text(&[(Role::User, "Hello")]))
        .await
        .unwrap();
    let id = &conversation.id;
    assert_eq!(
        two.get(OWNER, id).await.unwrap(),
        Some(conversation.clone())
    );
    assert_eq!(
        conversation_ids(&two.list(OWNER, &ListParams::default()).await.unwrap()),
        vec![id.clone()]
    );
    let reply = two
        .append(OWNER, id, text(&[(Role::Assistant, "Hi")]))
        .await
        .unwrap()
        .unwrap();
    let history = one.history(OWNER, id, ALL).await.unwrap().unwrap();
    assert_eq!(
        contents(&history),
        text(&[(Role::User, "Hello"), (Role::Assistant, "Hi")])
    );
    assert_eq!(history[1], reply[0]);
    let updated = one
        .update(OWNER, id, metadata(&[("k", "v")]))
        .await
        .unwrap();
    assert_eq!(two.get(OWNER, id).await.unwrap(), updated);

    // Another namespace on the same server is another store.
    assert_eq!(elsewhere.get(OWNER, id).await.unwrap(), None);
    assert!(
        elsewhere
            .list(OWNER, &ListParams::default())
            .await
            .unwrap()
            .data
            .is_empty()
    );

    assert!(two.delete(OWNER, id).await.unwrap());
    assert_eq!(one.get(OWNER, id).await.unwrap(), None);
    assert!(!one.delete(OWNER, id).await.unwrap());
}

/// Sends one command over `connection` and answers its reply.
async fn raw<T: redis::FromRedisValue>(
    connection: &mut RedisConnection,
    command: &redis::Cmd,
) -> T {
    command.query_async(connection).await.unwrap()
}

/// A connection of its own to the Redis server or cluster at `url`, to
/// read and write the store's keys behind its back.
fn raw_connection(url: &str) -> RedisConnection {
    RedisConnector::new(url.parse().unwrap())
        .connect_lazy()
        .unwrap()
}

/// The key of `owner`'s set of conversations: named by the SHA-256 of the
/// owner, in hex.
fn owner_key(namespace: &str, owner: &str) -> String {
    format!(
        "{namespace}:o:{}",
        hex::encode(Sha256::digest(owner.as_bytes()))
    )
}

/// The keys of conversation `id`: the conversation, its messages, its
/// message index.
fn conversation_keys(namespace: &str, id: &str) -> [String; 3] {
    ["c", "m", "i"].map(|kind| format!("{namespace}:{kind}:{{{id}}}"))
}

/// Every conversation of `owner`, in `order`, page by page of `limit`,
/// each page after the last one's `last_id` until `has_more` is false.
async fn list_all(
    store: &dyn ConversationStore,
    owner: &str,
    limit: u32,
    order: ListOrder,
) -> Vec<Conversation> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(owner, &params(limit, Some(order.clone()), after.as_deref()))
            .await
            .unwrap();
        assert!(page.data.len() <= limit as usize);
        if page.has_more {
            assert_eq!(
                page.data.len(),
                limit as usize,
                "a page before others is full"
            );
        }
        all.extend(page.data);
        if !page.has_more {
            return all;
        }
        after = page.last_id;
    }
}

/// What a failure between the steps of a create or a delete leaves, written
/// by hand into `store` (under `namespace`, through `connection`): members
/// of an owner's set that name no conversation of the owner. Lists skip
/// them, fill their pages past them, and remove those that can no longer
/// come to life. And a conversation written by hand as the store has
/// always written them is read as it is.
async fn dangling_members(
    store: &RedisConversations,
    connection: &mut RedisConnection,
    namespace: &str,
) {
    let set = owner_key(namespace, LISTER);
    let mut created = Vec::new();
    for n in 0..6 {
        let meta = metadata(&[("n", &n.to_string())]);
        created.push(store.create(LISTER, Some(meta), Vec::new()).await.unwrap());
    }
    let mut members = Vec::new();
    for conversation in &created {
        let [key, ..] = conversation_keys(namespace, &conversation.id);
        let member: String = raw(connection, redis::cmd("HGET").arg(key).arg("sort_key")).await;
        assert_eq!(&member[20..], format!(":{}", conversation.id));
        members.push(member);
    }
    let score = |conversation: &Conversation| conversation.created_at;
    // A delete whose ZREM failed (or a create between its ZADD and its
    // script): the conversation's keys are gone, its member is young.
    for gone in [&created[1], &created[3]] {
        let () = raw(
            connection,
            redis::cmd("DEL").arg(&conversation_keys(namespace, &gone.id)),
        )
        .await;
    }
    // A create that drew an id another owner's conversation has, and whose
    // member could not be removed: it sits among the owner's.
    let theirs = store
        .create(OTHER, None, text(&[(Role::User, "theirs")]))
        .await
        .unwrap();
    let theirs_history = store.history(OTHER, &theirs.id, ALL).await.unwrap();
    let taken = format!("{}:{}", &members[2][..20], theirs.id);
    // A create that failed between its steps two hours ago, and one that
    // failed a moment ago (or is between them now).
    let old = format!("{:020}:conv_{}", 1, "0".repeat(24));
    let young = format!("{}:conv_{}", &members[4][..20], "f".repeat(24));
    let () = raw(
        connection,
        redis::cmd("ZADD")
            .arg(&set)
            .arg(score(&created[2]))
            .arg(&taken)
            .arg(now() - 7200)
            .arg(&old)
            .arg(score(&created[4]))
            .arg(&young),
    )
    .await;

    let live: Vec<Conversation> = [0, 2, 4, 5].map(|n| created[n].clone()).to_vec();
    let newest_first: Vec<Conversation> = live.iter().rev().cloned().collect();
    // Pages are full past every dangling member, and `has_more` says
    // whether a live one follows: after the oldest live one lies only the
    // old dangling member.
    let page = store
        .list(
            LISTER,
            &params(2, Some(ListOrder::Desc), Some(&created[4].id)),
        )
        .await
        .unwrap();
    assert_eq!(
        (page.data, page.has_more),
        (newest_first[2..].to_vec(), false)
    );
    let page = store
        .list(LISTER, &params(2, Some(ListOrder::Asc), None))
        .await
        .unwrap();
    assert_eq!((page.data, page.has_more), (live[..2].to_vec(), true));
    let page = store
        .list(
            LISTER,
            &params(2, Some(ListOrder::Asc), Some(&created[2].id)),
        )
        .await
        .unwrap();
    assert_eq!((page.data, page.has_more), (live[2..].to_vec(), false));
    for limit in 1..=5 {
        assert_eq!(
            list_all(store, LISTER, limit, ListOrder::Desc).await,
            newest_first
        );
        assert_eq!(list_all(store, LISTER, limit, ListOrder::Asc).await, live);
    }
    assert_eq!(
        store
            .list(LISTER, &ListParams::default())
            .await
            .unwrap()
            .data,
        newest_first
    );
    // A conversation that is gone is no cursor.
    unknown_cursor(
        store
            .list(LISTER, &params(2, None, Some(&created[1].id)))
            .await,
    );
    // The other owner's conversation is theirs alone, and as it was.
    assert_eq!(store.get(LISTER, &theirs.id).await.unwrap(), None);
    assert_eq!(
        store.get(OTHER, &theirs.id).await.unwrap(),
        Some(theirs.clone())
    );
    assert_eq!(
        store.history(OTHER, &theirs.id, ALL).await.unwrap(),
        theirs_history
    );
    assert_eq!(
        conversation_ids(&store.list(OTHER, &ListParams::default()).await.unwrap()),
        vec![theirs.id.clone()]
    );

    // The lists removed the member of another owner's conversation and the
    // old one; they kept the young ones, which a create between its steps
    // may yet bring to life.
    let left: BTreeSet<String> =
        raw(connection, redis::cmd("ZRANGE").arg(&set).arg(0).arg(-1)).await;
    let mut want: BTreeSet<String> = members.iter().cloned().collect();
    want.insert(young.clone());
    assert_eq!(left, want);
    // Once they are old, a list removes them too.
    let () = raw(
        connection,
        redis::cmd("ZADD")
            .arg(&set)
            .arg("XX")
            .arg(now() - 7200)
            .arg(&members[1])
            .arg(now() - 7200)
            .arg(&members[3])
            .arg(now() - 7200)
            .arg(&young),
    )
    .await;
    assert_eq!(
        store
            .list(LISTER, &ListParams::default())
            .await
            .unwrap()
            .data,
        newest_first
    );
    let left: BTreeSet<String> =
        raw(connection, redis::cmd("ZRANGE").arg(&set).arg(0).arg(-1)).await;
    let want: BTreeSet<String> = [0, 2, 4, 5].map(|n| members[n].clone()).into();
    assert_eq!(left, want);

    // A conversation as the store has always written it, here without the
    // count of bytes (which older versions did not keep), by hand.
    let id = "conv_0123456789abcdef01234567";
    let member = format!("{:020}:{id}", 3);
    let message = ConversationMessage::new(
        "msg_0123456789abcdef01234567",
        50,
        Role::User,
        "old".to_owned(),
    );
    let [conversation_key, messages_key, index_key] = conversation_keys(namespace, id);
    let () = raw(
        connection,
        redis::cmd("HSET")
            .arg(&conversation_key)
            .arg("owner")
            .arg(hex::encode(Sha256::digest(OWNER.as_bytes())))
            .arg("created_at")
            .arg(50)
            .arg("metadata")
            .arg(r#"{"k":"v"}"#)
            .arg("sort_key")
            .arg(&member),
    )
    .await;
    let () = raw(
        connection,
        redis::cmd("RPUSH")
            .arg(&messages_key)
            .arg(serde_json::to_string(&message).unwrap()),
    )
    .await;
    let () = raw(
        connection,
        redis::cmd("HSET").arg(&index_key).arg(&message.id).arg(0),
    )
    .await;
    let () = raw(
        connection,
        redis::cmd("ZADD")
            .arg(owner_key(namespace, OWNER))
            .arg(50)
            .arg(&member),
    )
    .await;
    let old_conversation = Conversation::new(id, 50, Some(metadata(&[("k", "v")])));
    let newer = store.create(OWNER, None, Vec::new()).await.unwrap();
    assert_eq!(
        store.get(OWNER, id).await.unwrap(),
        Some(old_conversation.clone())
    );
    assert_eq!(store.get(OTHER, id).await.unwrap(), None);
    assert_eq!(
        list_all(store, OWNER, 1, ListOrder::Asc).await,
        vec![old_conversation.clone(), newer.clone()]
    );
    let page = store
        .list(OWNER, &params(5, Some(ListOrder::Desc), Some(&newer.id)))
        .await
        .unwrap();
    assert_eq!(page.data, vec![old_conversation]);
    let mut history = vec![message];
    history.extend(
        store
            .append(OWNER, id, text(&[(Role::Assistant, "new")]))
            .await
            .unwrap()
            .unwrap(),
    );
    assert_eq!(store.history(OWNER, id, ALL).await.unwrap(), Some(history));
    assert!(store.delete(OWNER, id).await.unwrap());
    let left: Vec<String> = raw(
        connection,
        redis::cmd("ZRANGE")
            .arg(owner_key(namespace, OWNER))
            .arg(0)
            .arg(-1),
    )
    .await;
    assert_eq!(left.len(), 1);
    assert_eq!(
        conversation_ids(&store.list(OWNER, &ListParams::default()).await.unwrap()),
        vec![newer.id]
    );
}

#[tokio::test]
async fn redis_lists_skip_and_remove_dangling_members() {
    let Some(server) = RedisServer::start_or_skip("redis_lists_skip_dangling_members") else {
        return;
    };
    let store = redis_store(&server)
        .namespace("dangling")
        .connect()
        .await
        .unwrap();
    dangling_members(&store, &mut raw_connection(&server.url()), "dangling").await;
}

fn cluster_store(cluster: &RedisCluster) -> lumyx_server::RedisConversationsBuilder {
    let url: lumyx_redis::RedisUrl = cluster.urls().parse().unwrap();
    assert!(url.is_cluster());
    RedisConversations::builder(url)
}

#[tokio::test]
async fn redis_cluster_keeps_the_contract() {
    let Some(cluster) = RedisCluster::start_or_skip("redis_cluster_keeps_the_contract") else {
        return;
    };
    let store = cluster_store(&cluster).connect().await.unwrap();
    contract(&store).await;
    let store = cluster_store(&cluster)
        .namespace("dangling")
        .connect()
        .await
        .unwrap();
    dangling_members(&store, &mut raw_connection(&cluster.urls()), "dangling").await;
}

/// Ids a client may send that no conversation has: braces would put the
/// keys of one id in different cluster slots.
const CRAFTED_IDS: [&str; 5] = [
    "}",
    "{",
    "conv_{x}",
    "a}b{c}",
    "conv_0123456789ABCDEF01234567",
];

#[tokio::test]
async fn redis_cluster_answers_crafted_ids_as_no_conversation() {
    let Some(cluster) = RedisCluster::start_or_skip("redis_cluster_crafted_ids") else {
        return;
    };
    let store = cluster_store(&cluster).connect().await.unwrap();
    for id in CRAFTED_IDS {
        assert_eq!(store.get(OWNER, id).await.unwrap(), None, "{id}");
        assert_eq!(
            store.update(OWNER, id, metadata(&[])).await.unwrap(),
            None,
            "{id}"
        );
        assert!(!store.delete(OWNER, id).await.unwrap(), "{id}");
        let appended = store.append(OWNER, id, text(&[(Role::User, "x")])).await;
        assert_eq!(appended.unwrap(), None, "{id}");
        let page = store.messages(OWNER, id, &params(2, None, None)).await;
        assert_eq!(page.unwrap(), None, "{id}");
        assert_eq!(store.history(OWNER, id, 2).await.unwrap(), None, "{id}");
        unknown_cursor(store.list(OWNER, &params(2, None, Some(id))).await);
    }
}

/// Whether the node `node` of `cluster` holds `key` itself (a node asked
/// for a key of a slot it does not serve answers `MOVED`, an error).
async fn node_holds(cluster: &RedisCluster, node: usize, key: &str) -> bool {
    let client = redis::Client::open(cluster.nodes()[node].url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<bool>(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn redis_cluster_spreads_conversations_over_every_master() {
    let Some(cluster) = RedisCluster::start_or_skip("redis_cluster_spreads_conversations") else {
        return;
    };
    let store = cluster_store(&cluster).connect().await.unwrap();
    let namespace = RedisConversations::DEFAULT_NAMESPACE;
    let owners = [OWNER, OTHER, LISTER];
    // Created in turns, so that each owner's conversations are not
    // consecutive in the creation sequence.
    let mut created: BTreeMap<&str, Vec<Conversation>> = BTreeMap::new();
    for n in 0..15 {
        for owner in owners {
            let meta = metadata(&[("n", &n.to_string())]);
            let conversation = store
                .create(owner, Some(meta), text(&[(Role::User, "Hello")]))
                .await
                .unwrap();
            created.entry(owner).or_default().push(conversation);
        }
    }

    // Each conversation's keys are on the master of its slot; the
    // conversations are on every master, and each owner's on more than the
    // master of its set.
    let mut masters = BTreeSet::new();
    for owner in owners {
        let set = owner_key(namespace, owner);
        let set_master = cluster.master_of(&set);
        assert!(node_holds(&cluster, set_master, &set).await);
        let mut owner_masters = BTreeSet::new();
        for conversation in &created[owner] {
            let keys = conversation_keys(namespace, &conversation.id);
            let master = cluster.master_of(&keys[0]);
            for key in &keys {
                assert_eq!(cluster.master_of(key), master, "{key}");
                assert!(node_holds(&cluster, master, key).await, "{key}");
            }
            owner_masters.insert(master);
        }
        assert!(
            owner_masters.iter().any(|master| *master != set_master),
            "15 conversations of {owner} all on the master of its set"
        );
        masters.extend(owner_masters);
    }
    assert_eq!(masters.len(), 3, "45 conversations land on every master");

    // Each owner lists its own, whole and page by page, both ways.
    for owner in owners {
        let oldest_first = &created[owner];
        let newest_first: Vec<Conversation> = oldest_first.iter().rev().cloned().collect();
        assert_eq!(
            store
                .list(owner, &params(100, None, None))
                .await
                .unwrap()
                .data,
            newest_first
        );
        for limit in [1, 4, 15] {
            assert_eq!(
                list_all(&store, owner, limit, ListOrder::Desc).await,
                newest_first
            );
            assert_eq!(
                &list_all(&store, owner, limit, ListOrder::Asc).await,
                oldest_first
            );
        }
    }

    // Every third is deleted, by its owner only; its keys leave its master.
    for owner in owners {
        for conversation in created[owner].iter().step_by(3) {
            for other in owners.iter().filter(|other| **other != owner) {
                assert!(!store.delete(other, &conversation.id).await.unwrap());
            }
            assert!(store.delete(owner, &conversation.id).await.unwrap());
            let keys = conversation_keys(namespace, &conversation.id);
            let master = cluster.master_of(&keys[0]);
            for key in &keys {
                assert!(!node_holds(&cluster, master, key).await, "{key}");
            }
        }
    }
    let mut connection = raw_connection(&cluster.urls());
    for owner in owners {
        let left: Vec<Conversation> = created[owner]
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 3 != 0)
            .map(|(_, conversation)| conversation.clone())
            .collect();
        assert_eq!(list_all(&store, owner, 4, ListOrder::Asc).await, left);
        let newest_first: Vec<Conversation> = left.iter().rev().cloned().collect();
        assert_eq!(
            store
                .list(owner, &params(100, None, None))
                .await
                .unwrap()
                .data,
            newest_first
        );
        let members: usize = raw(
            &mut connection,
            redis::cmd("ZCARD").arg(owner_key(namespace, owner)),
        )
        .await;
        assert_eq!(members, left.len(), "the deletes removed their members");
    }
}

/// Calls until one answers, for at most 10 s: the connection is remade in
/// the background after an outage.
async fn once_back(store: &RedisConversations) -> Conversation {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.create(OWNER, None, Vec::new()).await {
            Ok(conversation) => return conversation,
            Err(err) => {
                assert!(
                    matches!(err, StoreError::Unavailable(_)),
                    "while Redis comes back: {err:?}"
                );
                assert!(Instant::now() < deadline, "Redis did not come back: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Asserts that a call fails as unavailable, within the timeout (and a
/// margin for a slow machine).
async fn assert_unavailable(store: &RedisConversations, timeout: Duration) {
    let started = Instant::now();
    let result = store.get(OWNER, "conv_0123456789abcdef01234567").await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    assert!(
        took <= timeout + Duration::from_millis(250),
        "took {took:?}, timeout {timeout:?}"
    );
    let started = Instant::now();
    let result = store.create(OWNER, None, text(&[(Role::User, "x")])).await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    assert!(started.elapsed() <= timeout + Duration::from_millis(250));
}

#[tokio::test]
async fn redis_down_is_unavailable_until_it_is_back() {
    let Some(mut server) = RedisServer::start_or_skip("redis_down_is_unavailable") else {
        return;
    };
    let timeout = Duration::from_millis(300);

    // Down at start: the store is still made, and its calls fail.
    server.stop();
    let store = redis_store(&server)
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    assert_unavailable(&store, timeout).await;

    server.restart().unwrap();
    let conversation = once_back(&store).await;
    assert_eq!(
        store.get(OWNER, &conversation.id).await.unwrap(),
        Some(conversation)
    );

    // Down while in use, then back (with an empty data set).
    server.stop();
    assert_unavailable(&store, timeout).await;
    server.restart().unwrap();
    let conversation = once_back(&store).await;
    assert_eq!(
        store.get(OWNER, &conversation.id).await.unwrap(),
        Some(conversation)
    );
}

#[tokio::test]
async fn a_redis_that_does_not_answer_times_out() {
    let Some(server) = RedisServer::start_with_args_or_skip(
        "a_redis_that_does_not_answer_times_out",
        &["--enable-debug-command", "yes"],
    ) else {
        return;
    };
    let timeout = Duration::from_millis(300);
    let store = redis_store(&server)
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    let conversation = store.create(OWNER, None, Vec::new()).await.unwrap();

    // Another client makes the server sleep for 2 s, and waits for it.
    let client = redis::Client::open(server.url()).unwrap();
    let patient = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    let mut blocker = client
        .get_multiplexed_async_connection_with_config(&patient)
        .await
        .unwrap();
    let sleeping = tokio::spawn(async move {
        redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(2)
            .query_async::<()>(&mut blocker)
            .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let result = store.get(OWNER, &conversation.id).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "expected Unavailable, got {result:?}"
    );
    assert!(took >= timeout - Duration::from_millis(20), "took {took:?}");
    assert!(
        took <= timeout + Duration::from_millis(250),
        "took {took:?}"
    );
    sleeping.await.unwrap().unwrap();
    once_back(&store).await;
    assert!(store.get(OWNER, &conversation.id).await.unwrap().is_some());
}

/// Asserts that `result` is [`StoreError::Corrupt`], names the conversation
/// `id`, and shows nothing of `secret`.
fn corrupt_without<T: std::fmt::Debug>(result: Result<T, StoreError>, id: &str, secret: &str) {
    match result {
        Err(err @ StoreError::Corrupt(_)) => {
            let shown = format!("{err} {err:?}");
            assert!(shown.contains(id), "{shown}");
            assert!(!shown.contains(secret), "{shown}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_data_it_cannot_read_is_corrupt() {
    let Some(server) = RedisServer::start_or_skip("redis_data_it_cannot_read_is_corrupt") else {
        return;
    };
    let store = redis_store(&server)
        .namespace("ns")
        .connect()
        .await
        .unwrap();
    let conversation = store
        .create(OWNER, None, text(&[(Role::User, "Hello")]))
        .await
        .unwrap();
    let id = &conversation.id;
    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();

    let conversation_key = format!("ns:c:{{{id}}}");
    let messages_key = format!("ns:m:{{{id}}}");
    let field = |field: &str| {
        redis::cmd("HGET")
            .arg(&conversation_key)
            .arg(field)
            .to_owned()
    };
    let set = |field: &str, value: &str| {
        redis::cmd("HSET")
            .arg(&conversation_key)
            .arg(field)
            .arg(value)
            .to_owned()
    };
    // The running count of content bytes.
    let bytes: String = field("bytes").query_async(&mut connection).await.unwrap();
    assert_eq!(bytes, "5");

    // What is stored is the clients' text: errors say what and where, but
    // not the text (which serde_json's own message would quote).
    set("metadata", "\"sk-SECRET-metadata\"")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    corrupt_without(
        store.list(OWNER, &ListParams::default()).await,
        id,
        "SECRET",
    );
    set("metadata", "not json SECRET")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    set("metadata", "null")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    set("created_at", "sk-SECRET-created")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    corrupt_without(store.get(OWNER, id).await, id, "SECRET");
    corrupt_without(
        store.update(OWNER, id, metadata(&[("k", "v")])).await,
        id,
        "SECRET",
    );
    set("created_at", &conversation.created_at.to_string())
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    assert!(store.get(OWNER, id).await.unwrap().is_some());

    let message = r#"{"id":"msg_1","object":"conversation.message","created_at":"sk-SECRET-message","role":"user","content":"SECRET"}"#;
    for broken in [message, "{\"id\":\"SECRET"] {
        redis::cmd("RPUSH")
            .arg(&messages_key)
            .arg(broken)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
        let result = store.history(OWNER, id, ALL).await;
        assert!(
            format!("{result:?}").contains("message 1 of the 2"),
            "{result:?}"
        );
        corrupt_without(result, id, "SECRET");
        corrupt_without(store.history(OWNER, id, 1).await, id, "SECRET");
        corrupt_without(
            store.messages(OWNER, id, &ListParams::default()).await,
            id,
            "SECRET",
        );
        // Only what is read is parsed.
        assert_eq!(
            contents(&store.history(OWNER, id, 0).await.unwrap().unwrap()),
            Vec::new()
        );
        redis::cmd("RPOP")
            .arg(&messages_key)
            .query_async::<()>(&mut connection)
            .await
            .unwrap();
    }
    let history = store.history(OWNER, id, ALL).await.unwrap().unwrap();
    assert_eq!(contents(&history), text(&[(Role::User, "Hello")]));

    // A byte count that is no count: the append is refused, nothing added.
    set("bytes", "SECRET")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    corrupt_without(
        store.append(OWNER, id, text(&[(Role::User, "more")])).await,
        id,
        "SECRET",
    );
    assert_eq!(store.history(OWNER, id, ALL).await.unwrap(), Some(history));
    // A conversation written before the count was kept counts as 0.
    redis::cmd("HDEL")
        .arg(&conversation_key)
        .arg("bytes")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    store
        .append(OWNER, id, text(&[(Role::Assistant, "Hi")]))
        .await
        .unwrap()
        .unwrap();
    let bytes: String = field("bytes").query_async(&mut connection).await.unwrap();
    assert_eq!(bytes, "2");

    // A key of the wrong type is Redis refusing the call: corrupt, not down.
    redis::cmd("DEL")
        .arg(format!("ns:m:{{{id}}}"))
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    redis::cmd("SET")
        .arg(format!("ns:m:{{{id}}}"))
        .arg("a string")
        .query_async::<()>(&mut connection)
        .await
        .unwrap();
    let result = store.history(OWNER, id, ALL).await;
    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
}
