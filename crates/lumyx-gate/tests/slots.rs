//! How the keys a server makes ([`Keys::new_key`]) spread over the hash
//! slots of a Redis Cluster: each key's record, limiter state and usage
//! share its slot, and 100,000 keys fill no slot past twice its fair
//! share. Only the Redis key names are needed: nothing talks to Redis.
#![cfg(feature = "redis")]

use std::sync::Arc;

use chrono::Utc;
use lumyx_gate::Keys;
use lumyx_keys::{ApiKey, KeyRecord, MemoryKeyStore, RedisKeyStore};
use lumyx_ratelimit::RedisLimiter;
use lumyx_redis::{CLUSTER_SLOTS, hash_slot};

/// The Redis keys per API key: its record, limiter state and usage.
const REDIS_KEYS_PER_KEY: usize = 3;

/// The fullest slot's Redis keys over the fair share, for keys made by
/// `make` into `keys`' table.
async fn fullest_over_fair_share(
    keys: &Keys,
    count: usize,
    make: impl Fn(&Keys) -> ApiKey,
) -> (usize, f64) {
    // Connecting does not contact Redis: only the names are needed.
    let url: lumyx_redis::RedisUrl = "redis://127.0.0.1:1/".parse().unwrap();
    let store = RedisKeyStore::builder(url.clone()).connect().await.unwrap();
    let limiter = RedisLimiter::builder(url).connect().await.unwrap();
    let mut per_slot = vec![0_usize; usize::from(CLUSTER_SLOTS)];
    for n in 0..count {
        let key = make(keys);
        let id = key.id();
        let names = [
            store.record_key(&id),
            limiter.redis_key(&id.to_string()),
            limiter.usage_key(&id.to_string()),
        ];
        let slots = names.each_ref().map(|name| hash_slot(name.as_bytes()));
        assert!(
            slots.iter().all(|&slot| slot == id.cluster_slot()),
            "{names:?} share the slot of {id}"
        );
        per_slot[usize::from(id.cluster_slot())] += REDIS_KEYS_PER_KEY;
        // Into the table, as an insert through `Keys` puts it.
        keys.table().put(KeyRecord::new(
            key.as_key_ref(),
            format!("key {n}"),
            "acct",
            Utc::now(),
        ));
    }
    let fair_share = (REDIS_KEYS_PER_KEY * count) as f64 / f64::from(CLUSTER_SLOTS);
    (*per_slot.iter().max().unwrap(), fair_share)
}

#[tokio::test]
async fn keys_a_server_makes_fill_no_slot_past_twice_its_fair_share() {
    let keys = Keys::load(Arc::new(MemoryKeyStore::new())).await.unwrap();
    let (fullest, fair_share) =
        fullest_over_fair_share(&keys, 100_000, |keys| keys.new_key().unwrap()).await;
    println!("new_key: fullest slot {fullest} Redis keys, fair share {fair_share:.1}");
    // Random ids alone fill the fullest of 16,384 slots with 17 to 20 keys
    // (a Poisson law of mean 6.1), more than twice the fair share almost
    // surely; the less loaded of two choices keeps it at 9 (1.5 x).
    assert!(
        fullest as f64 <= 2.0 * fair_share,
        "the fullest slot holds {fullest}, more than 2 x {fair_share:.1}"
    );
    assert_eq!(keys.table().len(), 100_000);
    let counted: u32 = (0..CLUSTER_SLOTS)
        .map(|slot| keys.table().keys_in_slot(slot))
        .sum();
    assert_eq!(counted, 100_000, "the table counts every key in its slot");
}

#[tokio::test]
async fn the_table_counts_keys_per_slot_through_puts_removes_and_reloads() {
    let keys = Keys::load(Arc::new(MemoryKeyStore::new())).await.unwrap();
    let table = keys.table();
    let key = keys.new_key().unwrap();
    let slot = key.id().cluster_slot();
    let record = KeyRecord::new(key.as_key_ref(), "a", "acct", Utc::now());
    table.put(record.clone());
    table.put(record.clone());
    assert_eq!(table.keys_in_slot(slot), 1, "a replaced record counts once");
    table.remove(&key.id());
    table.remove(&key.id());
    assert_eq!(
        table.keys_in_slot(slot),
        0,
        "a removed record counts no more"
    );
    let other = ApiKey::generate().unwrap();
    table.put(record.clone());
    table.replace_all([KeyRecord::new(other.as_key_ref(), "b", "acct", Utc::now())]);
    assert_eq!(table.keys_in_slot(other.id().cluster_slot()), 1);
    if other.id().cluster_slot() != slot {
        assert_eq!(
            table.keys_in_slot(slot),
            0,
            "a record a reload drops counts no more"
        );
    }
    assert_eq!(table.keys_in_slot(CLUSTER_SLOTS), 0);
}
