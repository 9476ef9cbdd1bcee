//! The official Python `openai` client, unmodified, against a real server in
//! this process: `tests/python/openai_client.py` completes and streams a
//! chat, lists and retrieves models, talks to an agent through its base URL,
//! and sees SPEC §4's refusals as the client's own exception classes
//! (`AuthenticationError`, `PermissionDeniedError`, `RateLimitError`).
//!
//! The client is installed from PyPI into a virtual environment kept in
//! Cargo's test scratch directory and reused. Without `python3`, its `venv`
//! module or PyPI the test is skipped with a note, unless
//! `LUMYX_REQUIRE_PYTHON=1`, when it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{TestServer, key_of};
use serde_json::json;

const SCRIPT: &str = include_str!("python/openai_client.py");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_client() {
    let setup = tokio::task::spawn_blocking(python_with_openai);
    let python = match tokio::time::timeout(Duration::from_secs(600), setup).await {
        Ok(Ok(Ok(python))) => python,
        Ok(Ok(Err(why))) => return skip(&why),
        Ok(Err(panicked)) => panic!("the Python setup panicked: {panicked}"),
        Err(_) => return skip("setting up Python took over 10 minutes"),
    };

    let server = TestServer::start().await;
    let admin = server.client();
    let other = TestServer::start().await;
    let revoked = admin
        .create_key(&server.admin, json!({"name": "revoked", "owner": "acme"}))
        .await;
    let id = revoked["id"].as_str().expect("an id");
    let response = admin.delete(&format!("/v1/keys/{id}"), &server.admin).await;
    assert!(response.status().is_success(), "{}", response.status());
    let models_only = admin
        .create_key(
            &server.admin,
            json!({"name": "models", "owner": "acme", "scopes": ["models"]}),
        )
        .await;
    let one_a_minute = admin
        .create_key(
            &server.admin,
            json!({"name": "one", "owner": "acme", "rate_limit_per_minute": 1}),
        )
        .await;

    let script = scratch().join("openai_client.py");
    std::fs::write(&script, SCRIPT).expect("the script is written");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .env("LUMYX_BASE", &server.base)
        .env("LUMYX_KEY", &server.demo_key)
        // Well formed, with a valid checksum, but made by another server.
        .env("LUMYX_UNKNOWN_KEY", &other.demo_key)
        .env("LUMYX_REVOKED_KEY", key_of(&revoked))
        .env("LUMYX_MODELS_ONLY_KEY", key_of(&models_only))
        .env("LUMYX_RPM1_KEY", key_of(&one_a_minute))
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    let run = tokio::task::spawn_blocking(move || command.output());
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the script ends within 2 minutes")
        .expect("the script's task")
        .expect("the venv's python runs");
    assert!(
        output.status.success(),
        "the Python client failed ({}):\n{}",
        output.status,
        text(&output)
    );
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

/// Skips the test with a note, or fails it under `LUMYX_REQUIRE_PYTHON=1`.
fn skip(why: &str) {
    if std::env::var("LUMYX_REQUIRE_PYTHON").as_deref() == Ok("1") {
        panic!("LUMYX_REQUIRE_PYTHON=1 but {why}");
    }
    eprintln!("note: openai_python skipped: {why}");
}

/// Cargo's scratch directory for this crate's integration tests.
fn scratch() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The interpreter of a virtual environment where `import openai` works:
/// the cached one, or a new one with `openai` installed from PyPI.
fn python_with_openai() -> Result<PathBuf, String> {
    let venv = scratch().join("openai-venv");
    let python = venv.join("bin").join("python");
    if imports_openai(&python) {
        return Ok(python);
    }
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .map_err(|err| format!("python3 not found ({err})"))?;
    if !found.status.success() {
        return Err(format!("python3 --version failed: {}", text(&found)));
    }
    let created = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .output()
        .map_err(|err| format!("python3 -m venv did not run ({err})"))?;
    if !created.status.success() {
        return Err(format!("python3 -m venv failed: {}", text(&created)));
    }
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--timeout", "30", "--retries", "2", "openai"])
        .env("PIP_NO_INPUT", "1")
        .output()
        .map_err(|err| format!("pip did not run ({err})"))?;
    if !installed.status.success() {
        return Err(format!("pip install openai failed: {}", text(&installed)));
    }
    if !imports_openai(&python) {
        return Err("openai installed but `import openai` fails".to_owned());
    }
    Ok(python)
}

fn imports_openai(python: &Path) -> bool {
    python.exists()
        && Command::new(python)
            .args(["-c", "import openai"])
            .output()
            .is_ok_and(|output| output.status.success())
}

/// Standard output and error of `output`, for a message.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
