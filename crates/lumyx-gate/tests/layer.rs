//! `GateLayer` in front of a real axum server on a free loopback port,
//! through real HTTP/1.1 requests: every authentication, scope and limit row
//! of the error table, with headers and envelopes, the handler's calls
//! counted, on a manual clock.

#![cfg(feature = "tower")]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use lumyx_gate::{
    Authenticated, Backend, Gate, GateLayer, KeyEntry, KeyTable, MemoryBackend, Refusal,
};
use lumyx_keys::{ApiKey, KeyId, KeyRecord, Limits, Scope, Scopes};
use lumyx_ratelimit::{Clock, Counted, Decision, ManualClock, Snapshot, Timestamp, Usage};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NOW: &str = "2026-11-27T12:36:40Z";

/// The eight rate-limit headers, in the order of the header table.
const RATE_LIMIT_HEADERS: [&str; 8] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-requests-day",
    "x-ratelimit-remaining-requests-day",
    "x-ratelimit-reset-requests-day",
    "ratelimit-policy",
    "ratelimit",
];

/// How often each handler ran.
#[derive(Debug, Default)]
struct Calls {
    models: AtomicUsize,
    chat: AtomicUsize,
    broken: AtomicUsize,
}

impl Calls {
    fn total(&self) -> usize {
        self.models.load(Ordering::SeqCst)
            + self.chat.load(Ordering::SeqCst)
            + self.broken.load(Ordering::SeqCst)
    }
}

/// `GET /v1/models` (scope models): what the layer told the handler.
async fn models(
    State(calls): State<Arc<Calls>>,
    Extension(caller): Extension<Authenticated>,
    headers: HeaderMap,
) -> Json<Value> {
    calls.models.fetch_add(1, Ordering::SeqCst);
    Json(json!({
        "owner": caller.record().owner,
        "id": caller.record().id.to_string(),
        "minute_remaining": caller.snapshot().minute.remaining,
        "day_remaining": caller.snapshot().day.remaining,
        "authorization_sensitive": headers.get(AUTHORIZATION).is_some_and(HeaderValue::is_sensitive),
        "debug": format!("{caller:?}"),
    }))
}

/// `POST /v1/chat/completions` (scope chat).
async fn chat(
    State(calls): State<Arc<Calls>>,
    Extension(_): Extension<Authenticated>,
) -> &'static str {
    calls.chat.fetch_add(1, Ordering::SeqCst);
    "chat"
}

/// `GET /v1/broken` (scope models): a handler that fails, and sets a
/// rate-limit header of its own that the gate's must replace.
async fn broken(
    State(calls): State<Arc<Calls>>,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    calls.broken.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [("x-ratelimit-limit-requests", "0")],
        "broken",
    )
}

fn app<B: Backend>(gate: &Arc<Gate<B, ManualClock>>, calls: Arc<Calls>) -> Router {
    Router::new()
        .route(
            "/v1/models",
            get(models).route_layer(GateLayer::new(gate.clone(), Scope::Models)),
        )
        .route(
            "/v1/chat/completions",
            post(chat).route_layer(GateLayer::new(gate.clone(), Scope::Chat)),
        )
        .route(
            "/v1/broken",
            get(broken).route_layer(GateLayer::new(gate.clone(), Scope::Models)),
        )
        .with_state(calls)
        .layer(axum::middleware::map_response(show_key_id))
}

/// What an outer layer (a request log) sees: the key's id in the response's
/// extensions, shown here as `x-test-key-id`.
async fn show_key_id(mut response: axum::response::Response) -> axum::response::Response {
    if let Some(id) = response.extensions().get::<KeyId>().copied() {
        let value = HeaderValue::from_str(&id.to_string()).unwrap();
        response.headers_mut().insert("x-test-key-id", value);
    }
    if let Some(refusal) = response.extensions().get::<Refusal>().copied() {
        let value = HeaderValue::from_str(&format!("{refusal:?}")).unwrap();
        response.headers_mut().insert("x-test-refusal", value);
    }
    response
}

/// An axum server on a free loopback port, stopped gracefully by `stop`.
struct Server {
    address: SocketAddr,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<io::Result<()>>,
}

impl Server {
    async fn start(app: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Server {
            address,
            stop,
            serving,
        }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.serving)
            .await
            .expect("the server stops gracefully")
            .unwrap()
            .unwrap();
    }

    /// One request on its own connection, with `Authorization: {authorization}`
    /// when given.
    async fn send(&self, method: &str, path: &str, authorization: Option<&str>) -> Reply {
        let (address, method, path) = (self.address, method.to_owned(), path.to_owned());
        let authorization = authorization.map(str::to_owned);
        tokio::task::spawn_blocking(move || send(address, &method, &path, authorization.as_deref()))
            .await
            .unwrap()
    }
}

/// A response as it came over the wire.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// The values of the header `name`, in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The one value of the header `name`, if present.
    fn header(&self, name: &str) -> Option<&str> {
        let values = self.all(name);
        assert!(values.len() <= 1, "{name} sent {} times", values.len());
        values.first().copied()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// The rate-limit headers present, in the order of the header table.
    fn rate_limit_headers(&self) -> Vec<&str> {
        RATE_LIMIT_HEADERS
            .iter()
            .filter_map(|name| self.header(name))
            .collect()
    }

    /// The error of a refusal, after checking it is a JSON envelope with its
    /// four keys.
    fn envelope(&self) -> Value {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        let error = body["error"].as_object().expect("an error envelope");
        let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "param", "type"]);
        assert_eq!(error["param"], Value::Null);
        body["error"].clone()
    }
}

/// A minimal HTTP/1.1 client: one request, `connection: close`, the answer
/// read to the end (blocking, with a timeout).
fn send(address: SocketAddr, method: &str, path: &str, authorization: Option<&str>) -> Reply {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\ncontent-length: 0\r\n"
    );
    if let Some(value) = authorization {
        request.push_str(&format!("authorization: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("the server answers");

    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&raw[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("a status line, got {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header line");
            (name.to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    let length: usize = reply
        .header("content-length")
        .expect("a body of known length")
        .parse()
        .unwrap();
    assert_eq!(reply.body.len(), length);
    reply
}

struct World<B = MemoryBackend<ManualClock>> {
    clock: ManualClock,
    gate: Arc<Gate<B, ManualClock>>,
    calls: Arc<Calls>,
    server: Server,
}

async fn world() -> World {
    let clock = ManualClock::at(NOW.parse().unwrap());
    world_over(MemoryBackend::with_clock(clock.clone()), clock).await
}

async fn world_over<B: Backend>(backend: B, clock: ManualClock) -> World<B> {
    let gate = Arc::new(Gate::with_clock(
        Arc::new(KeyTable::new()),
        backend,
        clock.clone(),
    ));
    let calls = Arc::new(Calls::default());
    let server = Server::start(app(&gate, Arc::clone(&calls))).await;
    World {
        clock,
        gate,
        calls,
        server,
    }
}

impl<B: Backend> World<B> {
    fn now(&self) -> DateTime<Utc> {
        self.clock.now().to_utc()
    }

    /// A key with this record's settings, in the table.
    fn key(&self, edit: impl FnOnce(KeyRecord) -> KeyRecord) -> ApiKey {
        let key = ApiKey::generate().unwrap();
        let record = KeyRecord::new(
            key.as_key_ref(),
            "test",
            "acct_1",
            self.now() - TimeDelta::days(1),
        );
        self.gate.table().put(edit(record));
        key
    }

    async fn send(&self, method: &str, path: &str, authorization: Option<&str>) -> Reply {
        self.server.send(method, path, authorization).await
    }

    async fn send_key(&self, method: &str, path: &str, key: &ApiKey) -> Reply {
        let bearer = format!("Bearer {}", key.expose_secret());
        self.send(method, path, Some(&bearer)).await
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// A reply shows neither the key nor a piece of it.
fn assert_no_secret(reply: &Reply, key: &ApiKey) {
    let body = String::from_utf8_lossy(&reply.body);
    assert!(!body.contains(key.expose_secret()), "{body}");
    assert!(!body.contains(&key.expose_secret()[5..20]), "{body}");
}

#[tokio::test]
async fn missing_malformed_and_unknown_keys_answer_401_and_never_reach_the_handler() {
    let world = world().await;
    let key = world.key(|record| record);
    let mut typo = key.expose_secret().to_owned();
    typo.replace_range(20..21, if &typo[20..21] == "a" { "b" } else { "a" });
    let unknown = ApiKey::generate().unwrap();
    let cases: [(Option<String>, &str); 9] = [
        (None, "missing_api_key"),
        (Some(String::new()), "missing_api_key"),
        (Some("   ".into()), "missing_api_key"),
        (
            Some(format!("Basic {}", key.expose_secret())),
            "invalid_authorization_header",
        ),
        (
            Some(key.expose_secret().to_owned()),
            "invalid_authorization_header",
        ),
        (
            Some(format!("Bearer {} extra", key.expose_secret())),
            "invalid_authorization_header",
        ),
        (Some(format!("Bearer {typo}")), "invalid_api_key"),
        (
            Some(format!("Bearer {}", unknown.expose_secret())),
            "invalid_api_key",
        ),
        (Some("Bearer nova_short".into()), "invalid_api_key"),
    ];
    for (authorization, code) in cases {
        for (method, path) in [("GET", "/v1/models"), ("POST", "/v1/chat/completions")] {
            let reply = world.send(method, path, authorization.as_deref()).await;
            assert_eq!(reply.status, 401, "{authorization:?}");
            let error = reply.envelope();
            assert_eq!(error["code"], code, "{authorization:?}");
            assert_eq!(error["type"], "invalid_request_error");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
            assert!(reply.rate_limit_headers().is_empty());
            assert_eq!(reply.header("x-test-key-id"), None);
            assert!(reply.header("x-test-refusal").is_some());
            assert_no_secret(&reply, &key);
        }
    }
    assert_eq!(world.calls.total(), 0);
    // The key itself is admitted: the refusals were about the header.
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    let id = key.id().to_string();
    assert_eq!(reply.header("x-test-key-id"), Some(id.as_str()));
    assert_eq!(reply.header("x-test-refusal"), None);
    assert_eq!(world.calls.models.load(Ordering::SeqCst), 1);
    world.stop().await;
}

#[tokio::test]
async fn expired_and_revoked_keys_answer_403_without_limits() {
    let world = world().await;
    let now = world.now();
    let expired = world.key(|record| record.with_expiry(now - TimeDelta::seconds(1)));
    let revoked = world.key(|mut record| {
        record.revoked_at = Some(now);
        record
    });
    let both = world.key(|mut record| {
        record.revoked_at = Some(now - TimeDelta::hours(1));
        record.with_expiry(now - TimeDelta::hours(2))
    });
    for (key, code) in [
        (&expired, "api_key_expired"),
        (&revoked, "api_key_revoked"),
        (&both, "api_key_expired"),
    ] {
        let reply = world.send_key("POST", "/v1/chat/completions", key).await;
        assert_eq!(reply.status, 403);
        let error = reply.envelope();
        assert_eq!(error["code"], code);
        assert_eq!(error["type"], "permission_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&key.hint().to_string()), "{message}");
        assert_no_secret(&reply, key);
        assert!(reply.rate_limit_headers().is_empty());
        assert_eq!(reply.header("www-authenticate"), None);
        let id = key.id().to_string();
        assert_eq!(reply.header("x-test-key-id"), Some(id.as_str()));
        let refusal = if code == "api_key_expired" {
            "KeyExpired"
        } else {
            "KeyRevoked"
        };
        assert_eq!(reply.header("x-test-refusal"), Some(refusal));
    }
    assert_eq!(world.calls.total(), 0);
    world.stop().await;
}

#[tokio::test]
async fn a_key_out_of_scope_answers_403_with_its_limits_and_spends_nothing() {
    let world = world().await;
    let key = world.key(|record| record.with_scopes(Scopes::NONE.with(Scope::Models)));
    for _ in 0..3 {
        let reply = world.send_key("POST", "/v1/chat/completions", &key).await;
        assert_eq!(reply.status, 403);
        let error = reply.envelope();
        assert_eq!(error["code"], "insufficient_scope");
        assert_eq!(error["type"], "permission_error");
        assert!(error["message"].as_str().unwrap().contains("'chat'"));
        // The limits, read without consuming: still full.
        assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("60"));
        assert_eq!(
            reply.header("x-ratelimit-remaining-requests-day"),
            Some("1000")
        );
        assert_eq!(reply.rate_limit_headers().len(), 8);
        assert_eq!(reply.header("retry-after"), None);
        assert_eq!(reply.header("www-authenticate"), None);
    }
    assert_eq!(world.calls.chat.load(Ordering::SeqCst), 0);
    // The first request of its scope is the first one spent.
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("59"));
    assert_eq!(
        reply.header("x-ratelimit-remaining-requests-day"),
        Some("999")
    );
    world.stop().await;
}

#[tokio::test]
async fn the_minute_limit_answers_429_with_retry_headers() {
    let world = world().await;
    let key = world.key(|record| record.with_limits(Limits::new(2, 1000).unwrap()));
    for _ in 0..2 {
        assert_eq!(world.send_key("GET", "/v1/models", &key).await.status, 200);
    }
    world.clock.advance(Duration::from_millis(150));
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 429);
    let error = reply.envelope();
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["type"], "rate_limit_error");
    // One request every 30 s: the next one 29.85 s away.
    assert_eq!(reply.header("retry-after"), Some("30"));
    assert_eq!(reply.header("retry-after-ms"), Some("29850"));
    assert_eq!(reply.header("x-should-retry"), None);
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(
        reply.header("ratelimit"),
        Some("\"minute\";r=0;t=30, \"day\";r=998;t=41000")
    );
    assert_eq!(reply.rate_limit_headers().len(), 8);
    assert_no_secret(&reply, &key);
    assert_eq!(world.calls.models.load(Ordering::SeqCst), 2);
    // The refusal consumed nothing: the day still counts two.
    world.clock.advance(Duration::from_secs(30));
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("x-ratelimit-remaining-requests-day"),
        Some("997")
    );
    world.stop().await;
}

#[tokio::test]
async fn the_day_limit_answers_429_that_clients_do_not_retry() {
    let world = world().await;
    let day = world.key(|record| record.with_limits(Limits::new(60, 2).unwrap()));
    // Refused by both limits: the day's refusal, the one that lasts longer.
    let both = world.key(|record| record.with_limits(Limits::new(1, 1).unwrap()));
    for _ in 0..2 {
        assert_eq!(world.send_key("GET", "/v1/models", &day).await.status, 200);
    }
    assert_eq!(world.send_key("GET", "/v1/models", &both).await.status, 200);
    for key in [&day, &both] {
        let reply = world.send_key("GET", "/v1/models", key).await;
        assert_eq!(reply.status, 429);
        let error = reply.envelope();
        assert_eq!(error["code"], "daily_limit_exceeded");
        assert_eq!(error["type"], "rate_limit_error");
        // 12:36:40 is 41,000 s before midnight.
        assert_eq!(reply.header("retry-after"), Some("41000"));
        assert_eq!(reply.header("retry-after-ms"), Some("41000000"));
        assert_eq!(reply.header("x-should-retry"), Some("false"));
        assert_eq!(
            reply.header("x-ratelimit-remaining-requests-day"),
            Some("0")
        );
        assert_eq!(reply.rate_limit_headers().len(), 8);
        assert_no_secret(&reply, key);
    }
    assert_eq!(world.calls.models.load(Ordering::SeqCst), 3);
    world.stop().await;
}

#[tokio::test]
async fn admitted_responses_carry_the_eight_headers_whatever_the_handler_answers() {
    let world = world().await;
    let key = world.key(|record| record);
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.rate_limit_headers(),
        [
            "60",
            "59",
            "1s",
            "1000",
            "999",
            "11h23m20s",
            "\"minute\";q=60;w=60, \"day\";q=1000;w=86400",
            "\"minute\";r=59;t=1, \"day\";r=999;t=41000",
        ]
    );
    assert_eq!(reply.header("x-lumyx-key-expires-at"), None);

    // The handler's own error, and its own value of a gate header, replaced.
    let reply = world.send_key("GET", "/v1/broken", &key).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body, b"broken");
    assert_eq!(reply.rate_limit_headers().len(), 8);
    assert_eq!(reply.header("x-ratelimit-limit-requests"), Some("60"));
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("58"));
    assert_eq!(world.calls.broken.load(Ordering::SeqCst), 1);

    // A key that stops working within a week says when.
    let now = world.now();
    let soon = world.key(|record| record.with_expiry(now + TimeDelta::days(3)));
    let reply = world.send_key("POST", "/v1/chat/completions", &soon).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"chat");
    assert_eq!(
        reply.header("x-lumyx-key-expires-at"),
        Some("2026-11-30T12:36:40Z")
    );
    assert_eq!(reply.rate_limit_headers().len(), 8);
    world.stop().await;
}

#[tokio::test]
async fn the_handler_reads_authenticated_beside_a_sensitive_authorization() {
    let world = world().await;
    let key = world.key(|record| record.with_limits(Limits::new(10, 100).unwrap()));
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert_eq!(seen["owner"], "acct_1");
    assert_eq!(seen["id"], key.id().to_string());
    assert_eq!(seen["minute_remaining"], 9);
    assert_eq!(seen["day_remaining"], 99);
    assert_eq!(seen["authorization_sensitive"], true);
    // Its Debug names the key by id and hint, never by the key or digest.
    let debug = seen["debug"].as_str().unwrap();
    assert!(debug.contains(&key.id().to_string()), "{debug}");
    assert!(debug.contains(&key.hint().to_string()), "{debug}");
    assert!(!debug.contains(key.expose_secret()), "{debug}");
    let digest = key.as_key_ref().digest().to_string();
    assert!(!debug.contains(&digest), "{debug}");
    world.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_answered_before_the_gate() {
    let world = world().await;
    let reply = world.send("POST", "/v1/models", None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("www-authenticate"), None);
    let reply = world.send("GET", "/v1/nothing", None).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.header("www-authenticate"), None);
    assert_eq!(world.calls.total(), 0);
    world.stop().await;
}

/// A backend that waits before answering, as a Redis round trip does, and
/// that can be taken down (fail-closed).
#[derive(Debug)]
struct Awaiting {
    memory: MemoryBackend<ManualClock>,
    down: AtomicBool,
    waited: AtomicUsize,
}

impl Awaiting {
    async fn round_trip(&self) -> Result<(), lumyx_ratelimit::Error> {
        tokio::task::yield_now().await;
        self.waited.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(lumyx_ratelimit::Error::Unavailable {
                source: "the test took it down".into(),
            });
        }
        Ok(())
    }
}

impl Backend for Awaiting {
    async fn decide(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> Result<Decision, lumyx_ratelimit::Error> {
        self.round_trip().await?;
        self.memory.decide(entry, now).await
    }

    async fn refuse(
        &self,
        entry: &KeyEntry,
        what: Counted,
        now: Timestamp,
    ) -> Result<Snapshot, lumyx_ratelimit::Error> {
        self.round_trip().await?;
        self.memory.refuse(entry, what, now).await
    }

    async fn peek(&self, entry: &KeyEntry) -> Result<Snapshot, lumyx_ratelimit::Error> {
        self.round_trip().await?;
        self.memory.peek(entry).await
    }

    async fn usage(
        &self,
        entry: &KeyEntry,
        now: Timestamp,
    ) -> Result<Usage, lumyx_ratelimit::Error> {
        self.round_trip().await?;
        self.memory.usage(entry, now).await
    }
}

#[tokio::test]
async fn a_backend_that_waits_is_polled_to_its_verdict() {
    let clock = ManualClock::at(NOW.parse().unwrap());
    let backend = Awaiting {
        memory: MemoryBackend::with_clock(clock.clone()),
        down: AtomicBool::new(false),
        waited: AtomicUsize::new(0),
    };
    let world = world_over(backend, clock).await;
    let key = world.key(|record| {
        record
            .with_scopes(Scopes::NONE.with(Scope::Models))
            .with_limits(Limits::new(1, 1000).unwrap())
    });
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["minute_remaining"], 0);
    assert_eq!(reply.header("x-ratelimit-remaining-requests"), Some("0"));
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.envelope()["code"], "rate_limit_exceeded");
    let reply = world.send_key("POST", "/v1/chat/completions", &key).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.envelope()["code"], "insufficient_scope");
    assert_eq!(world.gate.backend().waited.load(Ordering::SeqCst), 3);
    // Such a backend is never polled in place: the layer boxes its check.
    assert!(world.gate.check_if_at_once(None, Scope::Models).is_none());
    assert_eq!(world.gate.backend().waited.load(Ordering::SeqCst), 3);

    // Limits that cannot be decided: 503, and the handler is not called.
    world.gate.backend().down.store(true, Ordering::SeqCst);
    world.clock.advance(Duration::from_secs(60));
    let reply = world.send_key("GET", "/v1/models", &key).await;
    assert_eq!(reply.status, 503);
    let error = reply.envelope();
    assert_eq!(error["code"], "service_unavailable");
    assert_eq!(error["type"], "server_error");
    assert!(reply.rate_limit_headers().is_empty());
    assert_eq!(world.calls.models.load(Ordering::SeqCst), 1);
    world.stop().await;
}
