//! The `lumyx-server` binary with its state in a real Redis (SPEC §2.1, §5):
//! two processes sharing one Redis act as one (keys, exact limits,
//! revocations within a second, usage, conversations); each outage policy
//! while Redis is down, and the recovery once it is back; and how the
//! process ends when its Redis URL is bad or points at nothing.
//!
//! Every test starts its own `redis-server` and skips with a note when there
//! is none (unless `LUMYX_REQUIRE_REDIS` is set).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Client, ServerProcess, eventually, expect_error, free_port, key_of};
use lumyx_test_support::RedisServer;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

/// The admin token both instances of a test are given, so the admin API
/// answers on either.
const ADMIN: &str = "redis-mode-admin-token-0123456789";

/// How long an instance may take to obey a key write made through another
/// (SPEC §5: within 1 second).
const PROPAGATION: Duration = Duration::from_secs(1);

/// How long the servers may take to use Redis again once it is back.
const RECOVERY: Duration = Duration::from_secs(5);

/// Starts one `lumyx-server` process on `redis` with the shared admin
/// token and `extra` variables.
async fn start_on(redis: &RedisServer, extra: &[(&str, &str)]) -> ServerProcess {
    let url = redis.url();
    let mut vars = vec![
        ("LUMYX_REDIS_URL", url.as_str()),
        ("LUMYX_ADMIN_TOKEN", ADMIN),
    ];
    vars.extend_from_slice(extra);
    ServerProcess::start(&vars).await
}

/// A header of `response` as text, if present.
fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("a visible ASCII header").to_owned())
}

/// The `id` of a created key.
fn id_of(created: &Value) -> String {
    created["id"].as_str().expect("an id field").to_owned()
}

/// Waits until `client`'s instance knows the key `id` (its admin API reads
/// the same table its gate does), and asserts it did within 1 second.
async fn wait_known(client: &Client, id: &str) {
    let known = eventually(PROPAGATION, || async {
        client.get(&format!("/v1/keys/{id}"), ADMIN).await.status() == StatusCode::OK
    })
    .await;
    assert!(known, "{} did not learn key {id} within 1 s", client.base);
}

/// The usage of key `id` as `client`'s instance answers it.
async fn usage(client: &Client, id: &str) -> Value {
    let response = client.get(&format!("/v1/keys/{id}/usage"), ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK, "usage of {id}");
    response.json().await.expect("a usage object")
}

/// The value of the `lumyx_redis_degraded` gauge of `client`'s instance.
async fn degraded(client: &Client) -> Option<i64> {
    let response = client.get("/metrics", ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK, "metrics");
    let text = response.text().await.expect("a metrics text");
    text.lines()
        .find_map(|line| line.strip_prefix("lumyx_redis_degraded "))
        .map(|value| value.trim().parse().expect("a gauge value"))
}

/// Waits until `client`'s limiter uses Redis again: each try sends a chat
/// with `key` (a request is what probes Redis while it is marked down), then
/// reads the degraded gauge.
async fn wait_until_shared(client: &Client, key: &str) {
    let shared = eventually(RECOVERY, || async {
        let _ = client.chat(key, "probe").await;
        degraded(client).await == Some(0)
    })
    .await;
    assert!(
        shared,
        "{} still applies its outage policy {RECOVERY:?} after Redis came back",
        client.base
    );
}

/// Sends chats with `key` alternately to `clients[0]` and `clients[1]`:
/// exactly `rpm` are admitted, with the remaining count going down across
/// both instances, then both refuse with 429 `rate_limit_exceeded`.
async fn assert_exact_shared_limit(clients: [&Client; 2], key: &str, rpm: u64, refused: u64) {
    for i in 0..rpm + refused {
        let client = clients[usize::from(i % 2 == 1)];
        let response = client.chat(key, "count me").await;
        let at = format!("request {i} on {}", client.base);
        assert_eq!(
            header(&response, "x-ratelimit-limit-requests").as_deref(),
            Some(rpm.to_string().as_str()),
            "{at}"
        );
        let remaining = header(&response, "x-ratelimit-remaining-requests");
        if i < rpm {
            assert_eq!(response.status(), StatusCode::OK, "{at}");
            assert_eq!(
                remaining.as_deref(),
                Some((rpm - 1 - i).to_string().as_str()),
                "{at}"
            );
        } else {
            assert_eq!(remaining.as_deref(), Some("0"), "{at}");
            let retry_after: u64 = header(&response, "retry-after")
                .expect("retry-after on a 429")
                .parse()
                .expect("whole seconds");
            assert!(retry_after >= 1, "{at}: retry-after {retry_after}");
            expect_error(
                response,
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
            )
            .await;
        }
    }
}

/// Stops `server` with SIGTERM, expects a clean exit, and checks that its log
/// holds none of `secrets`; answers the log.
async fn stop_and_check_log(server: ServerProcess, secrets: &[&str]) -> String {
    let base = server.base.clone();
    let (status, log) = server.terminate().await;
    assert!(status.success(), "{base} exited with {status}: {log}");
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "the log of {base} holds a secret ({}…): {log}",
            &secret[..8]
        );
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_keys_exact_limits_revocations_and_usage() {
    let Some(redis) = RedisServer::start_or_skip("two_instances_share_keys") else {
        return;
    };
    let a = start_on(&redis, &[]).await;
    let b = start_on(&redis, &[]).await;
    let (ca, cb) = (a.client(), b.client());

    // The first instance on an empty Redis makes the demo key; the second
    // finds keys there and makes none. The demo key works on both.
    let demo = a
        .banner_value("demo key")
        .expect("the first instance made a demo key");
    assert_eq!(b.banner_value("demo key"), None, "{}", b.banner);
    assert_eq!(ca.chat(&demo, "hi").await.status(), StatusCode::OK);
    assert_eq!(cb.chat(&demo, "hi").await.status(), StatusCode::OK);

    // A key made on A works on B.
    let general = ca
        .create_key(ADMIN, json!({"name": "general", "owner": "acct_shared"}))
        .await;
    let (general_id, general_key) = (id_of(&general), key_of(&general));
    wait_known(&cb, &general_id).await;
    let response = cb.chat(&general_key, "hello from B").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("a chat completion");
    assert_eq!(body["object"], "chat.completion", "{body}");

    // The minute limit holds exactly across both instances.
    const RPM: u64 = 10;
    let limited = ca
        .create_key(
            ADMIN,
            json!({"name": "limited", "owner": "acct_shared", "rate_limit_per_minute": RPM}),
        )
        .await;
    let (limited_id, limited_key) = (id_of(&limited), key_of(&limited));
    wait_known(&cb, &limited_id).await;
    assert_exact_shared_limit([&ca, &cb], &limited_key, RPM, 4).await;
    for client in [&ca, &cb] {
        let usage = usage(client, &limited_id).await;
        for period in ["today", "total"] {
            assert_eq!(usage[period]["admitted"], RPM, "{period}: {usage}");
            assert_eq!(usage[period]["denied"], 4, "{period}: {usage}");
            assert_eq!(
                usage[period]["denied_by_reason"]["rate_limit_exceeded"], 4,
                "{period}: {usage}"
            );
        }
        assert_eq!(usage["limits"]["minute"]["limit"], RPM, "{usage}");
        assert_eq!(usage["limits"]["minute"]["remaining"], 0, "{usage}");
    }

    // Usage read on B counts what A admitted.
    for _ in 0..3 {
        assert_eq!(ca.chat(&general_key, "on A").await.status(), StatusCode::OK);
    }
    let seen_on_b = usage(&cb, &general_id).await;
    assert_eq!(seen_on_b["id"], general_id.as_str(), "{seen_on_b}");
    assert_eq!(seen_on_b["total"]["admitted"], 4, "{seen_on_b}");
    assert_eq!(seen_on_b["today"]["admitted"], 4, "{seen_on_b}");
    assert!(seen_on_b["last_used_at"].is_i64(), "{seen_on_b}");
    assert_eq!(seen_on_b["days"].as_array().map(Vec::len), Some(31));

    // A revocation on A is obeyed by B within a second.
    let response = ca.delete(&format!("/v1/keys/{general_id}"), ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK);
    let revoked: Value = response.json().await.expect("the revoked record");
    assert!(revoked["revoked_at"].is_i64(), "{revoked}");
    expect_error(
        ca.chat(&general_key, "after revoke").await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;
    let refused_on_b = eventually(PROPAGATION, || async {
        cb.chat(&general_key, "after revoke").await.status() == StatusCode::FORBIDDEN
    })
    .await;
    assert!(refused_on_b, "B still admits a key revoked on A after 1 s");
    let response = cb.chat(&general_key, "after revoke").await;
    assert!(
        !response
            .headers()
            .contains_key("x-ratelimit-remaining-requests"),
        "no limit headers on a revoked key's 403"
    );
    expect_error(response, StatusCode::FORBIDDEN, "api_key_revoked").await;
    let shown_on_b: Value = cb
        .get(&format!("/v1/keys/{general_id}"), ADMIN)
        .await
        .json()
        .await
        .expect("the record on B");
    assert_eq!(shown_on_b["revoked_at"], revoked["revoked_at"]);
    // The refusals are counted, and nothing more was admitted.
    let after = usage(&cb, &general_id).await;
    assert_eq!(after["total"]["admitted"], 4, "{after}");
    assert!(
        after["total"]["denied_by_reason"]["api_key_revoked"]
            .as_u64()
            .is_some_and(|count| count >= 3),
        "{after}"
    );

    // Neither log holds a key or the admin token; A's does say which key
    // was made (by its public id), so the check is not of an empty log.
    let secrets = [
        ADMIN,
        demo.as_str(),
        general_key.as_str(),
        limited_key.as_str(),
    ];
    let log_a = stop_and_check_log(a, &secrets).await;
    let log_b = stop_and_check_log(b, &secrets).await;
    assert!(log_a.contains(&general_id), "{log_a}");
    assert!(log_b.contains("listening"), "{log_b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_conversations() {
    let Some(redis) = RedisServer::start_or_skip("two_instances_share_conversations") else {
        return;
    };
    let no_demo = [("LUMYX_DEMO_KEY", "false")];
    let a = start_on(&redis, &no_demo).await;
    let b = start_on(&redis, &no_demo).await;
    let (ca, cb) = (a.client(), b.client());
    let mine = ca
        .create_key(ADMIN, json!({"name": "mine", "owner": "acct_conv"}))
        .await;
    let theirs = ca
        .create_key(ADMIN, json!({"name": "theirs", "owner": "acct_other"}))
        .await;
    let (mine_key, theirs_key) = (key_of(&mine), key_of(&theirs));
    wait_known(&cb, &id_of(&mine)).await;
    wait_known(&cb, &id_of(&theirs)).await;

    // Made on A...
    let response = ca
        .post(
            "/v1/conversations",
            &mine_key,
            json!({"metadata": {"topic": "x"}, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.expect("a conversation");
    let id = created["id"]
        .as_str()
        .expect("a conversation id")
        .to_owned();
    assert!(id.starts_with("conv_"), "{created}");

    // ...read on B.
    let response = cb.get(&format!("/v1/conversations/{id}"), &mine_key).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "B does not find the conversation made on A"
    );
    let shown: Value = response.json().await.expect("a conversation");
    assert_eq!(shown["id"], id.as_str(), "{shown}");
    assert_eq!(shown["metadata"]["topic"], "x", "{shown}");
    assert_eq!(shown["created_at"], created["created_at"], "{shown}");

    let response = cb
        .get(&format!("/v1/conversations/{id}/messages"), &mine_key)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let messages: Value = response.json().await.expect("a message list");
    assert_eq!(messages["object"], "list", "{messages}");
    assert_eq!(messages["has_more"], false, "{messages}");
    let data = messages["data"].as_array().expect("a data array");
    assert_eq!(data.len(), 1, "{messages}");
    assert_eq!(data[0]["role"], "user", "{messages}");
    assert_eq!(data[0]["content"], "hi", "{messages}");
    assert!(
        data[0]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("msg_"))
    );

    // Another owner's key gets 404 on either instance, as for no
    // conversation at all.
    for client in [&ca, &cb] {
        expect_error(
            client
                .get(&format!("/v1/conversations/{id}"), &theirs_key)
                .await,
            StatusCode::NOT_FOUND,
            "conversation_not_found",
        )
        .await;
    }

    // A chat on B that extends it is seen on A.
    let response = cb
        .post(
            "/v1/chat/completions",
            &mine_key,
            json!({
                "model": "nova_1_1",
                "conversation_id": id,
                "messages": [{"role": "user", "content": "more"}],
            }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = ca
        .get(
            &format!("/v1/conversations/{id}/messages?order=asc"),
            &mine_key,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let messages: Value = response.json().await.expect("a message list");
    let roles: Vec<&str> = messages["data"]
        .as_array()
        .expect("a data array")
        .iter()
        .map(|message| message["role"].as_str().expect("a role"))
        .collect();
    assert_eq!(roles, ["user", "user", "assistant"], "{messages}");
    assert_eq!(messages["data"][1]["content"], "more", "{messages}");

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
    let a = start_on(redis, &vars).await;
    let b = start_on(redis, &vars).await;
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
    assert_down_elsewhere(&ca, &cb).await;

    redis.restart().expect("redis-server starts again");
    assert_recovers(&ca, &cb, &key).await;
    let secrets = [ADMIN, key.as_str()];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
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
    assert_down_elsewhere(&ca, &cb).await;

    redis.restart().expect("redis-server starts again");
    assert_recovers(&ca, &cb, &key).await;
    let secrets = [ADMIN, key.as_str()];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
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
    assert_down_elsewhere(&ca, &cb).await;

    redis.restart().expect("redis-server starts again");
    assert_recovers(&ca, &cb, &key).await;
    let secrets = [ADMIN, key.as_str()];
    stop_and_check_log(a, &secrets).await;
    stop_and_check_log(b, &secrets).await;
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
