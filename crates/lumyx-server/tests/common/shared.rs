//! What the tests of `lumyx-server` processes sharing one Redis (a server or
//! a cluster) have in common (SPEC §2.1, §5): starting an instance on it,
//! reading its limits, usage and degraded state, and the scenarios that
//! must hold on any shared store: two instances act as one for keys, exact
//! limits, revocations within a second, usage and conversations.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Client, ServerProcess, eventually, expect_error, key_of};

/// The admin token every instance of a test is given, so the admin API
/// answers on any of them.
pub const ADMIN: &str = "redis-mode-admin-token-0123456789";

/// How long an instance may take to obey a key write made through another
/// (SPEC §5: within 1 second).
pub const PROPAGATION: Duration = Duration::from_secs(1);

/// How long the servers may take to use Redis again once it is back.
pub const RECOVERY: Duration = Duration::from_secs(5);

/// Starts one `lumyx-server` process on the Redis at `url` (one URL, or a
/// cluster's comma-separated node URLs) with the shared admin token and
/// `extra` variables.
pub async fn start_on(url: &str, extra: &[(&str, &str)]) -> ServerProcess {
    let mut vars = vec![("LUMYX_REDIS_URL", url), ("LUMYX_ADMIN_TOKEN", ADMIN)];
    vars.extend_from_slice(extra);
    ServerProcess::start(&vars).await
}

/// A header of `response` as text, if present.
pub fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("a visible ASCII header").to_owned())
}

/// The `id` of a created key.
pub fn id_of(created: &Value) -> String {
    created["id"].as_str().expect("an id field").to_owned()
}

/// Waits until `client`'s instance knows the key `id` (its admin API reads
/// the same table its gate does), and asserts it did within 1 second.
pub async fn wait_known(client: &Client, id: &str) {
    let known = eventually(PROPAGATION, || async {
        client.get(&format!("/v1/keys/{id}"), ADMIN).await.status() == StatusCode::OK
    })
    .await;
    assert!(known, "{} did not learn key {id} within 1 s", client.base);
}

/// The usage of key `id` as `client`'s instance answers it.
pub async fn usage(client: &Client, id: &str) -> Value {
    let response = client.get(&format!("/v1/keys/{id}/usage"), ADMIN).await;
    assert_eq!(response.status(), StatusCode::OK, "usage of {id}");
    response.json().await.expect("a usage object")
}

/// The value of the `lumyx_redis_degraded` gauge of `client`'s instance.
pub async fn degraded(client: &Client) -> Option<i64> {
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
pub async fn wait_until_shared(client: &Client, key: &str) {
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
pub async fn assert_exact_shared_limit(clients: [&Client; 2], key: &str, rpm: u64, refused: u64) {
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
pub async fn stop_and_check_log(server: ServerProcess, secrets: &[&str]) -> String {
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

/// What [`assert_share_keys`] made: the keys no log may hold, and the id of
/// a key the first instance made (so its log names it).
pub struct SharedKeys {
    pub keys: Vec<String>,
    pub made_on_first: String,
}

impl SharedKeys {
    /// Stops both instances and checks their logs: neither holds a key of
    /// `self`, of `more`, or the admin token; the first's does say which key
    /// was made (by its public id), so the check is not of an empty log.
    pub async fn stop_and_check_logs(&self, a: ServerProcess, b: ServerProcess, more: &[String]) {
        let mut secrets = vec![ADMIN];
        secrets.extend(self.keys.iter().chain(more).map(String::as_str));
        let log_a = stop_and_check_log(a, &secrets).await;
        let log_b = stop_and_check_log(b, &secrets).await;
        assert!(log_a.contains(&self.made_on_first), "{log_a}");
        assert!(log_b.contains("listening"), "{log_b}");
    }
}

/// Two instances `a` and `b` started in this order on one empty store
/// (demo key on) act as one: the demo key made by the first works on both;
/// a key made on A works on B; a minute limit holds exactly across both,
/// and both count the same usage; a revocation on A is obeyed by B within a
/// second, its refusals counted and nothing more admitted.
pub async fn assert_share_keys(a: &ServerProcess, b: &ServerProcess) -> SharedKeys {
    let (ca, cb) = (a.client(), b.client());

    // The first instance on an empty Redis makes the demo key; the second
    // finds keys there and makes none. The demo key works on both.
    let demo = a
        .banner_value("demo key")
        .unwrap_or_else(|| panic!("the first instance made no demo key: {}", a.banner));
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
    assert_revoked(&cb, &general_key).await;
    let shown_on_b = cb.get_json(&format!("/v1/keys/{general_id}"), ADMIN).await;
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

    SharedKeys {
        keys: vec![demo, general_key, limited_key],
        made_on_first: general_id,
    }
}

/// `client` refuses `key` as revoked, without limit headers (SPEC §3: none
/// on a revoked key's 403).
pub async fn assert_revoked(client: &Client, key: &str) {
    let response = client.chat(key, "after revoke").await;
    assert!(
        !response
            .headers()
            .contains_key("x-ratelimit-remaining-requests"),
        "no limit headers on a revoked key's 403 from {}",
        client.base
    );
    expect_error(response, StatusCode::FORBIDDEN, "api_key_revoked").await;
}

/// Two instances on one store (demo key off) share conversations: one made
/// on A is read on B, with its messages; another owner's key gets 404 on
/// either, as for no conversation at all; a chat on B that extends it is
/// seen on A. Answers the keys it made, which no log may hold.
pub async fn assert_share_conversations(ca: &Client, cb: &Client) -> [String; 2] {
    let mine = ca
        .create_key(ADMIN, json!({"name": "mine", "owner": "acct_conv"}))
        .await;
    let theirs = ca
        .create_key(ADMIN, json!({"name": "theirs", "owner": "acct_other"}))
        .await;
    let (mine_key, theirs_key) = (key_of(&mine), key_of(&theirs));
    wait_known(cb, &id_of(&mine)).await;
    wait_known(cb, &id_of(&theirs)).await;

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
    for client in [ca, cb] {
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

    [mine_key, theirs_key]
}
