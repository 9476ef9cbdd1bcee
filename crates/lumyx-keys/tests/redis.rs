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
