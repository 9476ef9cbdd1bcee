//! `KeyRecord`, `Scope` and `Scopes`: their serde forms and defaults.

use chrono::{DateTime, TimeZone, Utc};
use lumyx_keys::{ApiKeyRef, Error, KeyRecord, KeyStatus, Limits, Scope, Scopes};

const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

fn record() -> KeyRecord {
    let created = Utc.with_ymd_and_hms(2026, 11, 27, 9, 30, 0).unwrap();
    KeyRecord::new(ApiKeyRef::parse(KEY).unwrap(), "laptop", "acct_42", created)
}

#[test]
fn a_record_serializes_with_public_forms_and_round_trips() {
    let record = record()
        .with_limits(Limits::new(120, 5000).unwrap())
        .with_scopes([Scope::Chat, Scope::Models].into_iter().collect());
    let json = serde_json::to_value(&record).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "id": "key_4e58d9f4757ccfc3",
            "digest": "4e58d9f4757ccfc351c2d36db31a68179b00ad0b87f4fb73cdb9f775120d5e01",
            "hint": "nova_0123…6dce",
            "name": "laptop",
            "owner": "acct_42",
            "created_at": "2026-11-27T09:30:00Z",
            "expires_at": null,
            "revoked_at": null,
            "rate_limit_per_minute": 120,
            "daily_limit": 5000,
            "scopes": ["models", "chat"],
        })
    );
    let back: KeyRecord = serde_json::from_value(json).unwrap();
    assert_eq!(back, record);
}

#[test]
fn missing_settings_take_the_defaults_and_empty_scopes_stay_empty() {
    let mut json = serde_json::to_value(record()).unwrap();
    let object = json.as_object_mut().unwrap();
    for optional in [
        "expires_at",
        "revoked_at",
        "rate_limit_per_minute",
        "daily_limit",
        "scopes",
    ] {
        object.remove(optional);
    }
    let defaulted: KeyRecord = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(defaulted, record());
    assert_eq!(defaulted.scopes, Scopes::ALL);
    assert_eq!(
        (
            defaulted.limits.rate_limit_per_minute(),
            defaulted.limits.daily_limit()
        ),
        (60, 1000)
    );

    json["scopes"] = serde_json::json!([]);
    let scopeless: KeyRecord = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(scopeless.scopes, Scopes::NONE);
    assert!(
        Scope::ALL
            .iter()
            .all(|scope| !scopeless.scopes.contains(*scope))
    );

    json["scopes"] = serde_json::json!(["chat", "admin"]);
    assert!(serde_json::from_value::<KeyRecord>(json).is_err());
}

#[test]
fn status_follows_expiry_and_revocation() {
    let created = record().created_at;
    let hour = chrono::Duration::hours(1);
    let expiring = record().with_expiry(created + hour);
    assert_eq!(expiring.status(created), KeyStatus::Active);
    assert_eq!(
        expiring.status(created + hour),
        KeyStatus::Expired(created + hour)
    );
    let mut revoked = expiring.clone();
    revoked.revoked_at = Some(created + hour * 2);
    assert_eq!(
        revoked.status(created + hour),
        KeyStatus::Expired(created + hour)
    );
    // Once both have happened, expiry answers: the error table checks it
    // before revocation, as the gate does.
    assert_eq!(
        revoked.status(created + hour * 3),
        KeyStatus::Expired(created + hour)
    );
    // Revoked before it expired: still expired once both have happened.
    let mut revoked_early = expiring.clone();
    revoked_early.revoked_at = Some(created + hour / 2);
    assert_eq!(
        revoked_early.status(created + hour / 2),
        KeyStatus::Revoked(created + hour / 2)
    );
    assert_eq!(
        revoked_early.status(created + hour * 3),
        KeyStatus::Expired(created + hour)
    );
}

#[test]
fn scope_names_read_back() {
    for scope in Scope::ALL {
        assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        assert_eq!(
            serde_json::to_string(&scope).unwrap(),
            format!("\"{scope}\"")
        );
    }
    assert!("Chat".parse::<Scope>().is_err());
    assert_eq!(
        format!("{:?}", Scopes::NONE.with(Scope::Agents)),
        "{Agents}"
    );
}

#[test]
fn limits_out_of_range_are_refused_naming_the_field() {
    let mut json = serde_json::to_value(record()).unwrap();
    json["daily_limit"] = serde_json::json!(0);
    let err = serde_json::from_value::<KeyRecord>(json.clone()).unwrap_err();
    assert!(err.to_string().contains("daily_limit"), "{err}");
    json["daily_limit"] = serde_json::json!(10);
    json["rate_limit_per_minute"] = serde_json::json!(1001);
    let err = serde_json::from_value::<KeyRecord>(json).unwrap_err();
    assert!(err.to_string().contains("rate_limit_per_minute"), "{err}");
}

/// Issue 7: deserialization took any time chrono reads, such as
/// `+10000-01-01T00:00:00Z`, which stores cannot keep.
#[test]
fn times_beyond_the_bounds_are_refused_when_read_naming_the_field() {
    let json = serde_json::to_value(record().with_expiry(KeyRecord::MAX_TIME)).unwrap();
    assert_eq!(json["expires_at"], "9999-12-31T23:59:59Z");
    let back: KeyRecord = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.expires_at, Some(KeyRecord::MAX_TIME));

    // (field, time written, time as the message shows it)
    let cases = [
        (
            "expires_at",
            "+10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        ),
        (
            "expires_at",
            "9999-12-31T23:59:59.5Z",
            "9999-12-31T23:59:59.500Z",
        ),
        (
            "revoked_at",
            "+10000-01-01T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        ),
        (
            "created_at",
            "-0001-12-31T23:59:59Z",
            "-0001-12-31T23:59:59Z",
        ),
    ];
    for (field, time, shown) in cases {
        let mut out_of_range = json.clone();
        out_of_range[field] = serde_json::json!(time);
        let err = serde_json::from_value::<KeyRecord>(out_of_range).unwrap_err();
        let expected = format!(
            "{field} must be from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z, got {shown}"
        );
        assert!(err.to_string().starts_with(&expected), "{err} / {expected}");
    }
    let mut no_creation = json;
    no_creation["created_at"] = serde_json::Value::Null;
    let err = serde_json::from_value::<KeyRecord>(no_creation).unwrap_err();
    assert!(err.to_string().contains("created_at"), "{err}");
}

#[test]
fn validation_refuses_times_beyond_the_bounds_and_a_foreign_id() {
    let before_year_0 = KeyRecord::MIN_TIME - chrono::Duration::seconds(1);
    assert!(record().validate().is_ok());
    assert!(record().with_expiry(KeyRecord::MIN_TIME).validate().is_ok());
    let mut early = record();
    early.created_at = before_year_0;
    assert!(matches!(
        early.validate(),
        Err(Error::TimeOutOfRange { field: "created_at", time }) if time == before_year_0
    ));
    let mut foreign = record();
    foreign.id = "key_0000000000000000".parse().unwrap();
    assert!(matches!(foreign.validate(), Err(Error::IdMismatch { .. })));
    assert_eq!(
        KeyRecord::check_time("expires_at", KeyRecord::MAX_TIME).unwrap(),
        KeyRecord::MAX_TIME
    );
    let err = KeyRecord::check_time("expires_at", DateTime::<Utc>::MAX_UTC).unwrap_err();
    assert!(
        err.to_string().starts_with("expires_at must be from"),
        "{err}"
    );
}
