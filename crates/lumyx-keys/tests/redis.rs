//! `RedisKeyStore` against a real `redis-server` on a loopback port.
#![cfg(feature = "redis")]

mod common;

use lumyx_keys::{ApiKey, KeyStore, RedisKeyStore, Verification, verify};
use lumyx_test_support::RedisServer;

use common::{at, exercise_store, record};

#[tokio::test]
async fn redis_store_keeps_the_store_contract() {
    let Some(server) = RedisServer::start_or_skip("redis_store_keeps_the_store_contract") else {
        return;
    };
    let store = RedisKeyStore::connect(&server.url()).await.unwrap();
    exercise_store(&store).await;
}

#[tokio::test]
async fn revocation_is_seen_by_every_instance_at_once() {
    let Some(server) = RedisServer::start_or_skip("revocation_is_seen_by_every_instance_at_once")
    else {
        return;
    };
    // Two server instances, each with its own connection.
    let first = RedisKeyStore::connect(&server.url()).await.unwrap();
    let second = RedisKeyStore::connect(&server.url()).await.unwrap();
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

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_hang_or_panic() {
    let Some(mut server) = RedisServer::start_or_skip("an_unreachable_server_is_an_error") else {
        return;
    };
    let store = RedisKeyStore::connect(&server.url()).await.unwrap();
    let key = ApiKey::generate().unwrap();
    store.insert(record(&key, "k", at(0))).await.unwrap();

    server.stop();
    let outcome = verify(&store, key.as_key_ref(), at(1)).await;
    assert!(
        matches!(outcome, Err(lumyx_keys::Error::Store(_))),
        "{outcome:?}"
    );

    // Back up (empty): the same store reconnects and answers again.
    server.restart().unwrap();
    let mut answer = verify(&store, key.as_key_ref(), at(1)).await;
    for _ in 0..50 {
        if answer.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        answer = verify(&store, key.as_key_ref(), at(1)).await;
    }
    assert_eq!(answer.unwrap(), Verification::Unknown);
}

#[tokio::test]
async fn records_are_hashes_keyed_by_digest_in_one_slot_without_the_key() {
    let Some(server) = RedisServer::start_or_skip("records_are_hashes_keyed_by_digest") else {
        return;
    };
    let store = RedisKeyStore::connect(&server.url()).await.unwrap();
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
    let record_key = format!("{{lumyx:keys}}:record:{}", key.digest().to_hex());
    assert_eq!(
        names,
        vec!["{lumyx:keys}:index".to_owned(), record_key.clone()]
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
    for (name, value) in &fields {
        assert!(
            !value.contains(&key.expose_secret()[5..]),
            "field {name} holds the key"
        );
    }
}

#[tokio::test]
async fn a_namespace_must_be_a_usable_hash_tag() {
    let Some(server) = RedisServer::start_or_skip("a_namespace_must_be_a_usable_hash_tag") else {
        return;
    };
    let client = redis::Client::open(server.url()).unwrap();
    let manager = redis::aio::ConnectionManager::new(client).await.unwrap();
    for bad in ["", "a{b", "x}"] {
        let refused = RedisKeyStore::new(manager.clone(), bad);
        assert!(
            matches!(refused, Err(lumyx_keys::Error::Store(_))),
            "{bad:?}"
        );
    }
    // Two namespaces on one server are two separate stores.
    let tenant_a = RedisKeyStore::new(manager.clone(), "tenant-a").unwrap();
    let tenant_b = RedisKeyStore::new(manager, "tenant-b").unwrap();
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
