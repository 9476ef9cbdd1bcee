//! The durable default: the `lumyx-server` binary on a data directory keeps
//! its keys, limits, usage, conversations and admin token across a restart
//! (SIGTERM) and a crash (SIGKILL); a second server on the same directory is
//! refused; `backup` copies the database while a server runs; a database
//! from the first schema opens.

mod common;

use std::time::Duration;

use common::{ServerProcess, TempDir, eventually, expect_error, key_of};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server on `dir`, with JSON logs off the test's output.
async fn start_on(dir: &TempDir) -> ServerProcess {
    ServerProcess::start(&[("LUMYX_DATA_DIR", dir.path().to_str().unwrap())]).await
}

async fn usage(api: &common::Client, admin: &str, id: &str) -> Value {
    api.get_json(&format!("/v1/keys/{id}/usage"), admin).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_keys_limits_usage_conversations_and_the_admin_token() {
    let dir = TempDir::new("restart");
    let first = start_on(&dir).await;
    let admin = first
        .banner_value("admin token")
        .expect("the first start shows the token");
    assert!(
        first.banner_value("demo key").is_some(),
        "the first start makes a demo key"
    );
    let api = first.client();
    let created = api
        .create_key(
            &admin,
            json!({"name": "app", "owner": "acct_1", "rate_limit_per_minute": 10, "daily_limit": 5, "scopes": ["chat", "models", "conversations"]}),
        )
        .await;
    let key = key_of(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    let doomed = api
        .create_key(&admin, json!({"name": "old", "owner": "acct_1"}))
        .await;
    api.delete(
        &format!("/v1/keys/{}", doomed["id"].as_str().unwrap()),
        &admin,
    )
    .await;
    for _ in 0..2 {
        assert_eq!(api.chat(&key, "before").await.status(), StatusCode::OK);
    }
    let conversation: Value = api
        .post(
            "/v1/conversations",
            &key,
            json!({"messages": [{"role": "user", "content": "remember me"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let (status, _) = first.terminate().await;
    assert!(status.success());

    let second = start_on(&dir).await;
    assert!(
        !second.banner.contains(&admin),
        "the token is not shown again"
    );
    assert!(second.banner.contains("first start"), "{}", second.banner);
    assert_eq!(second.banner_value("demo key"), None, "no second demo key");
    let api = second.client();
    let shown: Value = api.get_json(&format!("/v1/keys/{id}"), &admin).await;
    assert_eq!(shown["rate_limit_per_minute"], 10);
    assert_eq!(shown["scopes"], json!(["models", "chat", "conversations"]));
    // Both quotas are where they were: 3 spent (2 chats, 1 conversation),
    // so this fourth request leaves 1 of 5 for the day and at most 6 of 10
    // for the minute (a fresh bucket would leave 9).
    let after = api.chat(&key, "after").await;
    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(after.headers()["x-ratelimit-remaining-requests-day"], "1");
    let minute: u32 = after.headers()["x-ratelimit-remaining-requests"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(minute <= 7, "the minute bucket was kept: {minute} left");
    expect_error(
        api.get("/v1/models", &key_of(&doomed)).await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;
    let counted = usage(&api, &admin, &id).await;
    assert_eq!(counted["total"]["admitted"], 4);
    let messages: Value = api
        .get_json(
            &format!(
                "/v1/conversations/{}/messages",
                conversation["id"].as_str().unwrap()
            ),
            &key,
        )
        .await;
    assert_eq!(messages["data"][0]["content"], "remember me");
    let (status, log) = second.terminate().await;
    assert!(status.success());
    assert!(!log.contains(&key) && !log.contains(&admin));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loses_at_most_the_last_second_of_counts_and_nothing_acknowledged() {
    let dir = TempDir::new("crash");
    let mut first = start_on(&dir).await;
    let admin = first.banner_value("admin token").unwrap();
    let api = first.client();
    let created = api
        .create_key(&admin, json!({"name": "load", "owner": "acct_2", "rate_limit_per_minute": 1000, "daily_limit": 10000}))
        .await;
    let key = key_of(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    let mut conversations = Vec::new();
    for i in 0..20 {
        let made: Value = api
            .post(
                "/v1/conversations",
                &key,
                json!({"metadata": {"n": i.to_string()}}),
            )
            .await
            .json()
            .await
            .unwrap();
        conversations.push(made["id"].as_str().unwrap().to_owned());
    }
    for _ in 0..30 {
        assert_eq!(api.get("/v1/models", &key).await.status(), StatusCode::OK);
    }
    // 50 admitted; let a save pass take them, then crash under more load.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let load = tokio::spawn({
        let api = api.clone();
        let key = key.clone();
        async move {
            let mut sent = 0u64;
            loop {
                sent += 1;
                if api
                    .http
                    .get(format!("{}/v1/models", api.base))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .is_err()
                {
                    return sent;
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();
    let sent_under_load = load.await.unwrap();

    let second = start_on(&dir).await;
    let api = second.client();
    assert_eq!(api.get("/v1/models", &key).await.status(), StatusCode::OK);
    for id in &conversations {
        assert_eq!(
            api.get(&format!("/v1/conversations/{id}"), &key)
                .await
                .status(),
            StatusCode::OK
        );
    }
    let counted = usage(&api, &admin, &id).await;
    let admitted = counted["total"]["admitted"].as_u64().unwrap();
    assert!(
        admitted >= 50,
        "nothing saved a second before the kill is lost: {counted}"
    );
    assert!(
        admitted <= 51 + sent_under_load,
        "nothing counted twice: {counted}"
    );
    let (status, _) = second.terminate().await;
    assert!(status.success());

    let db = rusqlite::Connection::open(dir.path().join("lumyx.sqlite3")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_directory_is_refused() {
    let dir = TempDir::new("lock");
    let first = start_on(&dir).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lumyx-server"))
        .env_clear()
        .env("LUMYX_ADDR", "127.0.0.1:0")
        .env("LUMYX_DATA_DIR", dir.path())
        .output();
    let output = tokio::time::timeout(Duration::from_secs(20), output)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another lumyx-server uses the data directory"),
        "{stderr}"
    );
    let api = first.client();
    assert_eq!(
        api.call(reqwest::Method::GET, "/health", None, None)
            .await
            .status(),
        StatusCode::OK
    );
    first.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_opens_as_a_data_directory() {
    let dir = TempDir::new("backup-source");
    let copy = TempDir::new("backup-copy");
    std::fs::create_dir_all(copy.path()).unwrap();
    let server = start_on(&dir).await;
    let admin = server.banner_value("admin token").unwrap();
    let created = server
        .client()
        .create_key(&admin, json!({"name": "kept", "owner": "acct_3"}))
        .await;
    let backup = tokio::process::Command::new(env!("CARGO_BIN_EXE_lumyx-server"))
        .args([
            "backup",
            copy.path().join("lumyx.sqlite3").to_str().unwrap(),
        ])
        .env_clear()
        .env("LUMYX_DATA_DIR", dir.path())
        .output()
        .await
        .unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    server.terminate().await;

    let restored = start_on(&copy).await;
    let shown = restored
        .client()
        .get(
            &format!("/v1/keys/{}", created["id"].as_str().unwrap()),
            &admin,
        )
        .await;
    assert_eq!(
        shown.status(),
        StatusCode::OK,
        "the copy has the key and the admin token"
    );
    assert!(
        eventually(Duration::from_secs(2), || async {
            restored
                .client()
                .get("/v1/models", &key_of(&created))
                .await
                .status()
                == StatusCode::OK
        })
        .await
    );
    restored.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_first_schema_opens_with_its_data() {
    // Made by the first schema: a key of owner `fixture` (its admin token
    // below), a conversation, and a day of usage.
    let dir = TempDir::new("fixture");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/schema-1.sqlite3"
        ),
        dir.path().join("lumyx.sqlite3"),
    )
    .unwrap();
    let server = start_on(&dir).await;
    let admin = include_str!("fixtures/schema-1.admin-token").trim();
    let listed: Value = server
        .client()
        .get_json("/v1/keys?owner=fixture", admin)
        .await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "{listed}");
    let id = listed["data"][0]["id"].as_str().unwrap();
    let counted = usage(&server.client(), admin, id).await;
    assert!(
        counted["total"]["admitted"].as_u64().unwrap() >= 1,
        "{counted}"
    );
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_cannot_listen_stores_no_token_nobody_saw() {
    let dir = TempDir::new("busy-port");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_lumyx-server"))
        .env_clear()
        .env("LUMYX_ADDR", taken.local_addr().unwrap().to_string())
        .env("LUMYX_DATA_DIR", dir.path())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("LUMYX_ADDR"));
    drop(taken);
    let server = start_on(&dir).await;
    assert!(
        server
            .banner_value("admin token")
            .is_some_and(|token| token.starts_with("lumyx_admin_"))
    );
    assert!(server.banner_value("demo key").is_some());
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_admin_token_replaces_the_stored_one_for_good() {
    let dir = TempDir::new("token");
    let first = start_on(&dir).await;
    let made_up = first.banner_value("admin token").unwrap();
    first.terminate().await;
    let chosen = "lumyx_admin_chosen_by_the_operator";
    let second = ServerProcess::start(&[
        ("LUMYX_DATA_DIR", dir.path().to_str().unwrap()),
        ("LUMYX_ADMIN_TOKEN", chosen),
    ])
    .await;
    second.terminate().await;
    let third = start_on(&dir).await;
    let api = third.client();
    assert_eq!(api.get("/v1/keys", chosen).await.status(), StatusCode::OK);
    expect_error(
        api.get("/v1/keys", &made_up).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    third.terminate().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_and_its_database_are_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("modes");
    std::fs::create_dir_all(dir.path()).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let server = start_on(&dir).await;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("lumyx.sqlite3")), 0o600);
    assert_eq!(mode(&dir.path().join("lumyx.sqlite3-wal")), 0o600);
    server.terminate().await;
}
