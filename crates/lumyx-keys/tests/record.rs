//! `KeyRecord`, `Scope` and `Scopes`: their serde forms and defaults.

use chrono::{TimeZone, Utc};
use lumyx_keys::{ApiKeyRef, KeyRecord, KeyStatus, Limits, Scope, Scopes};

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
    // Revocation wins once both have happened.
    assert_eq!(
        revoked.status(created + hour * 3),
        KeyStatus::Revoked(created + hour * 2)
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
