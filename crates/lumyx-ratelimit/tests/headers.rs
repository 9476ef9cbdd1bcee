//! Golden tests of the rate-limit headers, produced by a real limiter on a
//! manual clock: OpenAI's `x-ratelimit-reset-*` (until the bucket is full)
//! beside the IETF draft's `t` (until more quota), and the retry headers.

use std::time::Duration;

use http::HeaderMap;
use lumyx_ratelimit::{
    Decision, Denial, DeniedBy, GoDuration, Limits, ManualClock, MemoryLimiter, PolicySnapshot,
    RateLimitHeaders, Snapshot,
};

fn limiter_at(rfc3339: &str) -> (ManualClock, MemoryLimiter<String, ManualClock>) {
    let clock = ManualClock::at(rfc3339.parse().unwrap());
    (clock.clone(), MemoryLimiter::with_clock(clock))
}

#[test]
fn a_key_that_spent_one_request() {
    // 12:36:40 UTC is 41,000 s before midnight.
    let (clock, limiter) = limiter_at("2026-11-27T12:00:00Z");
    let limits = Limits::default();
    assert!(limiter.check("key_4e58d9f4757ccfc3", limits).is_admitted());
    clock.set("2026-11-27T12:36:40Z".parse().unwrap());
    let decision = limiter.check("key_4e58d9f4757ccfc3", limits);
    assert_eq!(
        decision.headers().to_string(),
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
fn ten_requests_in_one_second_reset_in_ten_seconds_but_more_quota_in_one() {
    let (clock, limiter) = limiter_at("2026-11-27T12:36:39.5Z");
    let limits = Limits::default();
    for _ in 0..10 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.set("2026-11-27T12:36:40Z".parse().unwrap());
    let headers = limiter.peek("k", limits).headers().to_header_map();
    // 10 s of debt less the half second since: 9.5 s until full, and the
    // next request regenerates in 0.5 s (rounded up to whole seconds in `t`).
    assert_eq!(headers["x-ratelimit-remaining-requests"], "50");
    assert_eq!(headers["x-ratelimit-reset-requests"], "10s");
    assert_eq!(
        headers["ratelimit"],
        "\"minute\";r=50;t=1, \"day\";r=990;t=41000"
    );
    // A full bucket has nothing to regenerate: t=0, reset 0s.
    let fresh = limiter.peek("other", limits).headers().to_header_map();
    assert_eq!(fresh["x-ratelimit-reset-requests"], "0s");
    assert_eq!(
        fresh["ratelimit"],
        "\"minute\";r=60;t=0, \"day\";r=1000;t=41000"
    );
}

#[test]
fn a_minute_refusal_retries_when_the_next_request_regenerates() {
    let (clock, limiter) = limiter_at("2026-11-27T23:54:00Z");
    let limits = Limits::new(60, 1000).unwrap();
    for _ in 0..60 {
        assert!(limiter.check("k", limits).is_admitted());
    }
    clock.advance(Duration::from_millis(150));
    let denied = limiter.check("k", limits);
    assert_eq!(
        denied.headers().to_string(),
        "\
x-ratelimit-limit-requests: 60
x-ratelimit-remaining-requests: 0
x-ratelimit-reset-requests: 1m0s
x-ratelimit-limit-requests-day: 1000
x-ratelimit-remaining-requests-day: 940
x-ratelimit-reset-requests-day: 6m0s
ratelimit-policy: \"minute\";q=60;w=60, \"day\";q=1000;w=86400
ratelimit: \"minute\";r=0;t=1, \"day\";r=940;t=360
retry-after: 1
retry-after-ms: 850
"
    );
}

#[test]
fn a_day_refusal_tells_clients_not_to_retry() {
    let (clock, limiter) = limiter_at("2026-11-27T23:54:00Z");
    let limits = Limits::new(60, 2).unwrap();
    assert!(limiter.check("k", limits).is_admitted());
    assert!(limiter.check("k", limits).is_admitted());
    clock.advance(Duration::from_millis(500));
    let denied = limiter.check("k", limits);
    assert_eq!(denied.denial().unwrap().denied_by, DeniedBy::Day);
    assert_eq!(
        denied.headers().to_string(),
        "\
x-ratelimit-limit-requests: 60
x-ratelimit-remaining-requests: 58
x-ratelimit-reset-requests: 2s
x-ratelimit-limit-requests-day: 2
x-ratelimit-remaining-requests-day: 0
x-ratelimit-reset-requests-day: 6m0s
ratelimit-policy: \"minute\";q=60;w=60, \"day\";q=2;w=86400
ratelimit: \"minute\";r=58;t=1, \"day\";r=0;t=360
retry-after: 360
retry-after-ms: 359500
x-should-retry: false
"
    );
    assert_eq!(denied.headers().should_retry(), Some(false));
    assert_eq!(denied.headers().len(), 11);
}

#[test]
fn retry_after_is_never_earlier_than_the_refusing_policys_t() {
    let (clock, limiter) = limiter_at("2026-11-27T10:00:00Z");
    for rpm in [1, 7, 60, 999, 1000] {
        let limits = Limits::new(rpm, 10_000).unwrap();
        let key = format!("k{rpm}");
        while limiter.check(&key, limits).is_admitted() {}
        for step in 0..50 {
            clock.advance(Duration::from_micros(1_234_567 * step % 3_000_000));
            let decision = limiter.check(&key, limits);
            let Some(denial) = decision.denial() else {
                continue;
            };
            let headers = decision.headers();
            let t = denial.snapshot.minute.next_quota_in;
            let t_secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            assert!(
                headers.retry_after_secs().unwrap() >= t_secs.max(1),
                "rpm {rpm}"
            );
            assert_eq!(
                denial.retry_after, t,
                "rpm {rpm}: retry when the next request regenerates"
            );
        }
    }
}

#[test]
fn reset_under_a_second_is_in_milliseconds() {
    let (clock, limiter) = limiter_at("2026-11-27T23:54:00Z");
    assert!(limiter.check("k", Limits::default()).is_admitted());
    clock.advance(Duration::from_millis(150));
    let headers = limiter.peek("k", Limits::default()).headers();
    let map = headers.to_header_map();
    assert_eq!(map[RateLimitHeaders::RESET_REQUESTS], "850ms");
    assert_eq!(map[RateLimitHeaders::RESET_REQUESTS_DAY], "6m0s");
    assert_eq!(
        map[RateLimitHeaders::RATELIMIT],
        "\"minute\";r=59;t=1, \"day\";r=999;t=360"
    );
    assert_eq!(headers.retry_after_secs(), None);
    assert_eq!(map.len(), 8);
}

#[test]
fn go_durations_of_openai() {
    for (duration, text) in [
        (Duration::from_millis(850), "850ms"),
        (Duration::from_secs(1), "1s"),
        (Duration::from_secs(360), "6m0s"),
        (Duration::from_secs(41_000), "11h23m20s"),
    ] {
        assert_eq!(GoDuration(duration).to_string(), text);
    }
}

#[test]
fn retry_after_is_at_least_one_second_and_one_millisecond() {
    let snapshot = Snapshot {
        minute: PolicySnapshot {
            limit: 1000,
            remaining: 0,
            reset: Duration::from_secs(60),
            next_quota_in: Duration::from_micros(10),
        },
        day: PolicySnapshot {
            limit: 10,
            remaining: 5,
            reset: Duration::from_secs(10),
            next_quota_in: Duration::from_secs(10),
        },
    };
    let decision = Decision::Denied(Denial {
        denied_by: DeniedBy::Minute,
        retry_after: Duration::from_micros(10),
        snapshot,
    });
    let mut map = HeaderMap::new();
    map.insert("x-request-id", "req_1".parse().unwrap());
    decision.headers().write_to(&mut map);
    assert_eq!(map["retry-after"], "1");
    assert_eq!(map["retry-after-ms"], "1");
    assert_eq!(map["ratelimit"], "\"minute\";r=0;t=1, \"day\";r=5;t=10");
    assert!(!map.contains_key("x-should-retry"));
    // What was there stays; the rate-limit headers are added.
    assert_eq!(map["x-request-id"], "req_1");
    assert_eq!(map.len(), 11);
}

#[test]
fn writing_twice_replaces_the_values() {
    let (clock, limiter) = limiter_at("2026-11-27T12:00:00Z");
    let limits = Limits::default();
    let mut map = HeaderMap::new();
    limiter.check("k", limits).headers().write_to(&mut map);
    clock.advance(Duration::from_secs(10));
    limiter.check("k", limits).headers().write_to(&mut map);
    assert_eq!(map.len(), 8);
    assert_eq!(
        map.get_all("x-ratelimit-remaining-requests")
            .iter()
            .collect::<Vec<_>>(),
        ["59"]
    );
}

#[test]
fn what_the_map_held_stays_unless_written_here() {
    let (_clock, limiter) = limiter_at("2026-11-27T12:00:00Z");
    let mut map = HeaderMap::new();
    map.insert("content-type", "application/json".parse().unwrap());
    map.append("set-cookie", "a=1".parse().unwrap());
    map.append("set-cookie", "b=2".parse().unwrap());
    // Admitted: no retry headers are written, so the service's own stays.
    map.insert("retry-after", "120".parse().unwrap());
    map.append("x-ratelimit-remaining-requests", "stale".parse().unwrap());
    map.append("x-ratelimit-remaining-requests", "staler".parse().unwrap());
    limiter
        .check("k", Limits::default())
        .headers()
        .write_to(&mut map);
    assert_eq!(map["content-type"], "application/json");
    assert_eq!(
        map.get_all("set-cookie").iter().collect::<Vec<_>>(),
        ["a=1", "b=2"]
    );
    assert_eq!(map["retry-after"], "120");
    assert_eq!(
        map.get_all("x-ratelimit-remaining-requests")
            .iter()
            .collect::<Vec<_>>(),
        ["59"]
    );
    assert_eq!(map.keys_len(), 11);
    assert_eq!(map.len(), 12);
}

#[test]
fn a_map_of_many_values_under_one_name_keeps_them_all() {
    // `http` bounds a map's distinct names, not its values: room for the
    // values themselves (a regression) would overflow its size and panic.
    let (_clock, limiter) = limiter_at("2026-11-27T12:00:00Z");
    let mut map = HeaderMap::new();
    for i in 0..25_000 {
        map.append("set-cookie", i.to_string().parse().unwrap());
    }
    limiter
        .check("k", Limits::default())
        .headers()
        .write_to(&mut map);
    assert_eq!(map.get_all("set-cookie").iter().count(), 25_000);
    assert_eq!(map.len(), 25_008);
}
