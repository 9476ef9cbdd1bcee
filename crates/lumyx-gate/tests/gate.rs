//! Every authentication, scope and limit row of the error table through
//! `Gate::check_now`, headers and envelopes included, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use http::{HeaderMap, HeaderValue, StatusCode};
use lumyx_gate::{Gate, KeyTable, MemoryBackend, Refusal, Verdict};
use lumyx_keys::{ApiKey, KeyRecord, Limits, Scope, Scopes};
use lumyx_ratelimit::{Counted, ManualClock, Timestamp};

const NOW: &str = "2026-11-27T12:36:40Z";

struct World {
    clock: ManualClock,
    gate: Gate<MemoryBackend<ManualClock>, ManualClock>,
}

fn world() -> World {
    let clock = ManualClock::at(NOW.parse().unwrap());
    let gate = Gate::with_clock(
        Arc::new(KeyTable::new()),
        MemoryBackend::with_clock(clock.clone()),
        clock.clone(),
    );
    World { clock, gate }
}

impl World {
    fn now(&self) -> DateTime<Utc> {
        lumyx_ratelimit::Clock::now(&self.clock).to_utc()
    }

    /// A key with this record's settings, in the table.
    fn key(&self, edit: impl FnOnce(KeyRecord) -> KeyRecord) -> ApiKey {
        let key = ApiKey::generate().unwrap();
        let record = KeyRecord::new(
            key.as_key_ref(),
            "test",
            "acct_1",
            self.now() - TimeDelta::days(1),
        );
        self.gate.table().put(edit(record));
        key
    }

    fn check(&self, authorization: Option<&str>, scope: Scope) -> (Verdict, HeaderMap) {
        let header = authorization.map(|value| HeaderValue::from_str(value).unwrap());
        let verdict = self.gate.check_now(header.as_ref(), scope);
        let mut headers = HeaderMap::new();
        verdict.write_headers(&mut headers);
        (verdict, headers)
    }

    fn check_key(&self, key: &ApiKey, scope: Scope) -> (Verdict, HeaderMap) {
        self.check(Some(&format!("Bearer {}", key.expose_secret())), scope)
    }
}

/// The envelope of a denial, checked for its four keys, and its code.
fn envelope(verdict: &Verdict) -> (StatusCode, serde_json::Value) {
    let Verdict::Denied(denied) = verdict else {
        panic!("expected a denial, got {verdict:?}");
    };
    let body: serde_json::Value = serde_json::from_slice(&denied.body()).unwrap();
    let object = body["error"].as_object().unwrap();
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    (denied.status(), body["error"].clone())
}

fn rate_limit_headers(headers: &HeaderMap) -> Vec<String> {
    [
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-requests-day",
        "x-ratelimit-remaining-requests-day",
        "x-ratelimit-reset-requests-day",
        "ratelimit-policy",
        "ratelimit",
    ]
    .iter()
    .filter_map(|name| headers.get(*name))
    .map(|value| value.to_str().unwrap().to_owned())
    .collect()
}

#[test]
fn authentication_rows_answer_401_without_rate_limit_headers() {
    let world = world();
    let key = world.key(|record| record);
    let mut typo = key.expose_secret().to_owned();
    typo.replace_range(20..21, if &typo[20..21] == "a" { "b" } else { "a" });
    let unknown = ApiKey::generate().unwrap();
    let cases: [(Option<String>, &str, &str); 9] = [
        (None, "missing_api_key", "invalid_request_error"),
        (
            Some(String::new()),
            "missing_api_key",
            "invalid_request_error",
        ),
        (
            Some("   ".into()),
            "missing_api_key",
            "invalid_request_error",
        ),
        (
            Some(format!("Basic {}", key.expose_secret())),
            "invalid_authorization_header",
            "invalid_request_error",
        ),
        (
            Some(key.expose_secret().to_owned()),
            "invalid_authorization_header",
            "invalid_request_error",
        ),
        (
            Some(format!("Bearer {} extra", key.expose_secret())),
            "invalid_authorization_header",
            "invalid_request_error",
        ),
        (
            Some(format!("Bearer {typo}")),
            "invalid_api_key",
            "invalid_request_error",
        ),
        (
            Some(format!("Bearer {}", unknown.expose_secret())),
            "invalid_api_key",
            "invalid_request_error",
        ),
        (
            Some("Bearer nova_short".into()),
            "invalid_api_key",
            "invalid_request_error",
        ),
    ];
    for (header, code, error_type) in cases {
        let (verdict, headers) = world.check(header.as_deref(), Scope::Chat);
        let (status, error) = envelope(&verdict);
        assert_eq!(status, 401, "{header:?}");
        assert_eq!(error["code"], code, "{header:?}");
        assert_eq!(error["type"], error_type);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert!(rate_limit_headers(&headers).is_empty(), "{header:?}");
        let message = error["message"].as_str().unwrap();
        assert!(!message.contains(key.expose_secret()), "{message}");
        assert!(!message.contains(&key.expose_secret()[5..20]), "{message}");
    }
    // Case and whitespace of the scheme do not matter.
    for header in [
        format!("bearer {}", key.expose_secret()),
        format!("  BEARER \t {}  ", key.expose_secret()),
    ] {
        assert!(
            world.check(Some(&header), Scope::Chat).0.is_admitted(),
            "{header:?}"
        );
    }
}

#[test]
fn expired_and_revoked_keys_answer_403_with_their_hint_and_no_limits() {
    let world = world();
    let now = world.now();
    let expired = world.key(|record| record.with_expiry(now - TimeDelta::seconds(1)));
    let mut revoked_record = None;
    let revoked = world.key(|mut record| {
        record.revoked_at = Some(now);
        revoked_record = Some(record.clone());
        record
    });
    // Expired and revoked: expiry is checked first.
    let both = world.key(|mut record| {
        record.revoked_at = Some(now - TimeDelta::hours(1));
        record.with_expiry(now - TimeDelta::hours(2))
    });
    for (key, code) in [
        (&expired, "api_key_expired"),
        (&revoked, "api_key_revoked"),
        (&both, "api_key_expired"),
    ] {
        let (verdict, headers) = world.check_key(key, Scope::Chat);
        let (status, error) = envelope(&verdict);
        assert_eq!(status, 403);
        assert_eq!(error["code"], code);
        assert_eq!(error["type"], "permission_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&key.hint().to_string()), "{message}");
        assert!(!message.contains(key.expose_secret()), "{message}");
        assert!(rate_limit_headers(&headers).is_empty());
        assert!(!headers.contains_key("www-authenticate"));
    }
    assert!(revoked_record.is_some());
}

#[test]
fn a_revoked_key_is_403_even_when_its_limits_are_spent_and_spends_nothing() {
    let world = world();
    let key = world.key(|record| record.with_limits(Limits::new(2, 10).unwrap()));
    assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    let (verdict, _) = world.check_key(&key, Scope::Chat);
    assert_eq!(envelope(&verdict).1["code"], "rate_limit_exceeded");
    let id = key.id();
    let mut record = KeyRecord::clone(world.gate.table().find_by_id(&id).unwrap().record());
    record.revoked_at = Some(world.now());
    world.gate.table().put(record);
    let (verdict, _) = world.check_key(&key, Scope::Chat);
    assert_eq!(envelope(&verdict).1["code"], "api_key_revoked");
    // Refused before the limits: the day count did not move.
    let entry = world.gate.table().find_by_id(&id).unwrap();
    let day = entry
        .limiter()
        .peek(Limits::new(2, 10).unwrap(), &world.clock)
        .day;
    assert_eq!(day.remaining, 8);
}

#[test]
fn a_key_out_of_scope_answers_403_with_its_limits_untouched() {
    let world = world();
    let key = world.key(|record| record.with_scopes(Scopes::NONE.with(Scope::Models)));
    assert!(world.check_key(&key, Scope::Models).0.is_admitted());
    for _ in 0..3 {
        let (verdict, headers) = world.check_key(&key, Scope::Chat);
        let (status, error) = envelope(&verdict);
        assert_eq!(status, 403);
        assert_eq!(error["code"], "insufficient_scope");
        assert!(error["message"].as_str().unwrap().contains("'chat'"));
        // One request spent (the models call): the refusals consumed nothing.
        assert_eq!(headers["x-ratelimit-remaining-requests"], "59");
        assert_eq!(headers["x-ratelimit-remaining-requests-day"], "999");
        assert!(!headers.contains_key("retry-after"));
    }
}

#[test]
fn an_admitted_request_carries_the_eight_headers() {
    let world = world();
    let key = world.key(|record| record);
    let (verdict, headers) = world.check_key(&key, Scope::Chat);
    assert!(verdict.is_admitted());
    assert_eq!(
        rate_limit_headers(&headers),
        [
            "60",
            "59",
            "1s",
            "1000",
            "999",
            "11h23m20s",
            "\"minute\";q=60;w=60, \"day\";q=1000;w=86400",
            "\"minute\";r=59;t=1, \"day\";r=999;t=41000",
        ]
    );
    assert_eq!(headers.len(), 8);

    // In memory the verdict is there at once, for the layer to use in place.
    let header = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).unwrap();
    let verdict = world.gate.check_if_at_once(Some(&header), Scope::Chat);
    let Some(Verdict::Admitted(admitted)) = verdict else {
        panic!("a memory gate decides at once");
    };
    assert_eq!(admitted.snapshot().minute.remaining, 58);
}

#[test]
fn the_minute_limit_answers_429_with_retry_headers() {
    let world = world();
    let key = world.key(|record| record.with_limits(Limits::new(60, 1000).unwrap()));
    for _ in 0..60 {
        assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    }
    world.clock.advance(Duration::from_millis(150));
    let (verdict, headers) = world.check_key(&key, Scope::Chat);
    let (status, error) = envelope(&verdict);
    assert_eq!(status, 429);
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["type"], "rate_limit_error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("try again in 1s")
    );
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(headers["retry-after-ms"], "850");
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert_eq!(headers["x-ratelimit-reset-requests"], "1m0s");
    assert_eq!(
        headers["ratelimit"],
        "\"minute\";r=0;t=1, \"day\";r=940;t=41000"
    );
    assert!(!headers.contains_key("x-should-retry"));
}

#[test]
fn the_day_limit_answers_429_that_clients_do_not_retry() {
    let world = world();
    let key = world.key(|record| record.with_limits(Limits::new(1, 2).unwrap()));
    assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    world.clock.advance(Duration::from_secs(60));
    assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    // Both limits refuse now: the day's refusal answers, with its wait.
    let (verdict, headers) = world.check_key(&key, Scope::Chat);
    let (status, error) = envelope(&verdict);
    assert_eq!(status, 429);
    assert_eq!(error["code"], "daily_limit_exceeded");
    // 12:37:40 is 40,940 s before midnight.
    assert_eq!(headers["retry-after"], "40940");
    assert_eq!(headers["retry-after-ms"], "40940000");
    assert_eq!(headers["x-should-retry"], "false");
    assert_eq!(headers["x-ratelimit-remaining-requests-day"], "0");
}

#[test]
fn a_key_that_stops_working_within_a_week_says_when() {
    let world = world();
    let now = world.now();
    let soon = world
        .key(|record| record.with_expiry(now + TimeDelta::days(3) + TimeDelta::milliseconds(999)));
    let (verdict, headers) = world.check_key(&soon, Scope::Chat);
    assert!(verdict.is_admitted());
    assert_eq!(headers["x-lumyx-key-expires-at"], "2026-11-30T12:36:40Z");
    // A rotated key: revoked at the end of its grace period.
    let rotating = world.key(|mut record| {
        record.revoked_at = Some(now + TimeDelta::hours(1));
        record
    });
    let (_, headers) = world.check_key(&rotating, Scope::Chat);
    assert_eq!(headers["x-lumyx-key-expires-at"], "2026-11-27T13:36:40Z");
    let later = world.key(|record| record.with_expiry(now + TimeDelta::days(8)));
    let (_, headers) = world.check_key(&later, Scope::Chat);
    assert!(!headers.contains_key("x-lumyx-key-expires-at"));
}

#[test]
fn two_threads_on_one_key_at_a_frozen_clock_admit_exactly_the_minute_limit() {
    let world = world();
    let key = world.key(|record| record.with_limits(Limits::new(1000, 10_000).unwrap()));
    let header = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).unwrap();
    let admitted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for _ in 0..10_000 {
                    if world
                        .gate
                        .check_now(Some(&header), Scope::Chat)
                        .is_admitted()
                    {
                        admitted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(admitted.into_inner(), 1000);
    let entry = world.gate.table().find_by_id(&key.id()).unwrap();
    let usage = entry.usage().usage(Timestamp::from(world.now()));
    assert_eq!(usage.today().admitted(), 1000);
    assert_eq!(usage.today().get(Counted::MinuteLimit), 19_000);
    assert_eq!(usage.totals.denied(), 19_000);
}

#[test]
fn denials_are_counted_by_reason() {
    let world = world();
    let now = world.now();
    let key = world.key(|record| {
        record
            .with_scopes(Scopes::NONE.with(Scope::Chat))
            .with_limits(Limits::new(1, 1000).unwrap())
    });
    assert!(world.check_key(&key, Scope::Chat).0.is_admitted());
    let _ = world.check_key(&key, Scope::Chat);
    let _ = world.check_key(&key, Scope::Models);
    let entry = world.gate.table().find_by_id(&key.id()).unwrap();
    let mut expired = KeyRecord::clone(entry.record());
    expired.expires_at = Some(now);
    world.gate.table().put(expired);
    let _ = world.check_key(&key, Scope::Chat);
    let entry = world.gate.table().find_by_id(&key.id()).unwrap();
    let usage = entry.usage().usage(Timestamp::from(now));
    let today = usage.today();
    assert_eq!(today.admitted(), 1);
    assert_eq!(today.get(Counted::MinuteLimit), 1);
    assert_eq!(today.get(Counted::OutOfScope), 1);
    assert_eq!(today.get(Counted::Expired), 1);
    assert_eq!(usage.last_used, Some(Timestamp::from(now)));
    // Usage survives a change of the record.
    assert_eq!(today.denied(), 3);
}

#[test]
fn refusals_name_their_reason() {
    let world = world();
    let (verdict, _) = world.check(None, Scope::Chat);
    let Verdict::Denied(denied) = verdict else {
        unreachable!()
    };
    assert_eq!(denied.refusal(), Refusal::MissingApiKey);
    assert_eq!(denied.refusal().code().as_str(), "missing_api_key");
    assert!(denied.record().is_none());
}

#[test]
fn keys_of_the_same_limits_share_one_policy_value_and_other_limits_get_their_own() {
    let table = KeyTable::new();
    let record = |key: &ApiKey, minute, day| {
        let limits = Limits::new(minute, day).unwrap();
        KeyRecord::new(key.as_key_ref(), "policy", "acct", Utc::now()).with_limits(limits)
    };
    let policy = |key: &ApiKey| {
        table
            .find_by_digest(&key.digest())
            .unwrap()
            .policy_header()
            .clone()
    };
    let text = |minute, day| format!(r#""minute";q={minute};w=60, "day";q={day};w=86400"#);
    let [first, second, other_minute, other_day] =
        [1, 2, 3, 4].map(|_| ApiKey::generate().unwrap());
    table.put(record(&first, 321, 4321));
    table.put(record(&second, 321, 4321));
    table.put(record(&other_minute, 322, 4321));
    table.put(record(&other_day, 321, 4322));
    assert_eq!(policy(&first), text(321, 4321));
    assert_eq!(policy(&other_minute), text(322, 4321));
    assert_eq!(policy(&other_day), text(321, 4322));
    // One value for both keys: the same bytes, not two copies.
    assert_eq!(
        policy(&first).as_bytes().as_ptr(),
        policy(&second).as_bytes().as_ptr()
    );
    // A key whose limits change gets the value of its new limits.
    table.put(record(&second, 322, 4321));
    assert_eq!(policy(&second), text(322, 4321));
    // Past the pairs that get a shared value, every key still gets its own
    // limits' value.
    let many = ApiKey::generate().unwrap();
    for day in 5000..10_000 {
        table.put(record(&many, 999, day));
        assert_eq!(policy(&many), text(999, day));
    }
}
