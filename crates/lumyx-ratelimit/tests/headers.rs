//! Golden tests: the header examples of SPEC §3, produced by a real limiter.

use std::time::Duration;

use lumyx_ratelimit::{GoDuration, Limits, ManualClock, MemoryLimiter, PolicySnapshot, Snapshot};

fn lines(headers: &[(&'static str, String)]) -> String {
    headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\n"))
        .collect()
}

#[test]
fn the_spec_example() {
    // 12:36:40 UTC is 41,000 s before midnight.
    let clock = ManualClock::at("2026-11-27T12:00:00Z".parse().unwrap());
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = Limits::default();
    assert!(limiter.check("key_4e58d9f4757ccfc3", limits).is_admitted());
    clock.set("2026-11-27T12:36:40Z".parse().unwrap());
    let decision = limiter.check("key_4e58d9f4757ccfc3", limits);
    assert_eq!(
        lines(&decision.headers()),
        "\
x-ratelimit-limit-requests: 60
x-ratelimit-remaining-requests: 59
x-ratelimit-reset-requests: 1s
x-ratelimit-limit-requests-day: 1000
x-ratelimit-remaining-requests-day: 998
x-ratelimit-reset-requests-day: 11h23m20s
ratelimit-policy: \"minute\";q=60;w=60, \"day\";q=1000;w=86400
ratelimit: \"minute\";r=59;t=1, \"day\";r=998;t=41000
"
    );
}

#[test]
fn a_429_adds_retry_after() {
    let clock = ManualClock::at("2026-11-27T23:54:00Z".parse().unwrap());
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = Limits::new(60, 1000).unwrap();
    for _ in 0..60 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.advance(Duration::from_millis(150));
    let denied = limiter.check("k", limits);
    assert_eq!(
        lines(&denied.headers()),
        "\
x-ratelimit-limit-requests: 60
x-ratelimit-remaining-requests: 0
x-ratelimit-reset-requests: 1m0s
x-ratelimit-limit-requests-day: 1000
x-ratelimit-remaining-requests-day: 940
x-ratelimit-reset-requests-day: 6m0s
ratelimit-policy: \"minute\";q=60;w=60, \"day\";q=1000;w=86400
ratelimit: \"minute\";r=0;t=60, \"day\";r=940;t=360
retry-after: 1
retry-after-ms: 850
"
    );
}

#[test]
fn reset_under_a_second_is_in_milliseconds() {
    let clock = ManualClock::at("2026-11-27T23:54:00Z".parse().unwrap());
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    assert!(limiter.check("k", Limits::default()).is_admitted());
    clock.advance(Duration::from_millis(150));
    let headers = limiter.peek("k", Limits::default()).headers();
    assert_eq!(
        headers[2],
        ("x-ratelimit-reset-requests", "850ms".to_string())
    );
    assert_eq!(
        headers[5],
        ("x-ratelimit-reset-requests-day", "6m0s".to_string())
    );
    assert_eq!(headers[7].1, "\"minute\";r=59;t=1, \"day\";r=999;t=360");
}

#[test]
fn go_durations_of_the_spec() {
    let go = |d: Duration| GoDuration(d).to_string();
    assert_eq!(go(Duration::from_millis(850)), "850ms");
    assert_eq!(go(Duration::from_secs(1)), "1s");
    assert_eq!(go(Duration::from_millis(1)), "1ms");
    assert_eq!(go(Duration::from_millis(1500)), "2s");
    assert_eq!(go(Duration::from_secs(360)), "6m0s");
    assert_eq!(go(Duration::from_millis(359_001)), "6m0s");
    assert_eq!(go(Duration::from_secs(41_000)), "11h23m20s");
    assert_eq!(go(Duration::ZERO), "0s");
}

#[test]
fn retry_after_is_at_least_one_second() {
    let clock = ManualClock::at("2026-11-27T10:00:00Z".parse().unwrap());
    let limiter = MemoryLimiter::<String, _>::with_clock(clock.clone());
    let limits = Limits::new(1000, 10_000).unwrap();
    for _ in 0..1000 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.advance(Duration::from_millis(59));
    let headers = limiter.check("k", limits).headers();
    assert_eq!(
        &headers[8..],
        &[
            ("retry-after", "1".to_string()),
            ("retry-after-ms", "1".to_string()),
        ]
    );
}

#[test]
fn headers_from_a_hand_made_snapshot() {
    let snapshot = Snapshot {
        minute: PolicySnapshot {
            limit: 1000,
            remaining: 0,
            reset: Duration::ZERO,
        },
        day: PolicySnapshot {
            limit: 1,
            remaining: 1,
            reset: Duration::from_secs(86_400),
        },
    };
    assert_eq!(
        lines(&snapshot.headers()),
        "\
x-ratelimit-limit-requests: 1000
x-ratelimit-remaining-requests: 0
x-ratelimit-reset-requests: 0s
x-ratelimit-limit-requests-day: 1
x-ratelimit-remaining-requests-day: 1
x-ratelimit-reset-requests-day: 24h0m0s
ratelimit-policy: \"minute\";q=1000;w=60, \"day\";q=1;w=86400
ratelimit: \"minute\";r=0;t=0, \"day\";r=1;t=86400
"
    );
}
