//! What the server's tests share: a real server listening on a free
//! loopback port (in this process, or as the `lumyx-server` binary), an
//! HTTP client for it, and checks of the error envelope. [`shared`] holds
//! what the tests of instances sharing one Redis (a server or a cluster)
//! have in common.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod shared;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lumyx_server::{Config, RunningServer, Server, StoreConfig};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// A server started in this process for one test.
pub struct TestServer {
    pub running: RunningServer,
    pub base: String,
    pub admin: String,
    pub demo_key: String,
    pub http: reqwest::Client,
}

/// A configuration on a free loopback port, in memory.
pub fn test_config() -> Config {
    Config {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: StoreConfig::Memory,
        ..Config::default()
    }
}

/// A fresh directory under the system's temporary one, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("lumyx-test-{name}-{}-{unique}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl TestServer {
    /// A server in memory with a made-up admin token and a demo key.
    pub async fn start() -> TestServer {
        TestServer::start_with(test_config()).await
    }

    /// A server of `config` (which must make a demo key and leave the admin
    /// token to be made up).
    pub async fn start_with(config: Config) -> TestServer {
        let running = Server::new(config)
            .start()
            .await
            .expect("the server starts");
        let started = running.started();
        let admin = started
            .admin_token
            .as_ref()
            .expect("a made-up admin token")
            .expose_secret()
            .to_owned();
        let demo_key = started
            .demo_key
            .as_ref()
            .expect("a demo key")
            .expose_secret()
            .to_owned();
        let base = format!("http://{}", running.local_addr());
        TestServer {
            running,
            base,
            admin,
            demo_key,
            http: reqwest::Client::new(),
        }
    }

    pub fn client(&self) -> Client {
        Client {
            base: self.base.clone(),
            http: self.http.clone(),
        }
    }
}

/// An HTTP client of one server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

impl Client {
    pub fn new(base: impl Into<String>) -> Client {
        Client {
            base: base.into(),
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with `token` as a bearer token (when given) and a JSON
    /// body (when given).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("the server answers")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `GET path` with `token`, its body read as JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        self.get(path, token)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// A chat completion of one user message with `key`.
    pub async fn chat(&self, key: &str, text: &str) -> Response {
        self.post(
            "/v1/chat/completions",
            key,
            json!({"model": "nova_1_1", "messages": [{"role": "user", "content": text}]}),
        )
        .await
    }

    /// Creates a key through the admin API: its record, with the key in
    /// `key`.
    pub async fn create_key(&self, admin: &str, body: Value) -> Value {
        let response = self.post("/v1/keys", admin, body).await;
        let status = response.status();
        let created: Value = response.json().await.expect("a JSON body");
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }
}

/// The key of a created-key answer.
pub fn key_of(created: &Value) -> String {
    created["key"].as_str().expect("a key field").to_owned()
}

/// Checks that `response` is the envelope of `code` with `status`, its four
/// keys present, and answers its `error` object.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for {code}");
    assert!(
        response.headers().contains_key("x-request-id"),
        "x-request-id on {code}"
    );
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.expect("a JSON body");
    let error = body["error"].as_object().expect("an error object");
    for field in ["message", "type", "param", "code"] {
        assert!(error.contains_key(field), "{field} missing in {body}");
    }
    assert_eq!(error["code"], code, "{body}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    body["error"].clone()
}

/// The `data:` payloads of an SSE body, in order.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Waits until `check` holds, trying every 20 ms for at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `lumyx-server` binary running as a child process, its standard error
/// (the log) collected.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
    pub banner: String,
    /// The log so far. It is read as it comes: a server that logs a line
    /// per request would otherwise fill the pipe and stop in mid-write.
    log: Arc<Mutex<Vec<u8>>>,
    /// Reads the log until the process closes its standard error.
    log_reader: Option<JoinHandle<()>>,
    /// The data directory made for it, when `vars` named none.
    _data_dir: Option<TempDir>,
}

impl ServerProcess {
    /// Starts the binary with `vars` on a free port (`LUMYX_ADDR` is set
    /// here; so is `LUMYX_DATA_DIR`, to a fresh directory, unless `vars`
    /// name one) and waits for its banner.
    pub async fn start(vars: &[(&str, &str)]) -> ServerProcess {
        let data_dir = (!vars.iter().any(|(name, _)| *name == "LUMYX_DATA_DIR"))
            .then(|| TempDir::new("process"));
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_lumyx-server"));
        command
            .env_clear()
            .env("LUMYX_ADDR", &addr)
            .envs(
                data_dir
                    .iter()
                    .map(|dir| ("LUMYX_DATA_DIR", dir.path().as_os_str())),
            )
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the lumyx-server binary runs");
        let log = Arc::new(Mutex::new(Vec::new()));
        let log_reader = tokio::spawn(collect(
            child.stderr.take().expect("piped stderr"),
            Arc::clone(&log),
        ));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = String::new();
        let read_banner = async {
            while let Some(line) = lines.next_line().await.expect("stdout reads") {
                banner.push_str(&line);
                banner.push('\n');
                if line.trim_start().starts_with("curl ") {
                    break;
                }
            }
        };
        if tokio::time::timeout(Duration::from_secs(20), read_banner)
            .await
            .is_err()
        {
            panic!("the server printed no banner within 20 s: {banner}");
        }
        ServerProcess {
            child,
            base: format!("http://{addr}"),
            banner,
            log,
            log_reader: Some(log_reader),
            _data_dir: data_dir,
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&log).into_owned()
    }

    /// The value after `label` in the banner (`admin token`, `demo key`).
    pub fn banner_value(&self, label: &str) -> Option<String> {
        self.banner
            .lines()
            .find(|line| line.starts_with(label))
            .and_then(|line| line.split_whitespace().last())
            .map(str::to_owned)
    }

    pub fn client(&self) -> Client {
        Client::new(self.base.clone())
    }

    /// Sends SIGTERM and answers the exit status and the whole log.
    pub async fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().expect("still running");
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the server stops within 20 s of SIGTERM")
            .expect("the exit status");
        if let Some(reader) = self.log_reader.take() {
            tokio::time::timeout(Duration::from_secs(20), reader)
                .await
                .expect("the log ends within 20 s of the exit")
                .expect("the log reader does not panic");
        }
        (status, self.log())
    }
}

/// Appends what `from` gives to `log` until its end (or a read error).
async fn collect(mut from: impl tokio::io::AsyncRead + Unpin, log: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = [0; 8192];
    while let Ok(read @ 1..) = from.read(&mut chunk).await {
        log.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(&chunk[..read]);
    }
}

/// A loopback port free now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A configuration on a free port with its state in the Redis at `url`.
pub fn redis_config(url: &str) -> Config {
    Config {
        store: StoreConfig::Redis(url.parse().expect("a Redis URL")),
        ..test_config()
    }
}
