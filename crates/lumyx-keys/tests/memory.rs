//! `MemoryKeyStore`: the store contract, the synchronous hot path, and
//! concurrent use.

mod common;

use std::sync::Arc;
use std::thread;

use lumyx_keys::{ApiKey, KeyStore, MemoryKeyStore, Verification};

use common::{at, exercise_extreme_times, exercise_store, exercise_time_bounds, record};

#[tokio::test]
async fn memory_store_keeps_the_store_contract() {
    let store = MemoryKeyStore::new();
    exercise_store(&store).await;
    assert_eq!(store.len(), 3);
}

#[tokio::test]
async fn memory_store_keeps_times_up_to_the_bound_and_refuses_later_ones() {
    exercise_time_bounds(&MemoryKeyStore::new()).await;
}

#[tokio::test]
async fn memory_store_keeps_extreme_times_exactly_and_in_order() {
    exercise_extreme_times(&MemoryKeyStore::new()).await;
}

#[test]
fn synchronous_verification_matches_the_records() {
    let store = MemoryKeyStore::with_capacity(100);
    assert!(store.is_empty());
    let keys: Vec<ApiKey> = (0..100).map(|_| ApiKey::generate().unwrap()).collect();
    for (i, key) in keys.iter().enumerate() {
        store.insert(record(key, &format!("k{i}"), at(0))).unwrap();
    }
    assert_eq!(store.len(), 100);
    for (i, key) in keys.iter().enumerate() {
        match store.verify(key.as_key_ref(), at(1)) {
            Verification::Valid(found) => assert_eq!(found.name, format!("k{i}")),
            other => panic!("key {i}: {other:?}"),
        }
        assert_eq!(store.find_by_id(&key.id()).unwrap().digest, key.digest());
    }
    let stranger = ApiKey::generate().unwrap();
    assert_eq!(
        store.verify(stranger.as_key_ref(), at(1)),
        Verification::Unknown
    );
}

#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let store = Arc::new(MemoryKeyStore::new());
    let per_thread = 500;
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let keys: Vec<ApiKey> = (0..per_thread)
                    .map(|_| ApiKey::generate().unwrap())
                    .collect();
                for (i, key) in keys.iter().enumerate() {
                    store
                        .insert(record(key, &format!("{t}-{i}"), at(0)))
                        .unwrap();
                    // Read back at once, from the same thread, while others write.
                    assert!(
                        store
                            .verify(key.as_key_ref(), at(1))
                            .valid_record()
                            .is_some()
                    );
                }
                for key in keys.iter().step_by(2) {
                    store.revoke(&key.id(), at(2)).unwrap().unwrap();
                }
                keys
            })
        })
        .collect();
    let keys: Vec<ApiKey> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(store.len(), 4 * per_thread);
    assert_eq!(store.list().len(), 4 * per_thread);
    let revoked = keys
        .iter()
        .filter(|key| {
            matches!(
                store.verify(key.as_key_ref(), at(3)),
                Verification::Revoked(_)
            )
        })
        .count();
    assert_eq!(revoked, 4 * per_thread / 2);
}

#[test]
fn debug_shows_the_count_not_the_records() {
    let store = MemoryKeyStore::new();
    assert_eq!(format!("{store:?}"), "MemoryKeyStore { records: 0, .. }");
    let keys: Vec<ApiKey> = (0..3).map(|_| ApiKey::generate().unwrap()).collect();
    for key in &keys {
        store.insert(record(key, "listed", at(0))).unwrap();
    }
    let shown = format!("{store:?}");
    assert_eq!(shown, "MemoryKeyStore { records: 3, .. }");
    for key in &keys {
        assert!(!shown.contains(&key.id().to_string()), "{shown}");
    }
}

#[tokio::test]
async fn the_sync_twins_and_the_trait_see_the_same_records() {
    let store = MemoryKeyStore::new();
    let key = ApiKey::generate().unwrap();
    // Written synchronously, read through the trait, and the other way round.
    store.insert(record(&key, "twin", at(0))).unwrap();
    let any_store: &dyn KeyStore = &store;
    let through_trait = any_store.find_by_digest(&key.digest()).await.unwrap();
    assert_eq!(through_trait, store.find_by_digest(&key.digest()));
    assert_eq!(any_store.list().await.unwrap(), store.list());

    let revoked = any_store.revoke(&key.id(), at(1)).await.unwrap();
    assert_eq!(revoked, store.find_by_id(&key.id()));
    assert_eq!(store.find_by_id(&key.id()).unwrap().revoked_at, Some(at(1)));
    assert_eq!(
        store.revoke(&key.id(), at(2)).unwrap().unwrap().revoked_at,
        Some(at(1))
    );
    assert!(matches!(
        any_store.insert(record(&key, "again", at(0))).await,
        Err(lumyx_keys::Error::Duplicate(_))
    ));
}
