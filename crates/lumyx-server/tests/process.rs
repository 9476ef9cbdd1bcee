//! The `lumyx-server` binary as an operator runs it: a bad variable stops
//! the start with a message naming it; the banner's curl line works as
//! pasted; JSON logs through a key's whole lifecycle carry the request id
//! and the key's id, and never a key or the admin token; SIGTERM ends it
//! cleanly.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{ServerProcess, expect_error, key_of};
use lumyx_keys::{KeyFormat, Scanner};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn a_bad_variable_stops_the_start_naming_it() {
    for (variable, value) in [
        ("LUMYX_ADDR", "nowhere"),
        ("LUMYX_ADMIN_TOKEN", "short"),
        ("LUMYX_REDIS_URL", "http://example.com"),
        ("LUMYX_LOG_FORMAT", "xml"),
        ("LUMYX_REQUEST_TIMEOUT_SECS", "-1"),
    ] {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lumyx-server"))
            .env_clear()
            .env("LUMYX_ADDR", "127.0.0.1:0")
            .env(variable, value)
            .stdin(Stdio::null())
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("it stops at once")
            .expect("the binary runs");
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(variable), "{variable} named in: {stderr}");
        if variable == "LUMYX_ADMIN_TOKEN" {
            assert!(
                !stderr.contains(value),
                "a secret is not repeated: {stderr}"
            );
        }
        assert!(output.stdout.is_empty());
    }
}

/// Runs the banner's curl line as a shell would, against the server.
async fn run_banner_curl(banner: &str) -> Option<Value> {
    let line = banner
        .lines()
        .find(|line| line.trim_start().starts_with("curl "))?;
    let curl_installed = std::process::Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !curl_installed {
        eprintln!("note: the banner's curl line was not run: curl is not installed");
        return None;
    }
    let output = tokio::process::Command::new("sh")
        .args(["-c", &format!("{} --silent --fail-with-body", line.trim())])
        .output()
        .await
        .expect("sh runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    Some(serde_json::from_slice(&output.stdout).expect("a chat completion"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_of_a_keys_whole_life_holds_no_key_and_names_requests() {
    let server = ServerProcess::start(&[
        ("LUMYX_LOG_FORMAT", "json"),
        (
            "RUST_LOG",
            "info,lumyx_server=trace,lumyx_gate=trace,lumyx_keys=trace",
        ),
    ])
    .await;
    let admin = server.banner_value("admin token").expect("an admin token");
    let demo_key = server.banner_value("demo key").expect("a demo key");
    if let Some(completion) = run_banner_curl(&server.banner).await {
        assert_eq!(completion["object"], "chat.completion");
    }
    let api = server.client();
    let mut secrets = vec![admin.clone(), demo_key.clone()];

    let created = api
        .create_key(
            &admin,
            json!({"name": "ci", "owner": "acct_log", "rate_limit_per_minute": 2}),
        )
        .await;
    let key = key_of(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    // The key in a message, a path and a bad header: none of it is logged.
    assert_eq!(
        api.chat(&key, &format!("my key is {key}")).await.status(),
        StatusCode::OK
    );
    expect_error(
        api.get(&format!("/v1/models/{key}"), &key).await,
        StatusCode::NOT_FOUND,
        "model_not_found",
    )
    .await;
    expect_error(
        api.get("/v1/models", &key).await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
    )
    .await;
    let rotated: Value = api
        .post(&format!("/v1/keys/{id}/rotate"), &admin, json!({}))
        .await
        .json()
        .await
        .unwrap();
    let new_key = key_of(&rotated);
    secrets.push(new_key.clone());
    expect_error(
        api.get("/v1/models", &key).await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;
    assert_eq!(
        api.get("/v1/models", &new_key).await.status(),
        StatusCode::OK
    );
    api.delete(
        &format!("/v1/keys/{}", rotated["id"].as_str().unwrap()),
        &admin,
    )
    .await;
    expect_error(
        api.get("/v1/models", &new_key).await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;
    expect_error(
        api.get("/v1/keys", &new_key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;

    let (status, log) = server.terminate().await;
    assert!(status.success(), "SIGTERM ends it cleanly: {status}\n{log}");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret in the log:\n{log}"
        );
    }
    let leaked: Vec<_> = Scanner::new(KeyFormat::default()).scan(&log).collect();
    assert!(leaked.is_empty(), "keys in the log: {leaked:?}");

    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("a JSON line: {line}")))
        .collect();
    let answered: Vec<&Value> = lines
        .iter()
        .filter(|line| line["fields"]["message"] == "answered")
        .collect();
    assert!(answered.len() >= 10, "{log}");
    for line in &answered {
        let request_id = line["span"]["id"].as_str().expect("the request id");
        assert!(request_id.starts_with("req_"), "{line}");
    }
    let with_key = answered
        .iter()
        .filter(|line| line["span"]["key"] == id.as_str())
        .count();
    assert!(with_key >= 3, "the key's id names its requests:\n{log}");
}
