//! The behaviour every `KeyStore` must have, run against each backend.

use chrono::{DateTime, Duration, TimeZone, Utc};
use lumyx_keys::{ApiKey, Error, KeyRecord, KeyStore, Limits, Scope, Scopes, Verification, verify};

pub(crate) fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, hour, 0, 0).unwrap()
}

pub(crate) fn record(key: &ApiKey, name: &str, created: DateTime<Utc>) -> KeyRecord {
    KeyRecord::new(key.as_key_ref(), name, "acct_1", created)
}

/// Inserts, finds, verifies, updates, revokes and lists records. The store
/// must start empty.
pub(crate) async fn exercise_store(store: &dyn KeyStore) {
    assert_eq!(store.list().await.unwrap(), Vec::new());

    let key = ApiKey::generate().unwrap();
    // Times with nanoseconds must come back exactly.
    let stored = record(&key, "first", at(1) + Duration::nanoseconds(123_456_789))
        .with_limits(Limits::new(10, 500).unwrap())
        .with_scopes([Scope::Chat, Scope::Models].into_iter().collect())
        .with_expiry(at(20) + Duration::nanoseconds(1));
    store.insert(stored.clone()).await.unwrap();

    // Lookups by digest and by id answer the record as it was stored.
    let found = store.find_by_digest(&key.digest()).await.unwrap().unwrap();
    assert_eq!(*found, stored);
    let found = store.find_by_id(&key.id()).await.unwrap().unwrap();
    assert_eq!(*found, stored);

    // A second insert of the same id is refused and changes nothing.
    let again = record(&key, "imposter", at(2));
    assert!(matches!(
        store.insert(again).await,
        Err(Error::Duplicate(id)) if id == key.id()
    ));
    assert_eq!(
        store.find_by_id(&key.id()).await.unwrap().unwrap().name,
        "first"
    );

    // A record whose id is not its digest's is refused.
    let other = ApiKey::generate().unwrap();
    let mut inconsistent = record(&other, "bad", at(1));
    inconsistent.id = key.id();
    assert!(matches!(
        store.insert(inconsistent.clone()).await,
        Err(Error::IdMismatch { id, digest_id }) if id == key.id() && digest_id == other.id()
    ));
    assert!(matches!(
        store.update(inconsistent).await,
        Err(Error::IdMismatch { .. })
    ));

    // Unknown keys and ids are absent, not errors.
    let stranger = ApiKey::generate().unwrap();
    assert_eq!(
        store.find_by_digest(&stranger.digest()).await.unwrap(),
        None
    );
    assert_eq!(store.find_by_id(&stranger.id()).await.unwrap(), None);
    assert_eq!(
        verify(store, stranger.as_key_ref(), at(2)).await.unwrap(),
        Verification::Unknown
    );

    // Verification follows time: valid before the expiry, expired from it on.
    let valid = verify(store, key.as_key_ref(), at(19)).await.unwrap();
    assert_eq!(valid.valid_record().map(|r| r.id), Some(key.id()));
    assert!(
        verify(store, key.as_key_ref(), at(20))
            .await
            .unwrap()
            .valid_record()
            .is_some()
    );
    assert!(matches!(
        verify(store, key.as_key_ref(), at(20) + Duration::nanoseconds(1)).await.unwrap(),
        Verification::Expired(record) if record.id == key.id()
    ));

    // Updates replace the record; an update of an unknown id is a no-op.
    let updated = stored
        .clone()
        .with_limits(Limits::new(1000, 10000).unwrap())
        .with_scopes(Scopes::ALL);
    assert!(store.update(updated.clone()).await.unwrap());
    assert_eq!(
        *store.find_by_digest(&key.digest()).await.unwrap().unwrap(),
        updated
    );
    assert!(!store.update(record(&stranger, "x", at(1))).await.unwrap());
    assert_eq!(store.find_by_id(&stranger.id()).await.unwrap(), None);

    // Revocation is seen at once, wins over expiry, and keeps the earliest time.
    let revoked = store.revoke(&key.id(), at(5)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    assert!(matches!(
        verify(store, key.as_key_ref(), at(5)).await.unwrap(),
        Verification::Revoked(_)
    ));
    assert!(matches!(
        verify(store, key.as_key_ref(), at(21)).await.unwrap(),
        Verification::Revoked(_)
    ));
    assert!(
        verify(store, key.as_key_ref(), at(4))
            .await
            .unwrap()
            .valid_record()
            .is_some()
    );
    let later = store.revoke(&key.id(), at(6)).await.unwrap().unwrap();
    assert_eq!(later.revoked_at, Some(at(5)));
    let earlier = store.revoke(&key.id(), at(3)).await.unwrap().unwrap();
    assert_eq!(earlier.revoked_at, Some(at(3)));
    assert_eq!(store.revoke(&stranger.id(), at(3)).await.unwrap(), None);

    // A stale copy written back (a limits change made from a copy read before
    // the revocation) neither lifts nor postpones the revocation; an earlier
    // one brings it forward.
    for (written, kept) in [(None, at(3)), (Some(at(10)), at(3)), (Some(at(2)), at(2))] {
        let mut copy = updated.clone();
        copy.revoked_at = written;
        assert!(store.update(copy).await.unwrap());
        let stored = store.find_by_id(&key.id()).await.unwrap().unwrap();
        assert_eq!(stored.revoked_at, Some(kept), "after writing {written:?}");
    }
    assert!(matches!(
        verify(store, key.as_key_ref(), at(2)).await.unwrap(),
        Verification::Revoked(_)
    ));

    // Listing: oldest first, every record once, with the latest state.
    let young = ApiKey::generate().unwrap();
    let old = ApiKey::generate().unwrap();
    store.insert(record(&young, "young", at(9))).await.unwrap();
    store.insert(record(&old, "old", at(0))).await.unwrap();
    let names: Vec<String> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| r.name.clone())
        .collect();
    assert_eq!(names, ["old", "first", "young"]);
    let listed = store.list().await.unwrap();
    assert_eq!(listed[1].revoked_at, Some(at(2)));
    assert_eq!(listed[1].limits.rate_limit_per_minute(), 1000);
}
