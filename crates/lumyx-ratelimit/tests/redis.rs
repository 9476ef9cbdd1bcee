//! The Redis limiter against a real `redis-server` (skipped with a note when
//! none is installed, unless LUMYX_REQUIRE_REDIS=1).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lumyx_ratelimit::{
    Backend, Decision, Denial, DeniedBy, Error, Limits, ManualClock, OutagePolicy, RedisLimiter,
};
use lumyx_test_support::RedisServer;
use redis::AsyncCommands;

fn limits(rpm: u32, daily: u32) -> Limits {
    Limits::new(rpm, daily).unwrap()
}

fn at(rfc3339: &str) -> ManualClock {
    ManualClock::at(rfc3339.parse::<DateTime<Utc>>().unwrap())
}

fn denial(decision: Decision) -> Denial {
    match decision {
        Decision::Denied(denial) => denial,
        Decision::Admitted(snapshot) => panic!("expected a denial, got admitted with {snapshot:?}"),
    }
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn with_clock(server: &RedisServer, clock: &ManualClock) -> RedisLimiter {
    RedisLimiter::builder(server.url())
        .clock(clock.clone())
        .outage_policy(OutagePolicy::Closed)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_rpm_at_one_instant_then_one_per_interval() {
    let Some(server) = RedisServer::start_or_skip("redis exactly_rpm") else {
        return;
    };
    for rpm in [1, 5, 7, 60, 1000] {
        let clock = at("2026-11-27T10:00:00Z");
        let limiter = with_clock(&server, &clock).await;
        let key = format!("rpm-{rpm}");
        let limits = limits(rpm, 10_000);
        for i in 0..rpm {
            let decision = limiter.check(&key, limits).await.unwrap();
            assert!(decision.is_admitted(), "rpm {rpm}: request {i} denied");
            assert_eq!(decision.snapshot().minute.remaining, rpm - i - 1);
        }
        let interval = Duration::from_micros(60_000_000 / u64::from(rpm));
        let denied = denial(limiter.check(&key, limits).await.unwrap());
        assert_eq!(denied.denied_by, DeniedBy::Minute);
        assert_eq!(denied.retry_after, interval, "rpm {rpm}");
        assert_eq!(denied.snapshot.day.remaining, 10_000 - rpm);

        clock.advance(interval - Duration::from_micros(1));
        let denied = denial(limiter.check(&key, limits).await.unwrap());
        assert_eq!(denied.retry_after, Duration::from_micros(1), "rpm {rpm}");
        clock.advance(Duration::from_micros(1));
        assert!(limiter.check(&key, limits).await.unwrap().is_admitted());
        assert!(!limiter.check(&key, limits).await.unwrap().is_admitted());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_are_exact_reset_at_midnight_and_denials_consume_nothing() {
    let Some(server) = RedisServer::start_or_skip("redis days") else {
        return;
    };
    let clock = at("2026-11-27T23:50:00Z");
    let limiter = with_clock(&server, &clock).await;
    let limits = limits(2, 4);
    // Across minutes: exactly the daily limit.
    for _ in 0..4 {
        assert!(limiter.check("k", limits).await.unwrap().is_admitted());
        clock.advance(Duration::from_secs(60));
    }
    let denied = denial(limiter.check("k", limits).await.unwrap());
    assert_eq!(denied.denied_by, DeniedBy::Day);
    assert_eq!(denied.retry_after, Duration::from_secs(6 * 60));
    assert_eq!(denied.snapshot.minute.remaining, 2);

    // A day denial consumed no minute token: two are still there at midnight.
    clock.set("2026-11-28T00:00:00Z".parse().unwrap());
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    let admitted = limiter.check("k", limits).await.unwrap();
    assert!(admitted.is_admitted());
    assert_eq!(admitted.snapshot().day.remaining, 2);
    assert_eq!(admitted.snapshot().day.reset, Duration::from_secs(86_400));

    // A minute denial consumes no day: still two left after many denials.
    for _ in 0..20 {
        let denied = denial(limiter.check("k", limits).await.unwrap());
        assert_eq!(denied.denied_by, DeniedBy::Minute);
    }
    assert_eq!(limiter.peek("k", limits).await.unwrap().day.remaining, 2);

    // Both keys exist, in one hash tag, with TTLs.
    let mut raw = raw(&server).await;
    let day_ttl: i64 = raw.pttl("lumyx:rl:{k}:d:20261128").await.unwrap();
    assert!(day_ttl > 86_400_000 && day_ttl <= 86_460_000, "{day_ttl}");
    let minute_ttl: i64 = raw.pttl("lumyx:rl:{k}:m").await.unwrap();
    assert!(minute_ttl > 0 && minute_ttl <= 60_000, "{minute_ttl}");
    let old_day: i64 = raw.pttl("lumyx:rl:{k}:d:20261127").await.unwrap();
    assert!(
        old_day > 0,
        "yesterday's count expires on its own, {old_day}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_the_memory_limiter_step_by_step() {
    let Some(server) = RedisServer::start_or_skip("redis matches memory") else {
        return;
    };
    let clock = at("2026-11-27T23:58:30Z");
    let redis = with_clock(&server, &clock).await;
    let memory = lumyx_ratelimit::MemoryLimiter::<String, _>::with_clock(clock.clone());
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..600 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = format!("k{}", seed % 3);
        let limits = limits(1 + (seed >> 8) as u32 % 12, 1 + (seed >> 20) as u32 % 40);
        if seed.is_multiple_of(4) {
            clock.advance(Duration::from_micros((seed >> 32) % 9_000_000));
        }
        let from_memory = memory.check(&key, limits);
        let from_redis = redis.check(&key, limits).await.unwrap();
        assert_eq!(from_redis, from_memory);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_time_burst_admits_exactly_rpm() {
    let Some(server) = RedisServer::start_or_skip("redis burst") else {
        return;
    };
    let limiter = RedisLimiter::builder(server.url())
        .outage_policy(OutagePolicy::Closed)
        .connect()
        .await
        .unwrap();
    // 5 per minute: a token every 12 s, far longer than the burst takes.
    let limits = limits(5, 1000);
    let mut admitted = 0;
    let mut last = None;
    for _ in 0..20 {
        let decision = limiter.check("burst", limits).await.unwrap();
        admitted += u32::from(decision.is_admitted());
        last = Some(decision);
    }
    assert_eq!(admitted, 5);
    let denied = denial(last.unwrap());
    assert!(
        denied.retry_after > Duration::from_secs(10)
            && denied.retry_after <= Duration::from_secs(12),
        "{:?}",
        denied.retry_after
    );
    let today = Utc::now().format("%Y%m%d").to_string();
    let count: i64 = raw(&server)
        .await
        .get(format!("lumyx:rl:{{burst}}:d:{today}"))
        .await
        .unwrap();
    assert_eq!(count, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_together_admit_exactly_rpm() {
    let Some(server) = RedisServer::start_or_skip("redis two clients") else {
        return;
    };
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(Arc::new(
            RedisLimiter::builder(server.url())
                .outage_policy(OutagePolicy::Closed)
                .connect()
                .await
                .unwrap(),
        ));
    }
    let limits = limits(10, 1000);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = clients[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            client.check("shared", limits).await.unwrap().is_admitted()
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += u32::from(task.await.unwrap());
    }
    assert_eq!(admitted, 10);
}

/// Waits (with a deadline) until the limiter decides in Redis again.
async fn until_redis_used(server: &RedisServer, limiter: &RedisLimiter, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut raw = raw(server).await;
    loop {
        let _ = limiter.check(key, limits(1000, 10_000)).await;
        let exists: bool = raw.exists(format!("lumyx:rl:{{{key}}}:m")).await.unwrap();
        if exists {
            assert!(!limiter.is_degraded());
            return;
        }
        assert!(Instant::now() < deadline, "Redis was not used again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outage_limiter(server: &RedisServer, policy: OutagePolicy) -> RedisLimiter {
    RedisLimiter::builder(server.url())
        .outage_policy(policy)
        .timeout(Duration::from_millis(300))
        .probe_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fallback_decides_locally_then_recovers() {
    let Some(mut server) = RedisServer::start_or_skip("redis outage fallback") else {
        return;
    };
    let limiter = outage_limiter(&server, OutagePolicy::Fallback).await;
    let limits = limits(3, 1000);
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    server.stop();

    // The local limiter knows nothing of Redis's count: three fresh tokens.
    let started = Instant::now();
    let mut admitted = 0;
    for _ in 0..10 {
        let decision = limiter.check("k", limits).await.unwrap();
        admitted += u32::from(decision.is_admitted());
    }
    assert_eq!(admitted, 3);
    assert!(limiter.is_degraded());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    server.restart().unwrap();
    until_redis_used(&server, &limiter, "after").await;
    // Redis restarted empty: decisions count there again.
    let mut admitted = 0;
    for _ in 0..10 {
        admitted += u32::from(limiter.check("k", limits).await.unwrap().is_admitted());
    }
    assert_eq!(admitted, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_open_admits_then_recovers() {
    let Some(mut server) = RedisServer::start_or_skip("redis outage open") else {
        return;
    };
    let limiter = outage_limiter(&server, OutagePolicy::Open).await;
    let limits = limits(1, 1000);
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
    server.stop();
    let started = Instant::now();
    for _ in 0..10 {
        let decision = limiter.check("k", limits).await.unwrap();
        assert!(decision.is_admitted());
        assert_eq!(decision.snapshot().minute.remaining, 1);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.restart().unwrap();
    until_redis_used(&server, &limiter, "after").await;
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_closed_is_an_error_then_recovers() {
    let Some(mut server) = RedisServer::start_or_skip("redis outage closed") else {
        return;
    };
    let limiter = outage_limiter(&server, OutagePolicy::Closed).await;
    let limits = limits(10, 1000);
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    server.stop();
    let started = Instant::now();
    for _ in 0..10 {
        let err = limiter.check("k", limits).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert!(limiter.peek("k", limits).await.is_err());
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    server.restart().unwrap();
    until_redis_used(&server, &limiter, "after").await;
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out() {
    // A listener that accepts and never replies: the timeout must apply.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let limiter = RedisLimiter::builder(url)
        .outage_policy(OutagePolicy::Closed)
        .timeout(Duration::from_millis(200))
        .connect()
        .await
        .unwrap();
    let started = Instant::now();
    assert!(limiter.check("k", Limits::default()).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn a_bad_url_is_refused() {
    let err = RedisLimiter::builder("http://nope")
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err:?}");
}
