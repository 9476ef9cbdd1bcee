//! Gates of two instances sharing one real `redis-server`: keys, limits and
//! usage are one, revocations reach the other instance within a second, and
//! a steady request is one round trip.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use chrono::Utc;
use http::HeaderValue;
use lumyx_gate::{Following, Gate, Keys, RedisBackend, Refusal, Verdict};
use lumyx_keys::{ApiKey, KeyRecord, KeyStore, Limits, RedisKeyStore, Scope};
use lumyx_ratelimit::{Counted, OutagePolicy, RedisLimiter};
use lumyx_test_support::RedisServer;

/// One instance: its own connections, its own table.
struct Instance {
    keys: Keys,
    gate: Gate<RedisBackend>,
    _following: Following,
}

async fn instance(server: &RedisServer) -> Instance {
    let url: lumyx_keys::RedisUrl = server.url().parse().unwrap();
    let store = RedisKeyStore::builder(url.clone()).connect().await.unwrap();
    let (keys, following) = Keys::load_following(store).await.unwrap();
    let limiter = RedisLimiter::builder(url)
        .outage_policy(OutagePolicy::Closed)
        .connect()
        .await
        .unwrap();
    let gate = Gate::new(keys.table().clone(), RedisBackend::new(limiter));
    Instance {
        keys,
        gate,
        _following: following,
    }
}

fn bearer(key: &ApiKey) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).unwrap()
}

/// Checks with `gate` until `until` holds of the verdict, for at most a
/// second; answers how long it took.
async fn within_a_second(
    gate: &Gate<RedisBackend>,
    key: &ApiKey,
    until: impl Fn(&Verdict) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let verdict = gate.check(Some(&bearer(key)), Scope::Models).await;
        if until(&verdict) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not within a second: {verdict:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn refusal(verdict: &Verdict) -> Option<Refusal> {
    match verdict {
        Verdict::Admitted(_) => None,
        Verdict::Denied(denied) => Some(denied.refusal()),
    }
}

/// Calls of each command so far, from `INFO commandstats`.
async fn command_calls(server: &RedisServer) -> std::collections::HashMap<String, u64> {
    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, rest) = line.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_act_as_one() {
    let Some(server) = RedisServer::start_or_skip("gate two instances") else {
        return;
    };
    let (a, b) = (instance(&server).await, instance(&server).await);

    // A key made through one instance works on the other within a second.
    let key = ApiKey::generate().unwrap();
    let limits = Limits::new(7, 1000).unwrap();
    let record =
        KeyRecord::new(key.as_key_ref(), "shared", "acct_1", Utc::now()).with_limits(limits);
    a.keys.insert(record).await.unwrap();
    within_a_second(&b.gate, &key, |verdict| {
        refusal(verdict) != Some(Refusal::InvalidApiKey)
    })
    .await;

    // Together they admit exactly the minute's limit: 7, whatever instance
    // each request reaches. (The probe above used one.)
    let mut admitted = 1;
    for i in 0..20 {
        let gate = if i % 2 == 0 { &a.gate } else { &b.gate };
        if gate
            .check(Some(&bearer(&key)), Scope::Models)
            .await
            .is_admitted()
        {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 7);

    // Both see the same usage: 21 requests, 7 admitted, 14 refused by the minute.
    let entry_a = a.gate.table().find_by_id(&key.id()).unwrap();
    let entry_b = b.gate.table().find_by_id(&key.id()).unwrap();
    let (usage_a, _) = a.gate.usage(&entry_a).await.unwrap();
    let (usage_b, snapshot) = b.gate.usage(&entry_b).await.unwrap();
    assert_eq!(usage_a, usage_b);
    assert_eq!(usage_a.today().admitted(), 7);
    assert_eq!(usage_a.today().get(Counted::MinuteLimit), 14);
    assert_eq!(snapshot.minute.remaining, 0);

    // A revocation through one instance is obeyed by the other within a second.
    a.keys.revoke(&key.id(), Utc::now()).await.unwrap();
    let took = within_a_second(&b.gate, &key, |verdict| {
        refusal(verdict) == Some(Refusal::KeyRevoked)
    })
    .await;
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_request_is_one_round_trip() {
    let Some(server) = RedisServer::start_or_skip("gate round trips") else {
        return;
    };
    let instance = instance(&server).await;
    let key = ApiKey::generate().unwrap();
    let record = KeyRecord::new(key.as_key_ref(), "steady", "acct_1", Utc::now())
        .with_limits(Limits::new(1000, 10_000).unwrap());
    instance.keys.insert(record).await.unwrap();
    // Warm up: the first call loads the script.
    assert!(
        instance
            .gate
            .check(Some(&bearer(&key)), Scope::Models)
            .await
            .is_admitted()
    );
    let forged = ApiKey::generate().unwrap();
    let before = command_calls(&server).await;
    const REQUESTS: u64 = 200;
    for _ in 0..REQUESTS {
        assert!(
            instance
                .gate
                .check(Some(&bearer(&key)), Scope::Models)
                .await
                .is_admitted()
        );
        // Unknown and garbage keys are answered from memory: no round trip.
        let verdict = instance
            .gate
            .check(Some(&bearer(&forged)), Scope::Models)
            .await;
        assert_eq!(refusal(&verdict), Some(Refusal::InvalidApiKey));
        let verdict = instance
            .gate
            .check(
                Some(&HeaderValue::from_static("Bearer garbage")),
                Scope::Models,
            )
            .await;
        assert_eq!(refusal(&verdict), Some(Refusal::InvalidApiKey));
    }
    let after = command_calls(&server).await;
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    // One script call a request; nothing else was sent by the gate (the
    // other counted commands run inside the script, and one is `INFO`).
    assert_eq!(delta("evalsha"), REQUESTS);
    assert_eq!(delta("hgetall"), 0);
    assert_eq!(delta("eval"), 0);
    let inside_script = delta("time")
        + delta("hmget")
        + delta("hset")
        + delta("hget")
        + delta("hincrby")
        + delta("pexpire")
        + delta("hkeys")
        + delta("hdel");
    let total: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    // The follower's blocking reads of the change log may add a few XREADs.
    let others = total - delta("evalsha") - inside_script - delta("info") - delta("xread");
    assert_eq!(others, 0, "{after:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_gate_answers_every_refusal() {
    let Some(server) = RedisServer::start_or_skip("gate redis refusals") else {
        return;
    };
    let instance = instance(&server).await;
    let now = Utc::now();
    let add = |edit: fn(KeyRecord) -> KeyRecord| {
        let key = ApiKey::generate().unwrap();
        let record = edit(KeyRecord::new(
            key.as_key_ref(),
            "r",
            "acct_1",
            now - chrono::TimeDelta::hours(2),
        ));
        (key, record)
    };
    let (expired, record) =
        add(|record| record.with_expiry(Utc::now() - chrono::TimeDelta::hours(1)));
    instance.keys.insert(record).await.unwrap();
    let (revoked, mut record) = add(|record| record);
    record.revoked_at = Some(now - chrono::TimeDelta::hours(1));
    instance.keys.insert(record).await.unwrap();
    let (models_only, record) =
        add(|record| record.with_scopes(lumyx_keys::Scopes::NONE.with(Scope::Models)));
    instance.keys.insert(record).await.unwrap();
    let (day_limited, record) = add(|record| record.with_limits(Limits::new(1000, 1).unwrap()));
    instance.keys.insert(record).await.unwrap();
    let gate = &instance.gate;
    let check = |key: &ApiKey, scope| {
        let header = bearer(key);
        async move { gate.check(Some(&header), scope).await }
    };
    assert_eq!(
        refusal(&check(&expired, Scope::Models).await),
        Some(Refusal::KeyExpired)
    );
    assert_eq!(
        refusal(&check(&revoked, Scope::Models).await),
        Some(Refusal::KeyRevoked)
    );
    assert_eq!(
        refusal(&check(&models_only, Scope::Chat).await),
        Some(Refusal::InsufficientScope)
    );
    assert!(check(&day_limited, Scope::Models).await.is_admitted());
    let verdict = check(&day_limited, Scope::Models).await;
    assert_eq!(refusal(&verdict), Some(Refusal::DailyLimitExceeded));
    let mut headers = http::HeaderMap::new();
    verdict.write_headers(&mut headers);
    assert_eq!(headers["x-should-retry"], "false");
    // Refusals before the limits are counted in Redis too.
    let entry = instance.gate.table().find_by_id(&models_only.id()).unwrap();
    let (usage, _) = instance.gate.usage(&entry).await.unwrap();
    assert_eq!(usage.today().get(Counted::OutOfScope), 1);
}
