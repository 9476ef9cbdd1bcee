//! The Redis limiter against a real `redis-server` (skipped with a note when
//! none is installed, unless LUMYX_REQUIRE_REDIS=1).
#![cfg(feature = "redis")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lumyx_ratelimit::{
    Backend, Clock, Decision, Denial, DeniedBy, Error, Limits, ManualClock, OutagePolicy,
    RedisLimiter, Timestamp,
};
use lumyx_test_support::RedisServer;
use redis::AsyncCommands;

/// A test that stops its server frees the server's port until it restarts
/// it. `RedisServer` keeps such a port from other servers, but the listeners
/// some tests bind themselves (port 0) could still be given it. Tests that
/// stop a server therefore run alone; the others, which only start servers or
/// bind ports, run together.
static PORTS: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

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
    RedisLimiter::builder(server.url().parse().unwrap())
        .clock(clock.clone())
        .outage_policy(OutagePolicy::Closed)
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_rpm_at_one_instant_then_one_per_interval() {
    let _ports = PORTS.read().await;
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
    let _ports = PORTS.read().await;
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

    // One key, in its hash tag, living until a minute past midnight.
    let mut raw = raw(&server).await;
    let ttl: i64 = raw.pttl("lumyx:rl:{k}").await.unwrap();
    assert!(ttl > 86_400_000 && ttl <= 86_460_000, "{ttl}");
    let keys: Vec<String> = raw.keys("*").await.unwrap();
    assert_eq!(keys, ["lumyx:rl:{k}"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_step_back_gives_nothing_back_and_costs_at_most_one_bucket() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis step back") else {
        return;
    };
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = with_clock(&server, &clock).await;
    let limits = Limits::default();
    for _ in 0..60 {
        assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    }
    // Back 30 s for one decision, then forward again: nothing given back.
    clock.set("2026-11-27T11:59:30Z".parse().unwrap());
    assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
    clock.set("2026-11-27T12:00:00Z".parse().unwrap());
    for _ in 0..30 {
        assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
    }
    // Back an hour, and staying there: refused for one bucket, then a full one.
    clock.set("2026-11-27T11:00:00Z".parse().unwrap());
    let denied = denial(limiter.check("k", limits).await.unwrap());
    assert_eq!(denied.denied_by, DeniedBy::Minute);
    assert_eq!(denied.retry_after, Duration::from_secs(60));
    assert_eq!(denied.snapshot.minute.reset, Duration::from_secs(60));
    let peeked = limiter.peek("k", limits).await.unwrap();
    assert_eq!(peeked.minute.reset, Duration::from_secs(60));
    clock.advance(Duration::from_secs(59));
    assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
    clock.advance(Duration::from_secs(1));
    let admitted = limiter.check("k", limits).await.unwrap();
    assert!(admitted.is_admitted());
    assert_eq!(admitted.snapshot().minute.remaining, 59);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_back_record_does_not_outlive_the_clock_coming_back() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis stale step back") else {
        return;
    };
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = with_clock(&server, &clock).await;
    let limits = limits(60, 1000);
    for _ in 0..60 {
        assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    }
    for at in [
        "2026-11-27T11:58:20Z",
        "2026-11-27T12:00:00Z",
        "2026-11-27T11:59:20Z",
    ] {
        clock.set(at.parse().unwrap());
        assert!(
            !limiter.check("k", limits).await.unwrap().is_admitted(),
            "{at}"
        );
    }
    for _ in 0..60 {
        assert!(!limiter.check("k", limits).await.unwrap().is_admitted());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_back_across_midnight_never_goes_back_a_day() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis step back midnight") else {
        return;
    };
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = with_clock(&server, &clock).await;
    let limits = limits(1000, 2);
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    clock.set("2026-11-28T00:00:00.001Z".parse().unwrap());
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());
    clock.set("2026-11-27T23:59:59.999Z".parse().unwrap());
    let late = limiter.check("k", limits).await.unwrap();
    assert!(late.is_admitted());
    assert_eq!(late.snapshot().day.remaining, 0);
    assert_eq!(late.snapshot().day.reset, Duration::from_secs(86_400));
    clock.set("2026-11-28T00:00:00.100Z".parse().unwrap());
    for _ in 0..2 {
        let denied = denial(limiter.check("k", limits).await.unwrap());
        assert_eq!(denied.denied_by, DeniedBy::Day);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_key_gets_its_own_hash_tag() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis key tags") else {
        return;
    };
    let clock = at("2026-11-27T12:00:00Z");
    let limiter = with_clock(&server, &clock).await;
    let keys = ["", "%", "a{b}", "}", "{", "{}", "%7B", "a}{b", "k"];
    let limits = limits(1, 1000);
    for key in keys {
        assert!(
            limiter.check(key, limits).await.unwrap().is_admitted(),
            "{key:?}"
        );
    }
    // Independent: each key has used exactly its own one request.
    for key in keys {
        let denied = denial(limiter.check(key, limits).await.unwrap());
        assert_eq!(denied.snapshot.day.remaining, 999, "{key:?}");
    }
    let mut redis_keys: Vec<String> = raw(&server).await.keys("*").await.unwrap();
    redis_keys.sort();
    assert_eq!(redis_keys.len(), keys.len());
    for redis_key in &redis_keys {
        // The hash tag is everything between the first `{` and the next `}`:
        // non-empty, and the whole escaped key.
        let rest = redis_key.strip_prefix("lumyx:rl:{").unwrap();
        let tag = rest.strip_suffix('}').unwrap();
        assert!(!tag.is_empty() && !tag.contains(['{', '}']), "{redis_key}");
    }
    assert_eq!(limiter.redis_key("a}{b"), "lumyx:rl:{a%7D%7Bb}");
    let prefixed = RedisLimiter::builder(server.url().parse().unwrap())
        .key_prefix("x{y}:")
        .connect()
        .await
        .unwrap();
    assert_eq!(prefixed.redis_key("k"), "x%7By%7D:{k}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_the_memory_limiter_step_by_step() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis matches memory") else {
        return;
    };
    let clock = at("2026-11-27T23:58:30Z");
    let redis = with_clock(&server, &clock).await;
    // Redis keeps idle keys until their TTL (in real time); memory must not
    // forget them earlier, or a step back would find them fresh.
    let memory = lumyx_ratelimit::MemoryLimiter::<String, _>::with_clock(clock.clone())
        .with_daily_sweeps(false);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..600 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = format!("k{}", seed % 3);
        let limits = limits(1 + (seed >> 8) as u32 % 12, 1 + (seed >> 20) as u32 % 40);
        if seed.is_multiple_of(4) {
            clock.advance(Duration::from_micros((seed >> 32) % 9_000_000));
        } else if seed % 16 == 1 || seed % 16 == 5 {
            // A step back, up to a little over an hour: the guards of both
            // backends must agree.
            let back = (seed >> 32) % 4_000_000_000;
            let now = clock.now().unix_micros() - back;
            clock.set(Timestamp::from_unix_micros(now).to_utc());
        }
        let from_memory = memory.check(&key, limits);
        let from_redis = redis.check(&key, limits).await.unwrap();
        assert_eq!(from_redis, from_memory);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_time_burst_admits_exactly_rpm() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis burst") else {
        return;
    };
    let limiter = RedisLimiter::builder(server.url().parse().unwrap())
        .outage_policy(OutagePolicy::Closed)
        .connect()
        .await
        .unwrap();
    // 5 per minute: a token every 12 s, far longer than the burst takes.
    let limits = limits(5, 1000);
    let mut raw = raw(&server).await;
    let redis_day = |time: (u64, u64)| time.0 / 86_400;
    let day_before: (u64, u64) = redis::cmd("TIME").query_async(&mut raw).await.unwrap();
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
    // The day's count, by Redis's clock: exact unless the burst crossed
    // Redis's midnight, which splits it over two days.
    let day_after: (u64, u64) = redis::cmd("TIME").query_async(&mut raw).await.unwrap();
    let (day, count): (u64, u32) = redis::cmd("HMGET")
        .arg("lumyx:rl:{burst}")
        .arg("d")
        .arg("c")
        .query_async(&mut raw)
        .await
        .unwrap();
    if redis_day(day_before) == redis_day(day_after) {
        assert_eq!(day, redis_day(day_after));
        assert_eq!(count, 5);
    } else {
        assert!((1..=5).contains(&count), "{count}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_together_admit_exactly_rpm() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis two clients") else {
        return;
    };
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(Arc::new(
            RedisLimiter::builder(server.url().parse().unwrap())
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
        let exists: bool = raw.exists(format!("lumyx:rl:{{{key}}}")).await.unwrap();
        if exists {
            assert!(!limiter.is_degraded());
            return;
        }
        assert!(Instant::now() < deadline, "Redis was not used again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn outage_limiter(server: &RedisServer, policy: OutagePolicy) -> RedisLimiter {
    RedisLimiter::builder(server.url().parse().unwrap())
        .outage_policy(policy)
        .timeout(Duration::from_millis(300))
        .probe_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fallback_decides_locally_then_recovers() {
    let _ports = PORTS.write().await;
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
    let _ports = PORTS.write().await;
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
    let _ports = PORTS.write().await;
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
    let _ports = PORTS.read().await;
    // A listener that accepts and never replies: the timeout must apply.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let limiter = RedisLimiter::builder(url.parse().unwrap())
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
async fn no_debug_output_shows_the_redis_password() {
    let url: lumyx_redis::RedisUrl = "redis://:hunter2@127.0.0.1:1/".parse().unwrap();
    let builder = RedisLimiter::builder(url).timeout(Duration::from_millis(10));
    let shown = format!("{builder:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis://:***@127.0.0.1:1/"), "{shown}");
    let limiter = builder.connect().await.unwrap();
    let shown = format!("{limiter:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("redis://:***@127.0.0.1:1/"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_one_request_probes_a_redis_that_is_down() {
    let _ports = PORTS.read().await;
    // A listener that accepts and never replies: every probe waits out the
    // timeout, so a request that probes is easy to tell from one that does not.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let timeout = Duration::from_millis(400);
    let limiter = Arc::new(
        RedisLimiter::builder(url.parse().unwrap())
            .outage_policy(OutagePolicy::Closed)
            .timeout(timeout)
            .probe_interval(Duration::from_millis(50))
            .connect()
            .await
            .unwrap(),
    );
    assert!(limiter.check("k", Limits::default()).await.is_err());
    assert!(limiter.is_degraded());
    for round in 0..3 {
        // Past the probe interval: the next requests may probe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let limiter = Arc::clone(&limiter);
            tasks.push(tokio::spawn(async move {
                let started = Instant::now();
                let result = limiter.check("k", Limits::default()).await;
                assert!(
                    matches!(result, Err(Error::Unavailable { .. })),
                    "{result:?}"
                );
                started.elapsed()
            }));
        }
        let mut waited = 0;
        for task in tasks {
            waited += u32::from(task.await.unwrap() >= timeout / 2);
        }
        assert_eq!(waited, 1, "round {round}: requests that waited for Redis");
    }
    drop(listener);
}

/// A TCP proxy to Redis that, once armed, closes the client's connection just
/// before passing on its next `EVALSHA`: Redis runs the script, and the reply
/// is lost.
fn reply_losing_proxy(upstream: u16) -> (String, Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", listener.local_addr().unwrap());
    let armed = Arc::new(AtomicBool::new(false));
    let arm = Arc::clone(&armed);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                return;
            };
            let (mut server_read, mut client_write) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server_read, &mut client_write);
                let _ = client_write.shutdown(Shutdown::Both);
            });
            let armed = Arc::clone(&arm);
            std::thread::spawn(move || {
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk = &buf[..n];
                    if chunk.windows(7).any(|w| w.eq_ignore_ascii_case(b"EVALSHA"))
                        && armed.swap(false, Ordering::SeqCst)
                    {
                        let _ = client.shutdown(Shutdown::Both);
                        let _ = server.write_all(chunk);
                        break;
                    }
                    if server.write_all(chunk).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (url, armed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_reply_is_not_sent_again() {
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis lost reply") else {
        return;
    };
    let (url, armed) = reply_losing_proxy(server.port());
    let limiter = RedisLimiter::builder(url.parse().unwrap())
        .outage_policy(OutagePolicy::Closed)
        .timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap();
    let limits = limits(10, 1000);
    // Connects and loads the script.
    assert!(
        limiter
            .check("warm-up", limits)
            .await
            .unwrap()
            .is_admitted()
    );

    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    // Redis counts the request but the reply is lost: the limiter cannot
    // tell, so it must not send the request again.
    let lost = limiter.check("k", limits).await;
    assert!(matches!(lost, Err(Error::Unavailable { .. })), "{lost:?}");
    let mut raw = raw(&server).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let count: u32 = loop {
        let count: Option<u32> = raw.hget("lumyx:rl:{k}", "c").await.unwrap();
        if let Some(count) = count {
            break count;
        }
        assert!(Instant::now() < deadline, "the script never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again: u32 = raw.hget("lumyx:rl:{k}", "c").await.unwrap();
    assert_eq!((count, again), (1, 1), "one request, counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_is_counted_with_the_decision_and_matches_memory() {
    use lumyx_ratelimit::{Counted, UsageCounter};
    let _ports = PORTS.read().await;
    let Some(server) = RedisServer::start_or_skip("redis usage") else {
        return;
    };
    let clock = at("2026-11-27T23:50:00Z");
    let limiter = with_clock(&server, &clock).await;
    let memory = UsageCounter::default();
    let limits = limits(3, 5);
    let mut raw = raw(&server).await;
    // The first call loads the script (a refused EVALSHA, then SCRIPT LOAD).
    let _ = limiter.peek("warm-up", limits).await.unwrap();
    let calls_before = evalsha_calls(&mut raw).await;
    // Two days: the first ends with a minute refusal and a day refusal.
    for step in 0..14 {
        if step == 9 {
            clock.set("2026-11-28T00:00:30Z".parse().unwrap());
        }
        let decision = limiter.check_counted("k", limits).await.unwrap();
        memory.count(Counted::of(&decision), clock.now());
        if step % 3 == 2 {
            clock.advance(Duration::from_secs(60));
        }
    }
    for what in [Counted::Revoked, Counted::OutOfScope, Counted::Expired] {
        let snapshot = limiter.peek_counted("k", limits, what).await.unwrap();
        assert_eq!(snapshot.minute.limit, 3);
        memory.count(what, clock.now());
    }
    // One script call each, usage included.
    assert_eq!(evalsha_calls(&mut raw).await - calls_before, 17);

    let from_redis = limiter.usage("k").await.unwrap();
    let from_memory = memory.usage(clock.now());
    assert_eq!(from_redis, from_memory);
    let today = from_redis.today();
    assert_eq!(today.get(Counted::Revoked), 1);
    assert_eq!(from_redis.days.len(), 31);
    assert_eq!(from_redis.days[29].date().to_string(), "2026-11-27");
    assert_eq!(from_redis.days[29].counts.admitted(), 5);
    assert_eq!(from_redis.days[29].counts.get(Counted::DayLimit), 4);
    assert_eq!(
        from_redis.totals.admitted() + from_redis.totals.denied(),
        17
    );
    assert!(from_redis.last_used.is_some());
    // A key never counted has empty usage, every day present.
    let empty = limiter.usage("never").await.unwrap();
    assert_eq!(empty.days.len(), 31);
    assert_eq!(empty.totals, lumyx_ratelimit::Counts::default());
    assert_eq!(empty.last_used, None);
}

/// Calls of `EVALSHA` so far, from `INFO commandstats`.
async fn evalsha_calls(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}
