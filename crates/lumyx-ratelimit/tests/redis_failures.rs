//! How the Redis limiter meets each class of Redis failure, provoked on a
//! real `redis-server`: Redis cannot serve now (`OOM`, `BUSY`, `READONLY`),
//! one key's data is wrong (`WRONGTYPE`), and a reply that comes too late
//! (`CLIENT PAUSE`), whose decision must never take effect afterwards.
#![cfg(feature = "redis")]

use std::error::Error as _;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lumyx_ratelimit::{Error, Limits, OutagePolicy, RedisLimiter};
use lumyx_test_support::RedisServer;
use redis::AsyncCommands;
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged on this thread while the guard lives.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn limiter(url: String, policy: OutagePolicy) -> RedisLimiter {
    RedisLimiter::builder(url.parse().unwrap())
        .outage_policy(policy)
        .timeout(Duration::from_millis(250))
        .probe_interval(Duration::from_millis(50))
        .connect()
        .await
        .unwrap()
}

/// The whole chain of causes of an error, as text.
fn causes(err: &Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(" <- ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs one command, which must succeed.
async fn run(connection: &mut redis::aio::MultiplexedConnection, words: &[&str]) {
    let _: redis::Value = redis::cmd(words[0])
        .arg(&words[1..])
        .query_async(connection)
        .await
        .unwrap();
}

async fn count_in_redis(server: &RedisServer, key: &str) -> Option<u32> {
    raw(server)
        .await
        .hget(format!("lumyx:rl:{{{key}}}"), "c")
        .await
        .unwrap()
}

#[tokio::test]
async fn out_of_memory_applies_the_outage_policy_with_a_warning() {
    let Some(server) = RedisServer::start_or_skip("redis OOM") else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let limiter = limiter(server.url(), OutagePolicy::Closed).await;
    let limits = Limits::new(60, 1000).unwrap();
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());

    let mut raw = raw(&server).await;
    run(
        &mut raw,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    )
    .await;
    run(&mut raw, &["CONFIG", "SET", "maxmemory", "1"]).await;
    let err = limiter.check("k", limits).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(causes(&err).contains("OOM"), "{}", causes(&err));
    assert!(limiter.is_degraded());
    let logged = logs.text();
    assert!(
        logged.contains("WARN") && logged.contains("cannot serve") && logged.contains("OOM"),
        "{logged}"
    );

    // Memory back: after the probe interval Redis decides again, and its
    // count went on from where it was.
    run(&mut raw, &["CONFIG", "SET", "maxmemory", "0"]).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let decision = limiter.check("k", limits).await.unwrap();
    assert_eq!(decision.snapshot().day.remaining, 998);
    assert!(!limiter.is_degraded());
}

#[tokio::test]
async fn one_keys_wrong_type_fails_that_decision_alone() {
    let Some(server) = RedisServer::start_or_skip("redis WRONGTYPE") else {
        return;
    };
    let (logs, _guard) = Logs::capture();
    let limiter = limiter(server.url(), OutagePolicy::Fallback).await;
    let limits = Limits::new(60, 1000).unwrap();
    let mut raw = raw(&server).await;
    let _: () = raw.set("lumyx:rl:{bad}", "not a hash").await.unwrap();

    for _ in 0..3 {
        let err = limiter.check("bad", limits).await.unwrap_err();
        assert!(matches!(err, Error::Failed { .. }), "{err:?}");
        assert!(causes(&err).contains("WRONGTYPE"), "{}", causes(&err));
    }
    // Nothing is marked down: the other keys are decided in Redis.
    assert!(!limiter.is_degraded());
    for _ in 0..3 {
        assert!(limiter.check("good", limits).await.unwrap().is_admitted());
    }
    assert_eq!(count_in_redis(&server, "good").await, Some(3));
    let logged = logs.text();
    assert!(
        logged.contains("ERROR") && logged.contains("WRONGTYPE"),
        "{logged}"
    );
    assert!(!logged.contains("WARN"), "{logged}");
}

#[tokio::test]
async fn a_read_only_replica_applies_the_outage_policy() {
    let Some(primary) = RedisServer::start_or_skip("redis READONLY") else {
        return;
    };
    let replica = primary.start_replica("redis READONLY replica");
    let (logs, _guard) = Logs::capture();
    let limiter = limiter(replica.url(), OutagePolicy::Fallback).await;
    let limits = Limits::new(2, 1000).unwrap();
    // Decided locally: the fallback's own bucket of 2.
    let admitted = [
        limiter.check("k", limits).await.unwrap().is_admitted(),
        limiter.check("k", limits).await.unwrap().is_admitted(),
        limiter.check("k", limits).await.unwrap().is_admitted(),
    ];
    assert_eq!(admitted, [true, true, false]);
    assert!(limiter.is_degraded());
    let logged = logs.text();
    assert!(
        logged.contains("WARN") && logged.contains("READONLY"),
        "{logged}"
    );
}

#[tokio::test]
async fn a_script_that_keeps_redis_busy_applies_the_outage_policy() {
    let Some(server) = RedisServer::start_or_skip("redis BUSY") else {
        return;
    };
    let mut raw_connection = raw(&server).await;
    run(
        &mut raw_connection,
        &["CONFIG", "SET", "busy-reply-threshold", "20"],
    )
    .await;
    let limiter = limiter(server.url(), OutagePolicy::Closed).await;
    let limits = Limits::default();
    assert!(limiter.check("k", limits).await.unwrap().is_admitted());

    // Another client runs a script that never ends, on its own connection.
    let mut looping = raw(&server).await;
    let runaway = tokio::spawn(async move {
        let _: redis::RedisResult<redis::Value> = redis::cmd("EVAL")
            .arg(&["while true do end", "0"][..])
            .query_async(&mut looping)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (logs, guard) = Logs::capture();
    let err = limiter.check("k", limits).await.unwrap_err();
    drop(guard);
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(causes(&err).contains("BUSY"), "{}", causes(&err));
    assert!(logs.text().contains("WARN"), "{}", logs.text());

    let mut killer = raw(&server).await;
    run(&mut killer, &["SCRIPT", "KILL"]).await;
    runaway.await.unwrap();
}

#[tokio::test]
async fn a_decision_that_timed_out_never_counts_later() {
    let Some(server) = RedisServer::start_or_skip("redis late decision") else {
        return;
    };
    for policy in [OutagePolicy::Fallback, OutagePolicy::Closed] {
        let key = format!("{policy:?}");
        let limiter = limiter(server.url(), policy).await;
        let limits = Limits::new(3, 1000).unwrap();
        assert!(limiter.check(&key, limits).await.unwrap().is_admitted());
        assert_eq!(count_in_redis(&server, &key).await, Some(1));

        // Redis holds every command for 600 ms: the decision times out after
        // 250 ms and is decided by the outage policy; Redis runs the call
        // when the pause ends, past its deadline.
        let mut raw = raw(&server).await;
        run(&mut raw, &["CLIENT", "PAUSE", "600", "ALL"]).await;
        let started = Instant::now();
        let outcome = limiter.check(&key, limits).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        match policy {
            OutagePolicy::Fallback => assert!(outcome.unwrap().is_admitted()),
            _ => assert!(matches!(outcome, Err(Error::Unavailable { .. }))),
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert_eq!(
            count_in_redis(&server, &key).await,
            Some(1),
            "{policy:?}: the late call was charged in Redis"
        );
    }
}

#[tokio::test]
async fn a_probe_that_meets_one_keys_bad_data_finds_redis_up() {
    let Some(server) = RedisServer::start_or_skip("redis probe meets WRONGTYPE") else {
        return;
    };
    let limiter = limiter(server.url(), OutagePolicy::Closed).await;
    let limits = Limits::new(60, 1000).unwrap();
    let mut raw = raw(&server).await;
    let _: () = raw.set("lumyx:rl:{bad}", "not a hash").await.unwrap();
    assert!(limiter.check("good", limits).await.unwrap().is_admitted());
    // An outage, then Redis is back; the next probe happens to be the bad key's.
    run(
        &mut raw,
        &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
    )
    .await;
    run(&mut raw, &["CONFIG", "SET", "maxmemory", "1"]).await;
    assert!(limiter.check("good", limits).await.is_err());
    assert!(limiter.is_degraded());
    run(&mut raw, &["CONFIG", "SET", "maxmemory", "0"]).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let err = limiter.check("bad", limits).await.unwrap_err();
    assert!(matches!(err, Error::Failed { .. }), "{err:?}");
    // Redis answered: it is up for the other keys.
    assert!(!limiter.is_degraded());
    let decision = limiter.check("good", limits).await.unwrap();
    assert_eq!(decision.snapshot().day.remaining, 998);
}

#[tokio::test]
async fn the_first_decision_is_one_round_trip() {
    let Some(server) = RedisServer::start_or_skip("redis first call") else {
        return;
    };
    let limiter = limiter(server.url(), OutagePolicy::Closed).await;
    assert!(
        limiter
            .check("k", Limits::default())
            .await
            .unwrap()
            .is_admitted()
    );
    let mut raw = raw(&server).await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let calls = |name: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("cmdstat_{name}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |calls| calls.parse::<u64>().unwrap())
    };
    // One EVAL, which loads the script; no EVALSHA, SCRIPT LOAD, or TIME
    // before it (the TIME counted is the script's own).
    assert_eq!(
        (
            calls("eval"),
            calls("evalsha"),
            calls("script|load"),
            calls("time")
        ),
        (1, 0, 0, 1),
        "{info}"
    );
    // And the next ones go by the script's hash.
    assert!(
        limiter
            .check("k", Limits::default())
            .await
            .unwrap()
            .is_admitted()
    );
}
