//! The `lumyx-server` binary with its state in a real Redis Cluster (SPEC
//! §2.1, §5), three masters and three replicas on loopback: two processes
//! on it act as one, as on one Redis (keys, exact limits, revocations within
//! a second, usage, conversations), with keys whose slots lie on every
//! master; and when the master of a key's slot (and of the key index and
//! change log) dies, requests go on being answered under the outage policy,
//! the replica takes over, the key is decided in Redis again, a key revoked
//! just before stays revoked on every instance, one started after the
//! failover included, and once the new master has a replica again, key
//! writes and their propagation work as before.
//!
//! Every test starts its own cluster and skips with a note when
//! `redis-server` or `redis-cli` is missing (unless `LUMYX_REQUIRE_REDIS`
//! is set).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::shared::{
    ADMIN, PROPAGATION, assert_revoked, assert_share_conversations, assert_share_keys, degraded,
    header, id_of, start_on, stop_and_check_log, usage, wait_known, wait_until_shared,
};
use common::{Client, eventually, expect_error, key_of};
use lumyx_test_support::{RedisCluster, RedisServer};
use redis::{FromRedisValue, RedisResult};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::task::{JoinHandle, block_in_place};

/// The Redis key of the key index, in the slot it shares with the change
/// log that every instance follows.
const INDEX_KEY: &str = "{lumyx:keys}:index";

/// The Redis key of the limiter state of the key `id`, in `id`'s slot.
fn limiter_key(id: &str) -> String {
    format!("lumyx:rl:{{{id}}}")
}

/// The Redis keys that the key `id` has once it was made and used: its
/// record, its limiter state and its usage, all in `id`'s slot.
fn redis_keys_of(id: &str) -> [String; 3] {
    [
        format!("lumyx:keys:record:{{{id}}}"),
        limiter_key(id),
        format!("{}:u", limiter_key(id)),
    ]
}

/// Sends one command to `node` alone (no redirection followed).
async fn ask<T: FromRedisValue>(node: &RedisServer, args: &[&str]) -> RedisResult<T> {
    let client = redis::Client::open(node.url())?;
    let mut connection = client.get_multiplexed_async_connection().await?;
    redis::cmd(args[0])
        .arg(&args[1..])
        .query_async(&mut connection)
        .await
}

/// Asserts that `node` holds `key` (a cluster node answers `MOVED` for a
/// key of a slot it does not serve).
async fn assert_held_by(node: &RedisServer, key: &str) {
    let exists: RedisResult<i64> = ask(node, &["EXISTS", key]).await;
    assert_eq!(exists.ok(), Some(1), "{} does not hold {key}", node.url());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_share_keys_on_every_master() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster_share_keys") else {
        return;
    };
    let a = start_on(&cluster.urls(), &[]).await;
    let b = start_on(&cluster.urls(), &[]).await;
    let shared = assert_share_keys(&a, &b).await;
    let spread = assert_keys_on_every_master(&cluster, &a.client(), &b.client()).await;
    shared.stop_and_check_logs(a, b, &spread).await;
}

/// Makes keys, in turn on A and on B, until their slots lie on all three
/// masters. Each key's record, limiter state and usage are on its slot's
/// master; each works on both instances, which count its requests
/// together. Answers the keys made.
async fn assert_keys_on_every_master(
    cluster: &RedisCluster,
    ca: &Client,
    cb: &Client,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut by_master = BTreeMap::new();
    for i in 0..64 {
        if by_master.len() == 3 {
            break;
        }
        let (maker, other) = if i % 2 == 0 { (ca, cb) } else { (cb, ca) };
        let created = maker
            .create_key(
                ADMIN,
                json!({"name": format!("spread {i}"), "owner": "acct_spread"}),
            )
            .await;
        let (id, key) = (id_of(&created), key_of(&created));
        keys.push(key.clone());
        wait_known(other, &id).await;
        for client in [ca, cb] {
            let response = client.chat(&key, "which master").await;
            assert_eq!(response.status(), StatusCode::OK, "{id} on {}", client.base);
        }
        let master = cluster.master_of(&limiter_key(&id));
        for redis_key in redis_keys_of(&id) {
            assert_held_by(&cluster.nodes()[master], &redis_key).await;
        }
        for client in [ca, cb] {
            let counted = usage(client, &id).await;
            assert_eq!(counted["total"]["admitted"], 2, "{counted}");
        }
        by_master.entry(master).or_insert(id);
    }
    assert_eq!(
        by_master.len(),
        3,
        "64 keys made, their slots on masters {by_master:?} only"
    );
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_share_conversations() {
    let Some(cluster) = RedisCluster::start_or_skip("cluster_share_conversations") else {
        return;
    };
    let no_demo = [("LUMYX_DEMO_KEY", "false")];
    let a = start_on(&cluster.urls(), &no_demo).await;
    let b = start_on(&cluster.urls(), &no_demo).await;
    let [mine_key, theirs_key] = assert_share_conversations(&a.client(), &b.client()).await;
    let secrets = [ADMIN, mine_key.as_str(), theirs_key.as_str()];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
}

/// The owner of the keys of the failover test.
const OWNER: &str = "acct_failover";

/// The minute limit of the key that is used through the failover: high
/// enough that neither the shared bucket nor an instance's own fallback
/// bucket runs out during the test.
const RPM: u64 = 1000;

/// How long one request may take while a master is down: a decision
/// returns within the limiter's timeout (250 ms) whatever Redis does.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Makes keys of `body` on `client` until one's slot is served by the node
/// `master`, and answers that one (the others are left as they are); the
/// keys made are added to `made`.
async fn create_on_master(
    cluster: &RedisCluster,
    client: &Client,
    master: usize,
    body: Value,
    made: &mut Vec<String>,
) -> Value {
    for _ in 0..32 {
        let created = client.create_key(ADMIN, body.clone()).await;
        made.push(key_of(&created));
        if cluster.master_of(&limiter_key(&id_of(&created))) == master {
            return created;
        }
    }
    panic!("32 keys made, none in a slot of node {master}");
}

/// What one instance answered while the requests flowed.
#[derive(Debug, Default)]
struct Flow {
    /// Requests with the working key, every one answered 200.
    answered: u32,
    /// Of those, the ones decided while the instance said it was degraded:
    /// under the outage policy.
    while_degraded: u32,
    slowest: Duration,
    /// Every answer that was not as it should be.
    problems: Vec<String>,
}

/// Until `stop`, sends to `client` a chat with `key` (it must be admitted:
/// 200 with the limit headers of `RPM`, within [`ANSWER_WITHIN`]), reads
/// whether the instance is degraded, and sends a chat with `revoked` (it
/// must be refused as revoked); `answered` counts the admitted ones.
fn flow(
    client: Client,
    key: String,
    revoked: String,
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU32>,
) -> JoinHandle<Flow> {
    tokio::spawn(async move {
        let mut flow = Flow::default();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let Ok(response) = tokio::time::timeout(ANSWER_WITHIN, client.chat(&key, "on")).await
            else {
                flow.problems
                    .push(format!("no answer within {ANSWER_WITHIN:?}"));
                continue;
            };
            flow.slowest = flow.slowest.max(started.elapsed());
            let status = response.status();
            let limit = header(&response, "x-ratelimit-limit-requests");
            let remaining = header(&response, "x-ratelimit-remaining-requests");
            if status != StatusCode::OK
                || limit != Some(RPM.to_string())
                || remaining.is_none()
                || header(&response, "ratelimit-policy").is_none()
            {
                let body = response.text().await.unwrap_or_default();
                flow.problems.push(format!(
                    "{status}, limit {limit:?}, remaining {remaining:?}: {body}"
                ));
            } else {
                flow.answered += 1;
                answered.fetch_add(1, Ordering::Relaxed);
                if degraded(&client).await == Some(1) {
                    flow.while_degraded += 1;
                }
            }

            let response = client.chat(&revoked, "still revoked?").await;
            let status = response.status();
            let limited = header(&response, "x-ratelimit-remaining-requests").is_some();
            let body: Value = response.json().await.unwrap_or_default();
            if status != StatusCode::FORBIDDEN
                || body["error"]["code"] != "api_key_revoked"
                || limited
            {
                flow.problems.push(format!(
                    "the revoked key: {status} (limit headers: {limited}): {body}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        flow
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_keeps_keys_answered_and_revocations_kept() {
    let Some(mut cluster) = RedisCluster::start_or_skip("cluster_failover") else {
        return;
    };
    let urls = cluster.urls();
    let no_demo = [("LUMYX_DEMO_KEY", "false")];
    let a = start_on(&urls, &no_demo).await;
    let b = start_on(&urls, &no_demo).await;
    let (ca, cb) = (a.client(), b.client());

    // K (used throughout) and V (revoked before the kill) live on the
    // master that also holds the key index and the change log, so its
    // failover tests every part of the key store at once.
    let master = cluster.master_of(INDEX_KEY);
    let replica = cluster.replica_of(INDEX_KEY);
    let mut made = Vec::new();
    let kept = create_on_master(
        &cluster,
        &ca,
        master,
        json!({"name": "kept", "owner": OWNER, "rate_limit_per_minute": RPM}),
        &mut made,
    )
    .await;
    let revoked = create_on_master(
        &cluster,
        &ca,
        master,
        json!({"name": "revoked", "owner": OWNER}),
        &mut made,
    )
    .await;
    let (kept_id, kept_key) = (id_of(&kept), key_of(&kept));
    let (revoked_id, revoked_key) = (id_of(&revoked), key_of(&revoked));
    for client in [&ca, &cb] {
        wait_known(client, &kept_id).await;
        wait_known(client, &revoked_id).await;
        assert_eq!(
            client.chat(&kept_key, "used").await.status(),
            StatusCode::OK
        );
        assert_eq!(
            client.chat(&revoked_key, "used").await.status(),
            StatusCode::OK
        );
    }

    // V is revoked on A, and B obeys within a second.
    let response = ca.delete(&format!("/v1/keys/{revoked_id}"), ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK);
    let revoked_record: Value = response.json().await.expect("the revoked record");
    assert!(revoked_record["revoked_at"].is_i64(), "{revoked_record}");
    let refused_on_b = eventually(PROPAGATION, || async {
        cb.chat(&revoked_key, "revoked").await.status() == StatusCode::FORBIDDEN
    })
    .await;
    assert!(refused_on_b, "B still admits a key revoked on A after 1 s");

    // Requests flow to both instances; then the master dies under them.
    let stop = Arc::new(AtomicBool::new(false));
    let counts = [Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0))];
    let flows: Vec<JoinHandle<Flow>> = [&ca, &cb]
        .into_iter()
        .zip(&counts)
        .map(|(client, count)| {
            flow(
                client.clone(),
                kept_key.clone(),
                revoked_key.clone(),
                Arc::clone(&stop),
                Arc::clone(count),
            )
        })
        .collect();
    let flowing = eventually(Duration::from_secs(5), || async {
        counts
            .iter()
            .all(|count| count.load(Ordering::Relaxed) >= 3)
    })
    .await;
    assert!(flowing, "the requests did not flow before the kill");
    let killed_at = Instant::now();
    let killed = block_in_place(|| cluster.kill_master_of(&limiter_key(&kept_id)));
    assert_eq!(killed, master);
    let promoted = block_in_place(|| cluster.wait_for_failover(&limiter_key(&kept_id)));
    let failed_over = killed_at.elapsed();
    assert_eq!(
        promoted, replica,
        "the replica of the dead master took over"
    );
    assert_eq!(cluster.master_of(INDEX_KEY), promoted);
    for client in [&ca, &cb] {
        wait_until_shared(client, &kept_key).await;
    }
    let shared_again = killed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut answered = Vec::new();
    for (flow, server) in flows.into_iter().zip([&a, &b]) {
        let flow = flow.await.expect("the flow does not panic");
        assert!(
            flow.problems.is_empty(),
            "{} answered {} requests of the flow wrongly, first: {:?}\nits log:\n{}",
            server.base,
            flow.problems.len(),
            flow.problems.first(),
            server.log()
        );
        assert!(
            flow.while_degraded > 0,
            "{} never decided under its outage policy while the master was down: {flow:?}",
            server.base
        );
        answered.push(flow);
    }
    eprintln!(
        "failover: the replica served after {failed_over:?}, both instances used Redis \
         again after {shared_again:?}; answered {answered:?}"
    );

    // K is decided in Redis again by both: what each admits now is counted
    // in its usage in Redis, which both read.
    let before = usage(&ca, &kept_id).await["total"]["admitted"]
        .as_u64()
        .expect("a count");
    for client in [&ca, &cb, &ca, &cb] {
        assert_eq!(
            client.chat(&kept_key, "after").await.status(),
            StatusCode::OK
        );
    }
    for client in [&ca, &cb] {
        let counted = usage(client, &kept_id).await;
        assert_eq!(counted["total"]["admitted"], before + 4, "{counted}");
        assert_eq!(degraded(client).await, Some(0), "{}", client.base);
    }

    // V is still revoked on both.
    for client in [&ca, &cb] {
        assert_revoked(client, &revoked_key).await;
    }

    // An instance started now loads the keys from the cluster: the store
    // itself kept both the creations and the revocation.
    let c = start_on(&urls, &no_demo).await;
    let cc = c.client();
    assert_revoked(&cc, &revoked_key).await;
    let shown = cc.get_json(&format!("/v1/keys/{revoked_id}"), ADMIN).await;
    assert_eq!(shown["revoked_at"], revoked_record["revoked_at"], "{shown}");
    let response = cc.chat(&kept_key, "on C").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-ratelimit-limit-requests"),
        Some(RPM.to_string())
    );
    assert_eq!(degraded(&cc).await, Some(0));
    let counted = usage(&ca, &kept_id).await;
    assert_eq!(counted["total"]["admitted"], before + 5, "{counted}");
    let listed = cc
        .get_json(&format!("/v1/keys?owner={OWNER}&limit=100"), ADMIN)
        .await;
    let ids: Vec<&str> = listed["data"]
        .as_array()
        .expect("a key list")
        .iter()
        .filter_map(|record| record["id"].as_str())
        .collect();
    assert_eq!(ids.len(), made.len(), "{listed}");
    assert!(ids.contains(&kept_id.as_str()), "{listed}");
    assert!(ids.contains(&revoked_id.as_str()), "{listed}");
    expect_error(
        cc.chat(&format!("nova_{}", "0".repeat(59)), "unknown")
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;

    // With a replica again, the promoted master takes key writes again, and
    // every instance follows them within a second: their followers of the
    // change log, whose master died, read it from the new one.
    cluster.add_replica_of(&format!("lumyx:rl:{{{kept_id}}}"));
    let after = ca
        .create_key(ADMIN, json!({"name": "after", "owner": OWNER}))
        .await;
    let (after_id, after_key) = (id_of(&after), key_of(&after));
    made.push(after_key.clone());
    for client in [&cb, &cc] {
        wait_known(client, &after_id).await;
        assert_eq!(
            client.chat(&after_key, "new").await.status(),
            StatusCode::OK
        );
    }
    let response = cb.delete(&format!("/v1/keys/{after_id}"), ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK);
    for client in [&ca, &cc] {
        let refused = eventually(PROPAGATION, || async {
            client.chat(&after_key, "revoked").await.status() == StatusCode::FORBIDDEN
        })
        .await;
        assert!(
            refused,
            "{} still admits a key revoked on B after 1 s",
            client.base
        );
        assert_revoked(client, &after_key).await;
    }

    let mut secrets = vec![ADMIN];
    secrets.extend(made.iter().map(String::as_str));
    for server in [a, b] {
        let log = stop_and_check_log(server, &secrets).await;
        // SPEC §2.1: an outage is logged at warn, with the reason.
        assert!(log.contains("WARN"), "{log}");
    }
    stop_and_check_log(c, &secrets).await;
}
