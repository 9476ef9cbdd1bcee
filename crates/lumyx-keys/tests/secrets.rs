//! SPEC §1.3: `Debug` and `Display` of every type that holds a key, or was
//! built from one, show at most the hint.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use lumyx_keys::{ApiKey, KeyFormat, KeyRecord, Scanner, Verification};
use proptest::prelude::*;

fn assert_hidden(key: &ApiKey, shown: &str) {
    let text = key.expose_secret();
    assert!(!shown.contains(text), "{shown} shows the key");
    // Not even the random middle, the part the hint leaves out.
    assert!(
        !shown.contains(&text[20..40]),
        "{shown} shows part of the key"
    );
}

fn every_rendering(key: &ApiKey) -> Vec<String> {
    let created = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    let record = Arc::new(KeyRecord::new(key.as_key_ref(), "n", "o", created));
    let text = format!("before {} after", key.expose_secret());
    let findings: Vec<_> = Scanner::new(KeyFormat::new(key.prefix().as_str()).unwrap())
        .scan(&text)
        .collect();
    assert_eq!(findings.len(), 1);
    vec![
        format!("{key}"),
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{}", key.as_key_ref()),
        format!("{:?}", key.as_key_ref()),
        format!("{:?}", key.clone()),
        format!("{record:?}"),
        serde_json::to_string(&*record).unwrap(),
        format!("{:?}", Verification::Valid(Arc::clone(&record))),
        format!("{:?}", findings[0]),
        format!("{:?}", Scanner::default().scan(&text)),
        format!("{}", findings[0].hint),
    ]
}

#[test]
fn the_renderings_show_the_hint() {
    let key: ApiKey = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce"
        .parse()
        .unwrap();
    assert_eq!(format!("{key}"), "nova_0123…6dce");
    assert_eq!(format!("{key:?}"), "ApiKey(nova_0123…6dce)");
    for shown in every_rendering(&key) {
        assert_hidden(&key, &shown);
    }
}

proptest! {
    #[test]
    fn no_rendering_shows_a_key(prefix in "[a-z][a-z0-9]{0,14}_") {
        let key = KeyFormat::new(&prefix).unwrap().generate().unwrap();
        for shown in every_rendering(&key) {
            assert_hidden(&key, &shown);
        }
    }
}
