//! The Redis limiter on a real 3-master, 3-replica Redis Cluster on loopback
//! (skipped with a note when Redis is not installed, unless
//! LUMYX_REQUIRE_REDIS=1): limiters on separate connections share every key
//! exactly, whichever master serves it, each decision is one call to that
//! master, and a master's failover is met by the outage policy and left by
//! itself, with the key's state as the promoted replica holds it.
#![cfg(feature = "redis")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use lumyx_ratelimit::{
    Clock, Counted, Decision, DeniedBy, Error, Limits, ManualClock, OutagePolicy, RedisLimiter,
};
use lumyx_test_support::{RedisCluster, RedisServer};

/// How long a limiter that lost a master waits before trying Redis again.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// How soon after the failover (as the cluster's nodes tell it) the limiter
/// must decide in Redis again: a few probe intervals, the client's refresh
/// of the cluster's topology included.
const RECOVERY: Duration = Duration::from_secs(1);

fn limits(rpm: u32, daily: u32) -> Limits {
    Limits::new(rpm, daily).unwrap()
}

fn at(rfc3339: &str) -> ManualClock {
    ManualClock::at(rfc3339.parse::<DateTime<Utc>>().unwrap())
}

async fn limiter(
    cluster: &RedisCluster,
    clock: &ManualClock,
    policy: OutagePolicy,
) -> RedisLimiter {
    RedisLimiter::builder(cluster.urls().parse().unwrap())
        .clock(clock.clone())
        .outage_policy(policy)
        .timeout(Duration::from_secs(1))
        .probe_interval(PROBE_INTERVAL)
        .connect()
        .await
        .unwrap()
}

/// A section of `INFO` of one node, read on a connection to that node alone.
async fn info(node: &RedisServer, section: &str) -> String {
    let mut connection = redis::Client::open(node.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::cmd("INFO")
        .arg(section)
        .query_async(&mut connection)
        .await
        .unwrap()
}

/// The value of `name` in an `INFO` text: `name:value`, or the `field=value`
/// of `name:field=value,...` when `field` is given.
fn info_value(info: &str, name: &str, field: Option<&str>) -> Option<String> {
    let line = info
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))?;
    match field {
        None => Some(line.trim().to_owned()),
        Some(field) => line.split(',').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == field).then(|| value.trim().to_owned())
        }),
    }
}

/// Calls of the script (`EVALSHA` and `EVAL`) a node ran since its stats were
/// reset, and those it refused or failed.
async fn script_calls(node: &RedisServer) -> (u64, u64) {
    let stats = info(node, "commandstats").await;
    let mut calls = 0;
    let mut refused = 0;
    for command in ["cmdstat_evalsha", "cmdstat_eval"] {
        let count = |field| {
            info_value(&stats, command, Some(field))
                .map_or(0, |value| value.parse::<u64>().unwrap())
        };
        calls += count("calls");
        refused += count("rejected_calls") + count("failed_calls");
    }
    (calls, refused)
}

/// Waits until the replica of the master of `redis_key`'s slot has every
/// write of its master (its replication offset has caught up), so that a
/// failover keeps them.
async fn wait_for_replica(cluster: &RedisCluster, redis_key: &str) {
    let master = &cluster.nodes()[cluster.master_of(redis_key)];
    let replication = info(master, "replication").await;
    let port: u16 = info_value(&replication, "slave0", Some("port"))
        .expect("the master has a replica")
        .parse()
        .unwrap();
    let replica = cluster
        .nodes()
        .iter()
        .find(|node| node.port() == port)
        .expect("the replica is a node of the cluster");
    let offset = |info: String, name| {
        info_value(&info, name, None)
            .expect("an offset")
            .parse::<u64>()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let written = offset(info(master, "replication").await, "master_repl_offset");
        let copied = offset(info(replica, "replication").await, "slave_repl_offset");
        if copied >= written {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica stays at {copied} of {written}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What one decision came to while a master failed over, and whether the
/// limiter was degraded right after it (it was decided locally then; every
/// decision is made by one task, so nothing else moves the flag between).
struct Outcome {
    result: Result<Decision, Error>,
    degraded: bool,
}

impl Outcome {
    fn in_redis(&self) -> bool {
        self.result.is_ok() && !self.degraded
    }
}

/// Decides `key` every few milliseconds while the master of its slot is
/// killed and its replica promoted, and on until the limiter has decided in
/// Redis again; answers the cluster and every outcome.
async fn decide_through_failover(
    mut cluster: RedisCluster,
    limiter: &RedisLimiter,
    key: &str,
    limits: Limits,
) -> (RedisCluster, Vec<Outcome>) {
    let redis_key = limiter.redis_key(key);
    let old_master = cluster.master_of(&redis_key);
    let mut failover = tokio::task::spawn_blocking(move || {
        cluster.kill_master_of(&redis_key);
        cluster.wait_for_failover(&redis_key);
        cluster
    });
    let mut outcomes = Vec::new();
    let mut pace = tokio::time::interval(Duration::from_millis(5));
    let mut failed_over: Option<(RedisCluster, Instant)> = None;
    loop {
        pace.tick().await;
        let result = limiter.check(key, limits).await;
        let outcome = Outcome {
            result,
            degraded: limiter.is_degraded(),
        };
        let back = outcome.in_redis() && outcomes.iter().any(|seen: &Outcome| !seen.in_redis());
        outcomes.push(outcome);
        if failed_over.is_none() && failover.is_finished() {
            failed_over = Some(((&mut failover).await.unwrap(), Instant::now()));
        }
        match &failed_over {
            Some(_) if back => break,
            Some((_, at)) => assert!(
                at.elapsed() < RECOVERY,
                "the limiter did not decide in Redis within {RECOVERY:?} of the failover"
            ),
            None => {}
        }
    }
    let (cluster, _) = failed_over.expect("the failover ended");
    let new_master = cluster.master_of(&limiter.redis_key(key));
    assert_ne!(old_master, new_master, "the replica took over");
    (cluster, outcomes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_limiters_admit_exactly_the_limit_of_keys_on_every_master() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster two limiters") else {
        return;
    };
    let clock = at("2026-11-27T10:00:00Z");
    let first = Arc::new(limiter(&cluster, &clock, OutagePolicy::Closed).await);
    let second = Arc::new(limiter(&cluster, &clock, OutagePolicy::Closed).await);
    let rpm = 5;
    let limits = limits(rpm, 10_000);
    let keys: Vec<String> = (0..48_u64)
        .map(|n| format!("key_{:016x}", n * 0x9e37_79b9))
        .collect();
    let mut keys_of_master: BTreeMap<usize, usize> = BTreeMap::new();
    for key in &keys {
        *keys_of_master
            .entry(cluster.master_of(&first.redis_key(key)))
            .or_default() += 1;
    }
    assert_eq!(
        keys_of_master.len(),
        3,
        "keys on every master: {keys_of_master:?}"
    );

    // Three times the limit of each key at once, from both limiters in turn.
    for key in &keys {
        let decisions: Vec<_> = (0..3 * rpm)
            .map(|attempt| {
                let limiter = if attempt % 2 == 0 { &first } else { &second };
                let (limiter, key) = (Arc::clone(limiter), key.clone());
                tokio::spawn(async move { limiter.check_counted(&key, limits).await.unwrap() })
            })
            .collect();
        let mut admitted = 0;
        for decision in decisions {
            admitted += u32::from(decision.await.unwrap().is_admitted());
        }
        assert_eq!(admitted, rpm, "{key}");
        // Both limiters read the same usage: what the decisions came to.
        for limiter in [&first, &second] {
            let usage = limiter.usage(key).await.unwrap();
            let today = usage.today();
            assert_eq!(today.admitted(), u64::from(rpm), "{key}");
            assert_eq!(today.get(Counted::MinuteLimit), u64::from(2 * rpm), "{key}");
            assert_eq!(today.denied(), u64::from(2 * rpm), "{key}");
            assert_eq!(usage.totals, today, "{key}");
            assert_eq!(usage.last_used, Some(clock.now()), "{key}");
        }
    }
    assert!(!first.is_degraded() && !second.is_degraded());

    // Every master has the script now: one more decision per key is one
    // call on the master of its slot, and none anywhere else (no
    // redirection, no second try, no script load).
    for node in cluster.nodes() {
        let mut connection = redis::Client::open(node.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    for key in &keys {
        let decision = first.check(key, limits).await.unwrap();
        assert!(!decision.is_admitted(), "{key}");
    }
    for (index, node) in cluster.nodes().iter().enumerate() {
        let expected = keys_of_master.get(&index).copied().unwrap_or(0) as u64;
        assert_eq!(script_calls(node).await, (expected, 0), "node {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_falls_back_to_local_decisions_and_back_to_the_replicas_counts() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster failover fallback") else {
        return;
    };
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = RedisLimiter::builder(cluster.urls().parse().unwrap())
        .clock(clock.clone())
        .probe_interval(PROBE_INTERVAL)
        .connect()
        .await
        .unwrap();
    assert_eq!(limiter.outage_policy(), OutagePolicy::Fallback);
    let (rpm, daily) = (10, 25);
    let limits = limits(rpm, daily);
    let key = "key_0f41ed0c7e5a2b19";

    // Before the failover the minute's bucket is spent in Redis, 10 of the
    // day's 25, and the replica has it.
    for _ in 0..rpm {
        assert!(limiter.check(key, limits).await.unwrap().is_admitted());
    }
    assert!(!limiter.check(key, limits).await.unwrap().is_admitted());
    assert!(!limiter.is_degraded());
    wait_for_replica(&cluster, &limiter.redis_key(key)).await;

    let (_cluster, outcomes) = decide_through_failover(cluster, &limiter, key, limits).await;
    // Every decision answered; those made while the master was gone were
    // local, and the local limiter admitted its own minute's worth.
    let decisions: Vec<(Decision, bool)> = outcomes
        .into_iter()
        .map(|outcome| {
            (
                outcome.result.expect("every decision answers"),
                outcome.degraded,
            )
        })
        .collect();
    let local: Vec<&Decision> = decisions
        .iter()
        .filter_map(|(decision, degraded)| degraded.then_some(decision))
        .collect();
    assert!(!local.is_empty(), "the outage was seen");
    let admitted_locally = local
        .iter()
        .filter(|decision| decision.is_admitted())
        .count();
    assert_eq!(admitted_locally, local.len().min(rpm as usize));
    // Redis decided everything else, from the state the promoted replica
    // holds: the minute spent, 15 left of the day. Nothing more was admitted
    // within the minute than its limit and the local decisions.
    for (decision, _) in decisions.iter().filter(|(_, degraded)| !degraded) {
        let Decision::Denied(denial) = decision else {
            panic!("Redis admitted beyond the minute's limit: {decision:?}");
        };
        assert_eq!(denial.denied_by, DeniedBy::Minute);
        assert_eq!(denial.snapshot.day.remaining, daily - rpm);
    }

    // Redis goes on counting: a new minute's bucket, and the day's rest.
    clock.advance(Duration::from_secs(60));
    for left in (daily - 2 * rpm..daily - rpm).rev() {
        let decision = limiter.check(key, limits).await.unwrap();
        assert!(decision.is_admitted());
        assert_eq!(decision.snapshot().day.remaining, left);
        assert!(!limiter.is_degraded());
    }
    clock.advance(Duration::from_secs(60));
    for _ in 0..daily - 2 * rpm {
        assert!(limiter.check(key, limits).await.unwrap().is_admitted());
    }
    let Decision::Denied(denial) = limiter.check(key, limits).await.unwrap() else {
        panic!("the day's limit holds across the failover");
    };
    assert_eq!(denial.denied_by, DeniedBy::Day);
    assert!(!limiter.is_degraded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_under_the_closed_policy_is_unavailable_until_the_replica_serves() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster failover closed") else {
        return;
    };
    let clock = at("2026-11-27T10:00:00Z");
    let limiter = limiter(&cluster, &clock, OutagePolicy::Closed).await;
    let (rpm, daily) = (4, 100);
    let limits = limits(rpm, daily);
    let key = "key_7c2d9e1b40a3f856";
    for _ in 0..rpm {
        assert!(limiter.check(key, limits).await.unwrap().is_admitted());
    }
    wait_for_replica(&cluster, &limiter.redis_key(key)).await;

    let (_cluster, outcomes) = decide_through_failover(cluster, &limiter, key, limits).await;
    let mut unavailable = 0;
    for outcome in &outcomes {
        match &outcome.result {
            Err(Error::Unavailable { .. }) => {
                assert!(outcome.degraded);
                unavailable += 1;
            }
            Err(err) => panic!("only Unavailable while the master is gone, got {err:?}"),
            // Decided in Redis, from the replica's state once promoted.
            Ok(Decision::Denied(denial)) => {
                assert!(!outcome.degraded);
                assert_eq!(denial.denied_by, DeniedBy::Minute);
                assert_eq!(denial.snapshot.day.remaining, daily - rpm);
            }
            Ok(admitted) => panic!("the minute was spent: {admitted:?}"),
        }
    }
    assert!(unavailable > 0, "the outage was seen");

    clock.advance(Duration::from_secs(60));
    for _ in 0..rpm {
        assert!(limiter.check(key, limits).await.unwrap().is_admitted());
    }
    let decision = limiter.check(key, limits).await.unwrap();
    assert!(!decision.is_admitted());
    assert_eq!(decision.snapshot().day.remaining, daily - 2 * rpm);
    assert!(!limiter.is_degraded());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_master_down_leaves_the_keys_of_the_others_shared_and_exact() {
    let Some(mut cluster) = RedisCluster::start_or_skip("cluster one master down") else {
        return;
    };
    let clock = at("2026-11-27T10:00:00Z");
    // A probe interval longer than the test, so that a limiter that took
    // one master's failure for all of Redis would decide every key locally
    // until the end.
    let build = || async {
        RedisLimiter::builder(cluster.urls().parse().unwrap())
            .clock(clock.clone())
            .timeout(Duration::from_millis(500))
            .probe_interval(Duration::from_secs(60))
            .connect()
            .await
            .unwrap()
    };
    let (first, second) = (build().await, build().await);
    let rpm = 10;
    let limits = limits(rpm, 10_000);
    let down_key = "key_00000000000000d0";
    let down_master = cluster.master_of(&first.redis_key(down_key));
    let up_key = (0_u64..)
        .map(|n| format!("key_{n:016x}"))
        .find(|key| cluster.master_of(&first.redis_key(key)) != down_master)
        .unwrap();
    // Both limiters decide once in Redis (reading which master serves
    // which slots on the way).
    for limiter in [&first, &second] {
        assert!(limiter.check(&up_key, limits).await.unwrap().is_admitted());
        assert!(!limiter.is_degraded());
    }

    cluster.kill_master_of(&first.redis_key(down_key));
    // The dead master's key: the outage policy (fallback), degraded.
    assert!(first.check(down_key, limits).await.unwrap().is_admitted());
    assert!(first.is_degraded());

    // The other master's key is still decided in Redis by both limiters
    // together: exactly the rest of its minute (2 were spent above), not
    // the whole limit again in each limiter's local fallback.
    let mut admitted = 0;
    for attempt in 0..3 * rpm {
        let limiter = if attempt % 2 == 0 { &first } else { &second };
        admitted += u32::from(limiter.check(&up_key, limits).await.unwrap().is_admitted());
    }
    assert_eq!(admitted, rpm - 2);
    assert!(first.is_degraded(), "the dead master's slots stay down");
}
