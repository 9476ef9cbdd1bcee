//! `RedisKeyStore` against a real `redis-server` on a loopback port.
#![cfg(feature = "redis")]

mod common;

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use lumyx_keys::{
    ApiKey, Error, KeyChange, KeyChanges, KeyStore, RedisKeyStore, RedisUrl, Verification, verify,
};
use lumyx_redis::{FailureClass, RedisFailure};
use lumyx_test_support::RedisServer;

use common::{at, exercise_extreme_times, exercise_store, exercise_time_bounds, record};

fn url_of(server: &RedisServer) -> RedisUrl {
    server.url().parse().unwrap()
}

/// A store on `server` with the defaults.
async fn store_on(server: &RedisServer) -> RedisKeyStore {
    RedisKeyStore::builder(url_of(server))
        .connect()
        .await
        .unwrap()
}

/// Asks `store` until it answers, while a restarted server comes back.
async fn verify_once_back(store: &RedisKeyStore, key: &ApiKey) -> Verification {
    let mut answer = verify(store, key.as_key_ref(), at(1)).await;
    for _ in 0..50 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = verify(store, key.as_key_ref(), at(1)).await;
    }
    answer.unwrap()
}

/// Asks `changes` until it answers, while a restarted server comes back.
async fn next_once_back(changes: &mut KeyChanges) -> KeyChange {
    let wait = Duration::from_millis(100);
    let mut answer = changes.next(wait).await;
    for _ in 0..50 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        answer = changes.next(wait).await;
    }
    answer.unwrap()
}

/// A key inserted, then updated until `changes` writes of it are logged.
async fn busy_key(store: &RedisKeyStore, changes: usize) -> ApiKey {
    let key = ApiKey::generate().unwrap();
    store.insert(record(&key, "busy", at(0))).await.unwrap();
    for _ in 1..changes {
        assert!(store.update(record(&key, "busy", at(0))).await.unwrap());
    }
    key
}

/// What `changes` answers without waiting.
async fn next_now(changes: &mut KeyChanges) -> KeyChange {
    changes.next(Duration::ZERO).await.unwrap()
}

/// Runs `write` while `changes` follows the log in a task of its own, and
/// answers the follower, the first answer it had that was not an empty
/// `Changed`, and how long after the write started it had it.
async fn seen_after<T: Debug>(
    mut changes: KeyChanges,
    write: impl Future<Output = Result<T, Error>>,
) -> (KeyChanges, KeyChange, Duration) {
    let follower = tokio::spawn(async move {
        loop {
            let wait = changes.max_wait();
            match changes.next(wait).await.unwrap() {
                KeyChange::Changed(ids) if ids.is_empty() => {}
                change => return (changes, change, Instant::now()),
            }
        }
    });
    // Let the follower start waiting in `XREAD BLOCK`.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    write.await.unwrap();
    let (changes, change, seen) = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("the follower answers")
        .unwrap();
    (changes, change, seen.saturating_duration_since(started))
}

#[tokio::test]
async fn redis_store_keeps_the_store_contract() {
    let Some(server) = RedisServer::start_or_skip("redis_store_keeps_the_store_contract") else {
        return;
    };
    let store = store_on(&server).await;
    exercise_store(&store).await;
}

/// Issue 7: a record expiring in year 10000 was written as
/// `+10000-01-01T…Z`, which the store could not read back, so `list()`
/// failed for the whole store.
#[tokio::test]
async fn redis_store_keeps_times_up_to_the_bound_and_refuses_later_ones() {
    let Some(server) = RedisServer::start_or_skip("redis_store_keeps_times_up_to_the_bound") else {
        return;
    };
    exercise_time_bounds(&store_on(&server).await).await;
}

#[tokio::test]
async fn redis_store_keeps_extreme_times_exactly_and_in_order() {
    let Some(server) = RedisServer::start_or_skip("redis_store_keeps_extreme_times") else {
        return;
    };
    exercise_extreme_times(&store_on(&server).await).await;
}

#[tokio::test]
async fn revocation_is_seen_by_every_instance_at_once() {
    let Some(server) = RedisServer::start_or_skip("revocation_is_seen_by_every_instance_at_once")
    else {
        return;
    };
    // Two server instances, each with its own connection.
    let first = store_on(&server).await;
    let second = store_on(&server).await;
    let key = ApiKey::generate().unwrap();
    first.insert(record(&key, "shared", at(0))).await.unwrap();
    assert!(
        verify(&second, key.as_key_ref(), at(1))
            .await
            .unwrap()
            .valid_record()
            .is_some()
    );

    second.revoke(&key.id(), at(1)).await.unwrap().unwrap();
    assert!(matches!(
        verify(&first, key.as_key_ref(), at(1)).await.unwrap(),
        Verification::Revoked(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sees_every_write_of_another_instance_within_a_second() {
    let Some(server) = RedisServer::start_or_skip("a_follower_sees_every_write") else {
        return;
    };
    // Two server instances, each with its own connection; the second keeps
    // a copy of the records and follows the changes.
    let writer = store_on(&server).await;
    let reader = store_on(&server).await;
    let changes = reader.changes().await.unwrap();
    assert!(reader.list().await.unwrap().is_empty());
    let key = ApiKey::generate().unwrap();
    let id = key.id();
    let second = Duration::from_secs(1);

    let (changes, change, latency) =
        seen_after(changes, writer.insert(record(&key, "first", at(0)))).await;
    eprintln!("insert seen after {latency:?}");
    assert_eq!(change, KeyChange::Changed(vec![id]));
    assert!(latency < second, "{latency:?}");
    let found = reader.find_by_id(&id).await.unwrap().unwrap();
    assert_eq!(found.name, "first");

    let (changes, change, latency) =
        seen_after(changes, writer.update(record(&key, "renamed", at(0)))).await;
    eprintln!("update seen after {latency:?}");
    assert_eq!(change, KeyChange::Changed(vec![id]));
    assert!(latency < second, "{latency:?}");
    let found = reader.find_by_id(&id).await.unwrap().unwrap();
    assert_eq!(found.name, "renamed");

    let (_, change, latency) = seen_after(changes, writer.revoke(&id, at(1))).await;
    eprintln!("revoke seen after {latency:?}");
    assert_eq!(change, KeyChange::Changed(vec![id]));
    assert!(latency < second, "{latency:?}");
    let found = reader.find_by_id(&id).await.unwrap().unwrap();
    assert_eq!(found.revoked_at, Some(at(1)));
}

#[tokio::test]
async fn a_follower_answers_ids_in_write_order_a_bounded_batch_at_a_time() {
    let Some(server) = RedisServer::start_or_skip("a_follower_answers_ids_in_order") else {
        return;
    };
    let store = store_on(&server).await;
    let mut changes = store.changes().await.unwrap();
    let keys: Vec<ApiKey> = (0..3).map(|_| ApiKey::generate().unwrap()).collect();
    for key in &keys {
        store.insert(record(key, "k", at(0))).await.unwrap();
    }
    store.revoke(&keys[0].id(), at(1)).await.unwrap().unwrap();
    let order = vec![keys[0].id(), keys[1].id(), keys[2].id(), keys[0].id()];
    assert_eq!(next_now(&mut changes).await, KeyChange::Changed(order));

    // More changes than one answer holds: the rest come next, none lost.
    for _ in 0..KeyChanges::MAX_IDS + 5 {
        assert!(store.update(record(&keys[1], "k", at(0))).await.unwrap());
    }
    let first = next_now(&mut changes).await;
    assert_eq!(
        first,
        KeyChange::Changed(vec![keys[1].id(); KeyChanges::MAX_IDS])
    );
    let rest = next_now(&mut changes).await;
    assert_eq!(rest, KeyChange::Changed(vec![keys[1].id(); 5]));
}

#[tokio::test]
async fn a_follower_with_nothing_new_answers_no_ids_after_the_wait() {
    let Some(server) = RedisServer::start_or_skip("a_follower_with_nothing_new") else {
        return;
    };
    let store = store_on(&server).await;
    let mut changes = store.changes().await.unwrap();
    assert_eq!(changes.max_wait(), RedisKeyStore::DEFAULT_TIMEOUT / 2);
    // A wait longer than the longest is cut to it, not an error.
    for wait in [Duration::from_millis(300), Duration::from_secs(10)] {
        let expected = wait.min(changes.max_wait());
        let started = Instant::now();
        let answer = changes.next(wait).await.unwrap();
        let waited = started.elapsed();
        assert_eq!(answer, KeyChange::Changed(Vec::new()));
        assert!(waited >= expected, "{waited:?} for {wait:?}");
        // Redis ends a blocking read on its cron, every 100 ms by default
        // (`hz 10`), so the answer may come that much after the wait.
        assert!(
            waited < expected + Duration::from_millis(300),
            "{waited:?} for {wait:?}"
        );
    }
    // No wait at all answers at once.
    let started = Instant::now();
    let answer = next_now(&mut changes).await;
    assert_eq!(answer, KeyChange::Changed(Vec::new()));
    assert!(started.elapsed() < Duration::from_millis(100));
}

#[tokio::test]
async fn a_follower_that_falls_behind_the_log_is_told_and_goes_on_from_the_newest() {
    let Some(server) = RedisServer::start_or_skip("a_follower_that_falls_behind") else {
        return;
    };
    let store = RedisKeyStore::builder(url_of(&server))
        .change_log_len(10)
        .connect()
        .await
        .unwrap();
    let mut changes = store.changes().await.unwrap();
    let key = busy_key(&store, 300).await;
    assert_eq!(next_now(&mut changes).await, KeyChange::Lost);

    // Positioned at the newest change: nothing new, then the next write.
    assert_eq!(next_now(&mut changes).await, KeyChange::Changed(Vec::new()));
    store.revoke(&key.id(), at(1)).await.unwrap().unwrap();
    assert_eq!(
        next_now(&mut changes).await,
        KeyChange::Changed(vec![key.id()])
    );

    // A log trimmed to nothing by hand, with a change the follower had not
    // read: the counter moved, no entry is left, so it is a gap too.
    store.revoke(&key.id(), at(0)).await.unwrap().unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let trimmed: u64 = redis::cmd("XTRIM")
        .arg("{lumyx:keys}:changes")
        .arg("MAXLEN")
        .arg(0)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(trimmed > 0);
    assert_eq!(next_now(&mut changes).await, KeyChange::Lost);
    assert_eq!(next_now(&mut changes).await, KeyChange::Changed(Vec::new()));
}

#[tokio::test]
async fn a_follower_of_a_stopped_server_errs_and_after_a_restart_says_it_lost_changes() {
    let Some(mut server) = RedisServer::start_or_skip("a_follower_of_a_stopped_server") else {
        return;
    };
    let store = store_on(&server).await;
    let mut changes = store.changes().await.unwrap();
    let key = ApiKey::generate().unwrap();
    store.insert(record(&key, "before", at(0))).await.unwrap();
    assert_eq!(
        next_now(&mut changes).await,
        KeyChange::Changed(vec![key.id()])
    );
    let no_hang = RedisKeyStore::DEFAULT_TIMEOUT + Duration::from_millis(500);

    // Stopped while the follower waits.
    let waiting = tokio::spawn(async move {
        let started = Instant::now();
        let wait = changes.max_wait();
        let answer = changes.next(wait).await;
        (changes, answer, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop();
    let (mut changes, answer, took) = waiting.await.unwrap();
    assert!(matches!(answer, Err(Error::Store(_))), "{answer:?}");
    assert!(took < no_hang, "{took:?}");

    // Called while it is down.
    let started = Instant::now();
    let answer = changes.next(Duration::from_millis(300)).await;
    assert!(matches!(answer, Err(Error::Store(_))), "{answer:?}");
    assert!(started.elapsed() < no_hang, "{:?}", started.elapsed());

    // Back, but empty: the change seen before is gone, a gap.
    server.restart().unwrap();
    assert_eq!(next_once_back(&mut changes).await, KeyChange::Lost);
    assert_eq!(verify_once_back(&store, &key).await, Verification::Unknown);
    let after = ApiKey::generate().unwrap();
    store.insert(record(&after, "after", at(0))).await.unwrap();
    assert_eq!(
        next_now(&mut changes).await,
        KeyChange::Changed(vec![after.id()])
    );
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang_or_panic() {
    let Some(mut server) = RedisServer::start_or_skip("an_unreachable_server_is_an_error") else {
        return;
    };
    let store = store_on(&server).await;
    let key = ApiKey::generate().unwrap();
    store.insert(record(&key, "k", at(0))).await.unwrap();

    server.stop();
    let outcome = verify(&store, key.as_key_ref(), at(1)).await;
    // The cause is kept, with its class.
    let Err(Error::Store(cause)) = outcome else {
        panic!("{outcome:?}");
    };
    let failure = cause
        .downcast_ref::<RedisFailure>()
        .expect("a Redis store's cause is a RedisFailure");
    assert_eq!(failure.class(), FailureClass::Unreachable, "{failure}");

    // Back up (empty): the same store reconnects and answers again.
    server.restart().unwrap();
    assert_eq!(verify_once_back(&store, &key).await, Verification::Unknown);
}

#[tokio::test]
async fn connect_does_not_contact_redis_so_a_service_starts_while_it_is_down() {
    let Some(mut server) = RedisServer::start_or_skip("connect_does_not_contact_redis") else {
        return;
    };
    server.stop();
    let store = RedisKeyStore::builder(url_of(&server))
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .expect("building the store needs no server");
    let key = ApiKey::generate().unwrap();
    let outcome = verify(&store, key.as_key_ref(), at(1)).await;
    assert!(matches!(outcome, Err(Error::Store(_))), "{outcome:?}");
    let outcome = store.changes().await;
    assert!(matches!(outcome, Err(Error::Store(_))), "{outcome:?}");

    // The first call once Redis is up connects.
    server.restart().unwrap();
    assert_eq!(verify_once_back(&store, &key).await, Verification::Unknown);
    store.insert(record(&key, "late", at(0))).await.unwrap();
    assert!(
        verify(&store, key.as_key_ref(), at(1))
            .await
            .unwrap()
            .valid_record()
            .is_some()
    );
}

#[tokio::test]
async fn a_silent_server_is_an_error_within_the_timeout() {
    // Accepts connections (the kernel does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url: RedisUrl = format!("redis://{}/", silent.local_addr().unwrap())
        .parse()
        .unwrap();
    let timeout = Duration::from_millis(150);
    let store = RedisKeyStore::builder(url)
        .timeout(timeout)
        .connect()
        .await
        .unwrap();
    let key = ApiKey::generate().unwrap();
    let started = Instant::now();
    let outcome = verify(&store, key.as_key_ref(), at(1)).await;
    let waited = started.elapsed();
    assert!(matches!(outcome, Err(Error::Store(_))), "{outcome:?}");
    // Well below the default of 1 s: the builder's timeout is the one used.
    assert!(waited >= timeout, "{waited:?}");
    assert!(waited < RedisKeyStore::DEFAULT_TIMEOUT, "{waited:?}");
}

#[tokio::test]
async fn debug_never_shows_the_password() {
    let Some(server) = RedisServer::start_with_args_or_skip(
        "debug_never_shows_the_password",
        &["--requirepass", "s3cret-pw"],
    ) else {
        return;
    };
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let url: RedisUrl = format!("redis://:s3cret-pw@127.0.0.1:{port}/")
        .parse()
        .unwrap();
    let builder = RedisKeyStore::builder(url).namespace("tenant-a");
    let shown = format!("{builder:?} {builder:#?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(shown.contains(":***@127.0.0.1"), "{shown}");

    let store = builder.connect().await.unwrap();
    let shown = format!("{store:?} {store:#?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains(":***@127.0.0.1") && shown.contains("tenant-a"),
        "{shown}"
    );
    // The follower, which has its own connection, too.
    let changes = store.changes().await.unwrap();
    let shown = format!("{changes:?} {changes:#?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(
        shown.contains(":***@127.0.0.1") && shown.contains("{tenant-a}:changes"),
        "{shown}"
    );

    // The password is used, though: the store works on a server that needs it.
    let key = ApiKey::generate().unwrap();
    store
        .insert(record(&key, "authenticated", at(0)))
        .await
        .unwrap();
    assert!(store.find_by_id(&key.id()).await.unwrap().is_some());
    // And refused without it, with an error that does not show it either.
    let anonymous = store_on(&server).await;
    let refused = anonymous.find_by_id(&key.id()).await.unwrap_err();
    assert!(!format!("{refused} {refused:?}").contains("s3cret-pw"));
}

#[tokio::test]
async fn records_are_hashes_in_the_slot_of_their_id_without_the_key() {
    let Some(server) = RedisServer::start_or_skip("records_are_hashes_keyed_by_digest") else {
        return;
    };
    let store = store_on(&server).await;
    let key = ApiKey::generate().unwrap();
    store.insert(record(&key, "layout", at(0))).await.unwrap();

    let client = redis::Client::open(server.url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let mut names: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    names.sort();
    // The record in the slot of its id, which the key's limiter state
    // shares (`lumyx:rl:{<id>}`); the index and the change log in the
    // namespace's.
    let record_key = format!("lumyx:keys:record:{{{}}}", key.id());
    assert_eq!(store.record_key(&key.id()), record_key);
    assert_eq!(
        names,
        vec![
            record_key.clone(),
            "{lumyx:keys}:changes".to_owned(),
            "{lumyx:keys}:changes:seq".to_owned(),
            "{lumyx:keys}:index".to_owned(),
        ]
    );

    let index: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg("{lumyx:keys}:index")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(index, vec![(key.id().to_string(), key.digest().to_hex())]);
    let fields: Vec<(String, String)> = redis::cmd("HGETALL")
        .arg(&record_key)
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        fields
            .iter()
            .any(|(name, value)| name == "hint" && *value == key.hint().to_string())
    );
    // Times are integers, seconds and nanoseconds; absent ones have no fields.
    let field = |wanted: &str| {
        fields
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let created = at(0).timestamp().to_string();
    assert_eq!(field("created_at_secs"), Some(created.as_str()));
    assert_eq!(field("created_at_nanos"), Some("0"));
    for absent in [
        "expires_at_secs",
        "expires_at_nanos",
        "revoked_at_secs",
        "revoked_at_nanos",
    ] {
        assert_eq!(field(absent), None, "{absent}");
    }
    for (name, value) in &fields {
        assert!(
            !value.contains(&key.expose_secret()[5..]),
            "field {name} holds the key"
        );
    }
}

/// The change log's entries, oldest first, as (seq, id) text.
async fn change_log(connection: &mut redis::aio::MultiplexedConnection) -> Vec<(String, String)> {
    let entries: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
        .arg("{lumyx:keys}:changes")
        .arg("-")
        .arg("+")
        .query_async(connection)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, mut fields)| {
            assert_eq!(fields.len(), 2, "{fields:?}");
            (fields.remove("seq").unwrap(), fields.remove("id").unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_write_that_changes_a_record_is_logged_once_with_the_next_number() {
    let Some(server) = RedisServer::start_or_skip("every_write_is_logged_once") else {
        return;
    };
    let store = store_on(&server).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let key = ApiKey::generate().unwrap();
    let id = key.id().to_string();

    store.insert(record(&key, "logged", at(0))).await.unwrap();
    assert!(store.update(record(&key, "renamed", at(0))).await.unwrap());
    store.revoke(&key.id(), at(1)).await.unwrap().unwrap();
    // A revocation that keeps an earlier time is still a write: logged too.
    store.revoke(&key.id(), at(2)).await.unwrap().unwrap();
    let expected: Vec<(String, String)> =
        (1..=4).map(|seq| (seq.to_string(), id.clone())).collect();
    assert_eq!(change_log(&mut raw).await, expected);

    // Writes that change nothing log nothing.
    let stranger = ApiKey::generate().unwrap();
    assert!(store.insert(record(&key, "again", at(0))).await.is_err());
    assert!(!store.update(record(&stranger, "x", at(0))).await.unwrap());
    assert_eq!(store.revoke(&stranger.id(), at(1)).await.unwrap(), None);
    assert_eq!(change_log(&mut raw).await, expected);
    let counter: u64 = redis::cmd("GET")
        .arg("{lumyx:keys}:changes:seq")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(counter, 4);
}

#[tokio::test]
async fn the_change_log_is_capped_at_about_its_length() {
    let Some(server) = RedisServer::start_or_skip("the_change_log_is_capped") else {
        return;
    };
    let store = RedisKeyStore::builder(url_of(&server))
        .change_log_len(10)
        .connect()
        .await
        .unwrap();
    busy_key(&store, 400).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let log = change_log(&mut raw).await;
    // `MAXLEN ~` trims whole blocks of entries (100 by default): at least
    // the length is kept, and well under the 400 writes.
    assert!((10..=200).contains(&log.len()), "{}", log.len());
    assert_eq!(log.last().unwrap().0, "400");
}

#[tokio::test]
async fn a_namespace_must_be_a_usable_hash_tag() {
    let Some(server) = RedisServer::start_or_skip("a_namespace_must_be_a_usable_hash_tag") else {
        return;
    };
    for bad in ["", "a{b", "x}"] {
        let refused = RedisKeyStore::builder(url_of(&server))
            .namespace(bad)
            .connect()
            .await;
        match refused {
            Err(Error::Config { setting, got, .. }) => {
                assert_eq!((setting, got.as_str()), ("Redis namespace", bad));
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // Two namespaces on one server are two separate stores.
    let tenant = |namespace| {
        RedisKeyStore::builder(url_of(&server))
            .namespace(namespace)
            .connect()
    };
    let tenant_a = tenant("tenant-a").await.unwrap();
    let tenant_b = tenant("tenant-b").await.unwrap();
    let key = ApiKey::generate().unwrap();
    tenant_a.insert(record(&key, "a", at(0))).await.unwrap();
    assert!(
        tenant_a
            .find_by_digest(&key.digest())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(tenant_b.find_by_digest(&key.digest()).await.unwrap(), None);
    assert!(tenant_b.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_corrupt_stored_record_is_an_error_naming_the_field() {
    use std::error::Error as _;
    let Some(server) = RedisServer::start_or_skip("a_corrupt_stored_record") else {
        return;
    };
    let store = store_on(&server).await;
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let other = ApiKey::generate().unwrap();
    // (field, stored text or None to delete it, what the cause says)
    let cases = [
        (
            "daily_limit",
            Some("0"),
            Some("daily_limit must be in 1..=10000, got 0"),
        ),
        ("rate_limit_per_minute", Some("lots"), Some("invalid digit")),
        ("scopes", Some("chat,admin"), Some("invalid scope")),
        ("hint", Some("nova_0000"), Some("invalid key hint")),
        ("owner", None, None),
        ("created_at_secs", Some("yesterday"), Some("invalid digit")),
        ("created_at_nanos", None, None),
        // One second after 9999-12-31T23:59:59Z, and one before year 0.
        ("created_at_secs", Some("253402300800"), None),
        ("expires_at_secs", Some("-62167219201"), None),
        // Only a leap second has more than 10^9 nanoseconds.
        ("expires_at_nanos", Some("1000000000"), None),
        ("revoked_at_nanos", Some("-1"), Some("invalid digit")),
        (
            "id",
            Some(&other.id().to_string()),
            Some("does not match its digest"),
        ),
    ];
    for (field, stored, cause) in cases {
        let key = ApiKey::generate().unwrap();
        let stored_record = record(&key, field, at(0)).with_expiry(at(20));
        store.insert(stored_record).await.unwrap();
        store.revoke(&key.id(), at(10)).await.unwrap().unwrap();
        let record_key = store.record_key(&key.id());
        let command = match stored {
            Some(text) => redis::cmd("HSET")
                .arg(&record_key)
                .arg(field)
                .arg(text)
                .clone(),
            None => redis::cmd("HDEL").arg(&record_key).arg(field).clone(),
        };
        let _: i64 = command.query_async(&mut raw).await.unwrap();

        let by_digest = store.find_by_digest(&key.digest()).await.unwrap_err();
        let by_id = store.find_by_id(&key.id()).await.unwrap_err();
        let listed = store.list().await.unwrap_err();
        for err in [by_digest, by_id, listed] {
            match &err {
                Error::Corrupt { field: named, .. } => assert_eq!(*named, field, "{err}"),
                other => panic!("{field}: {other:?}"),
            }
            let message = err.to_string();
            assert!(
                message.starts_with(&format!(
                    "a stored key record is corrupt: its `{field}` field is missing or not"
                )),
                "{message}"
            );
            match (cause, err.source()) {
                (Some(expected), Some(source)) => {
                    assert!(source.to_string().contains(expected), "{field}: {source}")
                }
                (None, None) => {}
                (expected, source) => {
                    panic!("{field}: expected cause {expected:?}, got {source:?}")
                }
            }
        }
        // Other keys are not affected; the store is left clean for the next case.
        let _: i64 = redis::cmd("DEL")
            .arg(&record_key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: i64 = redis::cmd("HDEL")
            .arg("{lumyx:keys}:index")
            .arg(key.id().to_string())
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(store.list().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn config_errors_say_what_was_expected_and_what_came() {
    let Some(server) = RedisServer::start_or_skip("config_errors_say_what") else {
        return;
    };
    let err = RedisKeyStore::builder(url_of(&server))
        .namespace("a{b")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Redis namespace: expected non-empty text without `{` or `}`, got `a{b`"
    );
    let err = RedisKeyStore::builder(url_of(&server))
        .change_log_len(0)
        .connect()
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid Redis change log length: expected at least 1, got `0`"
    );
}

/// Writes `record` as versions before 0.2 did: at
/// `{lumyx:keys}:record:<digest hex>`, indexed by id.
async fn write_single_slot_record(
    connection: &mut redis::aio::MultiplexedConnection,
    record: &lumyx_keys::KeyRecord,
) {
    let scopes: Vec<&str> = record.scopes.iter().map(|scope| scope.as_str()).collect();
    let mut fields = vec![
        ("id", record.id.to_string()),
        ("digest", record.digest.to_hex()),
        ("hint", record.hint.to_string()),
        ("name", record.name.clone()),
        ("owner", record.owner.clone()),
        (
            "rate_limit_per_minute",
            record.limits.rate_limit_per_minute().to_string(),
        ),
        ("daily_limit", record.limits.daily_limit().to_string()),
        ("scopes", scopes.join(",")),
        ("created_at_secs", record.created_at.timestamp().to_string()),
        (
            "created_at_nanos",
            record.created_at.timestamp_subsec_nanos().to_string(),
        ),
    ];
    if let Some(revoked) = record.revoked_at {
        fields.push(("revoked_at_secs", revoked.timestamp().to_string()));
        fields.push((
            "revoked_at_nanos",
            revoked.timestamp_subsec_nanos().to_string(),
        ));
    }
    let old_key = format!("{{lumyx:keys}}:record:{}", record.digest.to_hex());
    let _: () = redis::pipe()
        .hset_multiple(&old_key, &fields)
        .ignore()
        .hset(
            "{lumyx:keys}:index",
            record.id.to_string(),
            record.digest.to_hex(),
        )
        .ignore()
        .query_async(connection)
        .await
        .unwrap();
}

#[tokio::test]
async fn records_of_the_single_slot_layout_are_moved_and_every_key_found() {
    let Some(server) = RedisServer::start_or_skip("single_slot_layout_is_moved") else {
        return;
    };
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<ApiKey> = (0..20).map(|_| ApiKey::generate().unwrap()).collect();
    for (n, key) in keys.iter().enumerate() {
        let mut old = record(key, &format!("old {n}"), at(0));
        if n % 2 == 0 {
            old.revoked_at = Some(at(3));
        }
        write_single_slot_record(&mut raw, &old).await;
    }

    let store = store_on(&server).await;
    // Before the move, the records are not where this version looks.
    assert_eq!(store.find_by_digest(&keys[0].digest()).await.unwrap(), None);
    let mut changes = store.changes().await.unwrap();

    let migration = store.migrate_single_slot_layout().await.unwrap();
    assert_eq!(migration.moved, 20);
    assert_eq!(migration.left_in_place, Vec::<String>::new());
    for (n, key) in keys.iter().enumerate() {
        let found = store.find_by_digest(&key.digest()).await.unwrap().unwrap();
        assert_eq!(found.name, format!("old {n}"));
        let revoked = (n % 2 == 0).then(|| at(3));
        assert_eq!(found.revoked_at, revoked, "a revoked key stays revoked");
    }
    assert_eq!(store.list().await.unwrap().len(), 20);
    // Followers are told, so an instance that loaded before the move loads
    // the moved records.
    let KeyChange::Changed(ids) = changes.next(Duration::from_millis(100)).await.unwrap() else {
        panic!("nothing was lost")
    };
    assert_eq!(ids.len(), 20);
    // The old places are gone, and a second run moves nothing.
    let old: Vec<String> = redis::cmd("KEYS")
        .arg("{lumyx:keys}:record:*")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(old, Vec::<String>::new());
    assert_eq!(store.migrate_single_slot_layout().await.unwrap().moved, 0);

    // A record written to both places (a move cut short after its copy, and
    // an instance of the older version that revoked the old one since)
    // keeps the copy, which may have been written since, and takes the
    // earlier revocation.
    let both = ApiKey::generate().unwrap();
    store.insert(record(&both, "new", at(0))).await.unwrap();
    let mut stale = record(&both, "stale", at(0));
    stale.revoked_at = Some(at(4));
    write_single_slot_record(&mut raw, &stale).await;
    assert_eq!(store.migrate_single_slot_layout().await.unwrap().moved, 0);
    let found = store.find_by_id(&both.id()).await.unwrap().unwrap();
    assert_eq!(found.name, "new");
    assert_eq!(
        found.revoked_at,
        Some(at(4)),
        "the old place's revocation is kept"
    );

    // A record that cannot be read is left in place and named; the others
    // are moved all the same, and the server starts.
    let unreadable = ApiKey::generate().unwrap();
    let fine = ApiKey::generate().unwrap();
    write_single_slot_record(&mut raw, &record(&unreadable, "bad", at(0))).await;
    write_single_slot_record(&mut raw, &record(&fine, "fine", at(0))).await;
    let _: () = redis::cmd("HSET")
        .arg(format!(
            "{{lumyx:keys}}:record:{}",
            unreadable.digest().to_hex()
        ))
        .arg("daily_limit")
        .arg("lots")
        .query_async(&mut raw)
        .await
        .unwrap();
    let migration = store.migrate_single_slot_layout().await.unwrap();
    assert_eq!(migration.moved, 1);
    assert_eq!(migration.left_in_place, vec![unreadable.id().to_string()]);
    assert!(store.find_by_id(&fine.id()).await.unwrap().is_some());
}

#[tokio::test]
async fn an_insert_whose_second_step_failed_is_completed_by_its_retry() {
    let Some(server) = RedisServer::start_or_skip("insert_completed_by_retry") else {
        return;
    };
    let store = store_on(&server).await;
    let key = ApiKey::generate().unwrap();
    let first = record(&key, "half", at(0));
    // The first step alone: the record written, not indexed, not logged.
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    write_single_slot_record(&mut raw, &first).await;
    let _: () = redis::pipe()
        .rename(
            format!("{{lumyx:keys}}:record:{}", key.digest().to_hex()),
            store.record_key(&key.id()),
        )
        .ignore()
        .del("{lumyx:keys}:index")
        .ignore()
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(store.list().await.unwrap(), Vec::new());
    let mut changes = store.changes().await.unwrap();

    store.insert(first.clone()).await.unwrap();
    assert_eq!(store.list().await.unwrap().len(), 1);
    assert_eq!(
        changes.next(Duration::from_millis(100)).await.unwrap(),
        KeyChange::Changed(vec![key.id()])
    );
    // Once complete, the same insert is a duplicate again.
    assert!(matches!(store.insert(first).await, Err(Error::Duplicate(id)) if id == key.id()));
}

#[tokio::test]
async fn a_follower_whose_last_change_vanished_says_it_lost_changes() {
    let Some(server) = RedisServer::start_or_skip("last_change_vanished") else {
        return;
    };
    let store = store_on(&server).await;
    let mut changes = store.changes().await.unwrap();
    let first = ApiKey::generate().unwrap();
    let second = ApiKey::generate().unwrap();
    store.insert(record(&first, "first", at(0))).await.unwrap();
    store
        .insert(record(&second, "second", at(0)))
        .await
        .unwrap();
    assert_eq!(
        next_now(&mut changes).await,
        KeyChange::Changed(vec![first.id(), second.id()])
    );

    // A failover to a replica that never had the second change, on a host
    // whose clock is behind: the log ends at the first change, and the next
    // write takes the second number with an earlier stream id than the one
    // the follower saw.
    let client = redis::Client::open(server.url()).unwrap();
    let mut raw = client.get_multiplexed_async_connection().await.unwrap();
    let third = ApiKey::generate().unwrap();
    let _: () = redis::pipe()
        .del("{lumyx:keys}:changes")
        .ignore()
        .cmd("XADD")
        .arg("{lumyx:keys}:changes")
        .arg("1-0")
        .arg("seq")
        .arg(1)
        .arg("id")
        .arg(first.id().to_string())
        .ignore()
        .cmd("XADD")
        .arg("{lumyx:keys}:changes")
        .arg("2-0")
        .arg("seq")
        .arg(2)
        .arg("id")
        .arg(third.id().to_string())
        .ignore()
        .set("{lumyx:keys}:changes:seq", 2)
        .ignore()
        .query_async(&mut raw)
        .await
        .unwrap();

    // The counter says 2, as the follower saw; only the entry it saw is gone.
    assert_eq!(next_now(&mut changes).await, KeyChange::Lost);
}
