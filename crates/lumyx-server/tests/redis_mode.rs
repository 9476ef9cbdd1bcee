//! The `lumyx-server` binary with its state in a real Redis (SPEC §2.1, §5):
//! two processes sharing one Redis act as one (keys, exact limits,
//! revocations within a second, usage, conversations); each outage policy
//! while Redis is down, and the recovery once it is back; and how the
//! process ends when its Redis URL is bad or points at nothing. The
//! scenarios of sharing are in `common::shared`, which `redis_cluster.rs`
//! runs on a Redis Cluster too.
//!
//! Every test starts its own `redis-server` and skips with a note when there
//! is none (unless `LUMYX_REQUIRE_REDIS` is set).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::shared::{
    ADMIN, RECOVERY, assert_exact_shared_limit, assert_share_conversations, assert_share_keys,
    degraded, header, id_of, start_on, stop_and_check_log, wait_known, wait_until_shared,
};
use common::{Client, ServerProcess, eventually, expect_error, free_port, key_of};
use lumyx_test_support::RedisServer;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_keys_exact_limits_revocations_and_usage() {
    let Some(redis) = RedisServer::start_or_skip("two_instances_share_keys") else {
        return;
    };
    let a = start_on(&redis.url(), &[]).await;
    let b = start_on(&redis.url(), &[]).await;
    let shared = assert_share_keys(&a, &b).await;
    shared.stop_and_check_logs(a, b, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_conversations() {
    let Some(redis) = RedisServer::start_or_skip("two_instances_share_conversations") else {
        return;
    };
    let no_demo = [("LUMYX_DEMO_KEY", "false")];
    let a = start_on(&redis.url(), &no_demo).await;
    let b = start_on(&redis.url(), &no_demo).await;
    let [mine_key, theirs_key] = assert_share_conversations(&a.client(), &b.client()).await;
    let secrets = [ADMIN, mine_key.as_str(), theirs_key.as_str()];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
}

/// After Redis came back empty: each instance's follower finds that Redis
/// lost the writes it had seen and reloads its table from Redis (see
/// `lumyx_gate::Keys::load_following`), so the keys made before the outage
/// are unknown on both; a key made now works on both, and the limiter is
/// shared again.
async fn assert_recovers(ca: &Client, cb: &Client, old_key: &str) {
    for client in [ca, cb] {
        let reloaded = eventually(RECOVERY, || async {
            client.chat(old_key, "old").await.status() == StatusCode::UNAUTHORIZED
        })
        .await;
        assert!(
            reloaded,
            "{} still knows a key that Redis lost {RECOVERY:?} after it came back",
            client.base
        );
        expect_error(
            client.chat(old_key, "old").await,
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        )
        .await;
    }

    // A key made after the recovery (once the key store answers again).
    let created = std::sync::Mutex::new(Value::Null);
    let made = eventually(RECOVERY, || async {
        let response = ca
            .post(
                "/v1/keys",
                ADMIN,
                json!({"name": "after", "owner": "acct_outage", "rate_limit_per_minute": 1000}),
            )
            .await;
        if response.status() != StatusCode::CREATED {
            return false;
        }
        let record = response.json().await.expect("a created key");
        *created.lock().expect("not poisoned") = record;
        true
    })
    .await;
    assert!(
        made,
        "no key could be made {RECOVERY:?} after Redis came back"
    );
    let created = created.into_inner().expect("not poisoned");
    let (new_id, new_key) = (id_of(&created), key_of(&created));
    wait_known(cb, &new_id).await;
    for client in [ca, cb] {
        let works = eventually(RECOVERY, || async {
            client.chat(&new_key, "new").await.status() == StatusCode::OK
        })
        .await;
        assert!(
            works,
            "{} refuses a key made after the recovery",
            client.base
        );
        wait_until_shared(client, &new_key).await;
    }

    // The limits are shared again: exact across both instances.
    let limited = ca
        .create_key(
            ADMIN,
            json!({"name": "limited after", "owner": "acct_outage", "rate_limit_per_minute": 2}),
        )
        .await;
    wait_known(cb, &id_of(&limited)).await;
    assert_exact_shared_limit([ca, cb], &key_of(&limited), 2, 2).await;
}

/// A pair of instances with `policy` (unset: the default) and no demo key,
/// a key of `rpm` made on the first and known to both.
async fn outage_setup(
    redis: &RedisServer,
    policy: Option<&str>,
    rpm: u64,
) -> (ServerProcess, ServerProcess, String) {
    let mut vars = vec![("LUMYX_DEMO_KEY", "false")];
    if let Some(policy) = policy {
        vars.push(("LUMYX_REDIS_OUTAGE", policy));
    }
    let a = start_on(&redis.url(), &vars).await;
    let b = start_on(&redis.url(), &vars).await;
    let created = a
        .client()
        .create_key(
            ADMIN,
            json!({"name": "before", "owner": "acct_outage", "rate_limit_per_minute": rpm}),
        )
        .await;
    wait_known(&b.client(), &id_of(&created)).await;
    (a, b, key_of(&created))
}

/// The end of every outage test: what every policy shares while Redis is
/// down; then Redis back, the instances sharing again, and logs without
/// the admin token or the key.
async fn end_outage(redis: &mut RedisServer, a: ServerProcess, b: ServerProcess, key: &str) {
    let (ca, cb) = (a.client(), b.client());
    assert_down_elsewhere(&ca, &cb).await;
    redis.restart().expect("redis-server starts again");
    assert_recovers(&ca, &cb, key).await;
    let secrets = [ADMIN, key];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
}

/// What every policy shares while Redis is down: usage (which has no
/// outage policy) and key writes answer 503, and the gauge says degraded.
async fn assert_down_elsewhere(ca: &Client, cb: &Client) {
    for client in [ca, cb] {
        let response = client.get("/v1/keys", ADMIN).await;
        let listed: Value = response.json().await.expect("a key list");
        let id = listed["data"][0]["id"]
            .as_str()
            .expect("a key in the table");
        expect_error(
            client.get(&format!("/v1/keys/{id}/usage"), ADMIN).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
        )
        .await;
        assert_eq!(degraded(client).await, Some(1), "{}", client.base);
    }
    expect_error(
        ca.post(
            "/v1/keys",
            ADMIN,
            json!({"name": "during", "owner": "acct_outage"}),
        )
        .await,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_closed_refuses_with_503_then_recovers() {
    let Some(mut redis) = RedisServer::start_or_skip("outage_closed") else {
        return;
    };
    let (a, b, key) = outage_setup(&redis, Some("closed"), 60).await;
    let (ca, cb) = (a.client(), b.client());
    for client in [&ca, &cb] {
        assert_eq!(client.chat(&key, "up").await.status(), StatusCode::OK);
        assert_eq!(degraded(client).await, Some(0));
    }

    redis.stop();
    // The first request finds Redis down, the next ones know it is.
    for client in [&ca, &cb, &ca, &cb] {
        let response = client.chat(&key, "down").await;
        assert!(
            !response
                .headers()
                .contains_key("x-ratelimit-remaining-requests"),
            "no limit headers without a decision"
        );
        let error = expect_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
        )
        .await;
        assert_eq!(error["type"], "server_error", "{error}");
    }
    end_outage(&mut redis, a, b, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_open_admits_everything_then_recovers() {
    let Some(mut redis) = RedisServer::start_or_skip("outage_open") else {
        return;
    };
    let (a, b, key) = outage_setup(&redis, Some("open"), 1).await;
    let (ca, cb) = (a.client(), b.client());
    // While Redis is up the one request a minute holds across both.
    assert_eq!(ca.chat(&key, "up").await.status(), StatusCode::OK);
    expect_error(
        cb.chat(&key, "up").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
    )
    .await;

    redis.stop();
    // Failing open admits every request of a known key, over its limit.
    for client in [&ca, &cb, &ca, &cb, &ca, &cb] {
        let response = client.chat(&key, "down").await;
        assert_eq!(response.status(), StatusCode::OK, "{}", client.base);
        let body: Value = response.json().await.expect("a chat completion");
        assert_eq!(body["object"], "chat.completion", "{body}");
    }
    // Unknown keys are still refused: the table is local.
    expect_error(
        ca.chat(&format!("nova_{}", "0".repeat(59)), "down").await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    end_outage(&mut redis, a, b, &key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fallback_limits_each_instance_locally_then_recovers() {
    let Some(mut redis) = RedisServer::start_or_skip("outage_fallback") else {
        return;
    };
    // The default policy: no LUMYX_REDIS_OUTAGE.
    const RPM: u64 = 3;
    let (a, b, key) = outage_setup(&redis, None, RPM).await;
    let (ca, cb) = (a.client(), b.client());
    let response = ca.chat(&key, "up").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "x-ratelimit-remaining-requests").as_deref(),
        Some("2")
    );

    redis.stop();
    // Each instance limits alone, from a full bucket of its own: within the
    // limit it serves, past it it refuses.
    for client in [&ca, &cb] {
        for i in 0..RPM {
            let response = client.chat(&key, "down").await;
            let at = format!("request {i} on {} while Redis is down", client.base);
            assert_eq!(response.status(), StatusCode::OK, "{at}");
            assert_eq!(
                header(&response, "x-ratelimit-remaining-requests").as_deref(),
                Some((RPM - 1 - i).to_string().as_str()),
                "{at}"
            );
        }
        let response = client.chat(&key, "down").await;
        assert!(response.headers().contains_key("retry-after"));
        expect_error(
            response,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
        )
        .await;
    }
    end_outage(&mut redis, a, b, &key).await;
}

/// Runs the binary with `vars` (and a free port) until it exits, for at most
/// 20 seconds: its exit status, standard output and standard error.
async fn run_to_exit(vars: &[(&str, &str)]) -> (std::process::ExitStatus, String, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_lumyx-server"))
        .env_clear()
        .env("LUMYX_ADDR", &addr)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the lumyx-server binary runs");
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the server exits within 20 s instead of hanging")
        .expect("its output");
    (
        output.status,
        String::from_utf8(output.stdout).expect("UTF-8 output"),
        String::from_utf8(output.stderr).expect("UTF-8 log"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_redis_url_ends_the_process_with_one_line_naming_it() {
    for url in [
        "http://x",
        "http://user:hunter2-secret@x:6379/0",
        "redis://",
    ] {
        let (status, stdout, stderr) =
            run_to_exit(&[("LUMYX_REDIS_URL", url), ("LUMYX_ADMIN_TOKEN", ADMIN)]).await;
        assert!(!status.success(), "{url}: {status}");
        assert_eq!(status.code(), Some(2), "{url}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{url}: one line: {stderr:?}");
        assert!(stderr.contains("LUMYX_REDIS_URL"), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
        assert!(!stderr.contains(ADMIN), "{stderr}");
        assert!(stdout.is_empty(), "{url}: no banner: {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_url_of_a_closed_port_ends_the_process_with_a_message() {
    // Nothing listens on a port that was free a moment ago.
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let started = std::time::Instant::now();
    let (status, stdout, stderr) =
        run_to_exit(&[("LUMYX_REDIS_URL", &url), ("LUMYX_ADMIN_TOKEN", ADMIN)]).await;
    assert!(!status.success(), "{status}: {stderr}");
    assert!(stdout.is_empty(), "no banner: {stdout}");
    let last = stderr.lines().last().expect("a message on standard error");
    assert!(last.starts_with("lumyx-server: "), "{stderr}");
    assert!(last.to_lowercase().contains("redis"), "{stderr}");
    assert!(!stderr.contains(ADMIN), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?} to give up",
        started.elapsed()
    );
}
