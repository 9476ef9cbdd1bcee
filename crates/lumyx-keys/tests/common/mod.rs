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

    // Revocation is seen at once and keeps the earliest time; once the key
    // has also expired, expiry answers (the error table checks it first).
    let revoked = store.revoke(&key.id(), at(5)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at(5)));
    assert!(matches!(
        verify(store, key.as_key_ref(), at(5)).await.unwrap(),
        Verification::Revoked(_)
    ));
    assert!(matches!(
        verify(store, key.as_key_ref(), at(21)).await.unwrap(),
        Verification::Expired(_)
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

/// The last nanosecond of 9999: later than the bound, 9999-12-31T23:59:59Z.
pub(crate) fn end_of_year_9999() -> DateTime<Utc> {
    KeyRecord::MAX_TIME + Duration::nanoseconds(999_999_999)
}

/// Times up to the bound are kept exactly; later ones are refused by every
/// write, which leaves the store readable. The store must start empty.
pub(crate) async fn exercise_time_bounds(store: &dyn KeyStore) {
    // A record expiring at the bound round-trips through every read.
    let key = ApiKey::generate().unwrap();
    let at_max = record(&key, "at max", at(0)).with_expiry(KeyRecord::MAX_TIME);
    store.insert(at_max.clone()).await.unwrap();
    assert_eq!(
        *store.find_by_digest(&key.digest()).await.unwrap().unwrap(),
        at_max
    );
    assert_eq!(*store.find_by_id(&key.id()).await.unwrap().unwrap(), at_max);
    assert_eq!(store.list().await.unwrap().len(), 1);
    let revoked = store.revoke(&key.id(), at(1)).await.unwrap().unwrap();
    assert_eq!(revoked.expires_at, Some(KeyRecord::MAX_TIME));
    assert_eq!(revoked.revoked_at, Some(at(1)));

    // Later expiries are refused by insert and update, naming the field; the
    // store stays readable and unchanged.
    let far = ApiKey::generate().unwrap();
    let year_10000 = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    for too_late in [
        KeyRecord::MAX_TIME + Duration::nanoseconds(1),
        end_of_year_9999(),
        year_10000,
        DateTime::<Utc>::MAX_UTC,
    ] {
        let refused = store
            .insert(record(&far, "far", at(0)).with_expiry(too_late))
            .await;
        assert!(
            matches!(refused, Err(Error::TimeOutOfRange { field: "expires_at", time }) if time == too_late),
            "{too_late:?}: {refused:?}"
        );
        let refused = store.update(at_max.clone().with_expiry(too_late)).await;
        assert!(
            matches!(
                refused,
                Err(Error::TimeOutOfRange {
                    field: "expires_at",
                    ..
                })
            ),
            "{refused:?}"
        );
    }
    assert_eq!(store.find_by_digest(&far.digest()).await.unwrap(), None);
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].expires_at, Some(KeyRecord::MAX_TIME));
    assert_eq!(listed[0].revoked_at, Some(at(1)));

    // Creation and revocation times have the same bounds.
    let before_year_0 = KeyRecord::MIN_TIME - Duration::nanoseconds(1);
    let mut created_too_early = record(&far, "early", before_year_0);
    assert!(matches!(
        store.insert(created_too_early.clone()).await,
        Err(Error::TimeOutOfRange {
            field: "created_at",
            ..
        })
    ));
    created_too_early.created_at = at(0);
    created_too_early.revoked_at = Some(year_10000);
    assert!(matches!(
        store.insert(created_too_early).await,
        Err(Error::TimeOutOfRange {
            field: "revoked_at",
            ..
        })
    ));
    for refused_at in [
        before_year_0,
        KeyRecord::MAX_TIME + Duration::nanoseconds(1),
    ] {
        assert!(matches!(
            store.revoke(&key.id(), refused_at).await,
            Err(Error::TimeOutOfRange {
                field: "revoked_at",
                ..
            })
        ));
    }
    assert_eq!(
        store
            .find_by_id(&key.id())
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(at(1))
    );
}

/// Times at both ends of the range, and on both sides of 1970, come back
/// exactly, and revocations order correctly there. The store must start
/// empty.
pub(crate) async fn exercise_extreme_times(store: &dyn KeyStore) {
    let nanosecond = Duration::nanoseconds(1);
    let just_before_1970 = DateTime::UNIX_EPOCH - nanosecond;
    let extremes = [
        KeyRecord::MIN_TIME,
        KeyRecord::MIN_TIME + nanosecond,
        just_before_1970,
        DateTime::UNIX_EPOCH,
        KeyRecord::MAX_TIME - nanosecond,
        KeyRecord::MAX_TIME,
    ];
    let mut inserted = Vec::new();
    for (i, created_at) in extremes.into_iter().enumerate() {
        let key = ApiKey::generate().unwrap();
        let mut extreme = record(&key, &format!("extreme {i}"), created_at);
        extreme.expires_at = Some(extremes[extremes.len() - 1 - i]);
        extreme.revoked_at = Some(created_at);
        store.insert(extreme.clone()).await.unwrap();
        assert_eq!(
            *store.find_by_digest(&key.digest()).await.unwrap().unwrap(),
            extreme
        );
        inserted.push((key, extreme));
    }
    // Listed oldest first: the order of the extremes.
    let listed: Vec<KeyRecord> = store
        .list()
        .await
        .unwrap()
        .iter()
        .map(|r| (**r).clone())
        .collect();
    let expected: Vec<KeyRecord> = inserted.iter().map(|(_, record)| record.clone()).collect();
    assert_eq!(listed, expected);

    // Revocations keep the earliest time, at both ends and across 1970,
    // down to the nanosecond.
    let cases = [
        (KeyRecord::MAX_TIME, KeyRecord::MAX_TIME - nanosecond),
        (
            KeyRecord::MAX_TIME - nanosecond,
            KeyRecord::MAX_TIME - nanosecond * 2,
        ),
        (KeyRecord::MIN_TIME + nanosecond, KeyRecord::MIN_TIME),
        (DateTime::UNIX_EPOCH, just_before_1970),
        (just_before_1970, just_before_1970 - nanosecond),
        (DateTime::UNIX_EPOCH + nanosecond, DateTime::UNIX_EPOCH),
        // Numbers of different lengths, which text would order wrongly.
        (at(0) + nanosecond * 10, at(0) + nanosecond * 5),
        (
            DateTime::UNIX_EPOCH + Duration::seconds(10),
            DateTime::UNIX_EPOCH + Duration::seconds(9),
        ),
        (
            DateTime::UNIX_EPOCH - Duration::seconds(1),
            DateTime::UNIX_EPOCH - Duration::seconds(10),
        ),
    ];
    for (later, earlier) in cases {
        let key = ApiKey::generate().unwrap();
        store.insert(record(&key, "revoked", at(0))).await.unwrap();
        let id = key.id();
        let revoked = |at| store.revoke(&id, at);
        assert_eq!(
            revoked(later).await.unwrap().unwrap().revoked_at,
            Some(later)
        );
        assert_eq!(
            revoked(earlier).await.unwrap().unwrap().revoked_at,
            Some(earlier)
        );
        assert_eq!(
            revoked(later).await.unwrap().unwrap().revoked_at,
            Some(earlier),
            "{later} after {earlier}"
        );

        // An update brings a revocation forward and never postpones it.
        let key = ApiKey::generate().unwrap();
        store.insert(record(&key, "updated", at(0))).await.unwrap();
        for (written, kept) in [
            (Some(later), later),
            (Some(earlier), earlier),
            (Some(later), earlier),
            (None, earlier),
        ] {
            let mut copy = record(&key, "copy", at(0));
            copy.revoked_at = written;
            assert!(store.update(copy).await.unwrap());
            let stored = store.find_by_id(&key.id()).await.unwrap().unwrap();
            assert_eq!(
                stored.revoked_at,
                Some(kept),
                "wrote {written:?} ({earlier} before)"
            );
        }
    }
}
