//! The gate as a whole, over HTTP: requests per second of one route
//! (`GET /v1/models`, the same small JSON body) served three ways by axum in
//! this process, and a fourth that tells what the response headers alone
//! cost, each loaded by `wrk` on loopback for a bounded time:
//!
//! - `bare`: no authentication at all (the header is sent and ignored);
//! - `lumyx`: behind `GateLayer` (`Gate` over `MemoryBackend`, the system
//!   clock, a table of 8,192 keys limited to 1,000 a minute and 10,000 a
//!   day): key verification, scope, both limits, usage counts and the eight
//!   rate-limit headers on every response;
//! - `tower_governor`: the anchor, behind `tower_governor`'s `GovernorLayer`
//!   keyed on the `Authorization` header's value, a quota of 1,000 a minute
//!   with a burst of 1,000, no key verification and no headers;
//! - `bare_headers`: `bare`, its response carrying eight rate-limit headers
//!   of the lengths `lumyx` sends, copied from a template (no hashing, no
//!   formatting): what those bytes cost hyper and the kernel, which no gate
//!   that follows SPEC §3 can avoid. `lumyx / bare_headers` is then the cost
//!   of the gate's own work.
//!
//! Targets: `lumyx` at least as many requests per second as
//! `tower_governor`, and at least 90% of `bare`.
//!
//! ```text
//! apt-get install wrk
//! cargo bench -p lumyx-benches --bench gate_http
//! LUMYX_HTTP_BENCH_SECONDS=30 LUMYX_HTTP_BENCH_ROUNDS=5 cargo bench -p lumyx-benches --bench gate_http
//! ```
//!
//! Settings (environment):
//! - `LUMYX_HTTP_BENCH_SECONDS`: the length of each `wrk` run (10);
//! - `LUMYX_HTTP_BENCH_ROUNDS`: how many times the three runs are repeated
//!   (3), each round in another order (`bare lumyx tower_governor`, then
//!   `lumyx tower_governor bare`, ...) so that a drift of the machine's
//!   speed falls on each server alike; the medians are compared;
//! - `LUMYX_REQUIRE_WRK=1`: fail instead of skipping when `wrk` is not on
//!   the `PATH`.
//!
//! The load: `wrk -t1 -c32`, the same for the three. The machine this was
//! written on has 2 cores, shared by the servers and `wrk`: the servers run
//! on a tokio multi-thread runtime of 1 worker thread, `wrk` on 1 thread, so
//! that each has a core and neither takes turns with the other on one. 32
//! connections, each with one request in flight, keep the server's one
//! worker busy (a batch of ready connections per wake-up) without a queue
//! long enough to make the latencies a measure of the queue alone. Each run
//! prints the CPU the servers, `wrk` and the rest of the machine used (from
//! `/proc/self/stat` and `/proc/stat`): the servers' near 100% of a core
//! means the server bounds the run; `wrk`'s near 100% too, that the load
//! generator may also cap the fastest server (`bare`), which then flatters
//! the ratio to `bare`; the rest's above a few percent, that the run
//! shared the cores and says little.
//!
//! Every request carries `Authorization: Bearer <key>`, the key taken in
//! turn from 8,192 by a Lua script (written to a temporary file). On the
//! machine this was written on the servers answer 75,000 to 130,000
//! requests a second: a key is presented at most about 16 times a second,
//! within the 1,000 a minute (16.7 a second) that both limiters give back,
//! so no key runs out of its minute's burst however long the runs. The day
//! limit of `lumyx` (10,000 a key, counted in this process) is reached
//! after 10 minutes or more of its load (`LUMYX_HTTP_BENCH_SECONDS=60` with
//! 10 rounds, say). The script's `done` hook reports the responses that
//! were not 2xx or 3xx, printed for each run: the comparison holds only
//! while they are 0.
//!
//! `tower_governor`'s `axum` feature depends on axum with its default
//! features, which cargo then enables for the three servers alike: among
//! them `matched-path` and `original-uri`, two extensions that axum's router
//! inserts into every request.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use chrono::Utc;
use lumyx_gate::{Gate, GateLayer, KeyTable, MemoryBackend};
use lumyx_keys::{ApiKey, KeyRecord, Limits, Scope};
use tower_governor::GovernorError;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;

/// Keys in the table, presented in turn: enough that at 130,000 requests a
/// second no key is presented faster than its minute limit gives back.
const KEYS: usize = 8192;
/// The servers' tokio worker threads (one core of two; `wrk` has the other).
const SERVER_WORKERS: usize = 1;
/// `wrk -t`.
const WRK_THREADS: u32 = 1;
/// `wrk -c`.
const WRK_CONNECTIONS: u32 = 32;
/// A run, not counted, that each server gets before the first round: it
/// opens the connections' buffers and fills `tower_governor`'s map.
const WARM_UP_SECONDS: u64 = 2;
/// The three servers, in the order of the first round.
const SERVERS: [&str; 4] = ["bare", "lumyx", "tower_governor", "bare_headers"];

/// The route's answer, the same for the three.
const BODY: &str = r#"{"object":"list","data":[{"id":"nova-1","object":"model","created":1795737601,"owned_by":"lumyx"}]}"#;

async fn models() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], BODY)
}

fn main() {
    let Some(wrk) = find_on_path("wrk") else {
        if std::env::var("LUMYX_REQUIRE_WRK").is_ok_and(|v| v == "1") {
            panic!("`wrk` is not on the PATH and LUMYX_REQUIRE_WRK=1 (apt-get install wrk)");
        }
        println!("gate_http: skipped: `wrk` is not on the PATH (apt-get install wrk)");
        return;
    };
    let seconds = setting("LUMYX_HTTP_BENCH_SECONDS", 10);
    let rounds = setting("LUMYX_HTTP_BENCH_ROUNDS", 3);

    println!("cpu: {}", cpu_model());
    println!(
        "cores: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("wrk: {}", wrk_version(&wrk));
    println!(
        "load: wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{seconds}s, {KEYS} keys in turn; \
         servers: tokio multi-thread, {SERVER_WORKERS} worker; \
         {rounds} rounds of the three, interleaved, after a {WARM_UP_SECONDS} s warm-up each"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SERVER_WORKERS)
        .enable_all()
        .build()
        .expect("a tokio runtime");

    let keys: Vec<ApiKey> = (0..KEYS)
        .map(|_| ApiKey::generate().expect("a key"))
        .collect();
    let table = Arc::new(KeyTable::with_capacity(KEYS));
    let limits = Limits::new(1000, 10_000).expect("valid limits");
    for key in &keys {
        table.put(
            KeyRecord::new(key.as_key_ref(), "bench", "acct_bench", Utc::now()).with_limits(limits),
        );
    }
    let gate = Arc::new(Gate::new(table, MemoryBackend::new()));

    let urls: Vec<String> = [bare(), lumyx(gate), governed(), bare_headers()]
        .into_iter()
        .map(|app| serve(&runtime, app))
        .collect();

    let script = Script::write(&keys);
    drop(keys);

    for (name, url) in SERVERS.iter().zip(&urls) {
        let run = load(&wrk, &script.path, url, WARM_UP_SECONDS);
        println!("warm-up {name:<14} {:>8.0} req/s", run.per_second());
    }

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); SERVERS.len()];
    let mut round_ratios: Vec<[f64; 4]> = Vec::new();
    for round in 0..rounds {
        let mut this_round = [0.0; SERVERS.len()];
        for turn in 0..SERVERS.len() {
            let server = (round as usize + turn) % SERVERS.len();
            let run = load(&wrk, &script.path, &urls[server], seconds);
            println!("round {} {:<14} {}", round + 1, SERVERS[server], run.line());
            this_round[server] = run.per_second();
            runs[server].push(run);
        }
        round_ratios.push(ratios(&this_round));
    }

    println!("median of {rounds} rounds:");
    let mut medians = [0.0; SERVERS.len()];
    for (server, name) in SERVERS.iter().enumerate() {
        let of = |f: fn(&Run) -> f64| median(runs[server].iter().map(f).collect());
        medians[server] = of(Run::per_second);
        println!(
            "  {name:<14} {:>8.0} req/s  p50 {:>5.2} ms  p99 {:>5.2} ms  {:>5.1} µs server CPU/req  {:>4.0} B/resp",
            medians[server],
            of(|r| r.p50_us) / 1000.0,
            of(|r| r.p99_us) / 1000.0,
            of(Run::server_micros_per_request),
            of(Run::bytes_per_response),
        );
    }
    let non_2xx: Vec<u64> = runs
        .iter()
        .map(|runs| runs.iter().map(|r| r.non_2xx + r.socket_errors).sum())
        .collect();
    let per_round = |which: usize| {
        round_ratios
            .iter()
            .map(|r| format!("{:.3}", r[which]))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let of_medians = ratios(&medians);
    for (which, (label, target)) in RATIOS.iter().enumerate() {
        let ratio = of_medians[which];
        let target = match target {
            Some(target) => format!("target >= {target:.2}: {}", verdict(ratio >= *target)),
            None => "no target".to_owned(),
        };
        println!(
            "{label:<27} {ratio:.3} ({target}; per round: {})",
            per_round(which)
        );
    }
    if non_2xx.iter().all(|&n| n == 0) {
        println!("non-2xx responses and socket errors: 0 for each server: the comparison holds");
    } else {
        println!(
            "non-2xx responses and socket errors (bare, lumyx, tower_governor, bare_headers): {non_2xx:?}: \
             the comparison does NOT hold"
        );
    }
}

/// The ratios printed, of the requests per second of [`SERVERS`], and their
/// targets.
const RATIOS: [(&str, Option<f64>); 4] = [
    ("lumyx / tower_governor:", Some(1.0)),
    ("lumyx / bare:", Some(0.9)),
    ("bare_headers / bare:", None),
    ("lumyx / bare_headers:", None),
];

/// The [`RATIOS`] of one set of requests per second, in the order of
/// [`SERVERS`].
fn ratios(per_second: &[f64; SERVERS.len()]) -> [f64; 4] {
    let [bare, lumyx, governor, bare_headers] = *per_second;
    [
        lumyx / governor,
        lumyx / bare,
        bare_headers / bare,
        lumyx / bare_headers,
    ]
}

/// The route with no authentication.
fn bare() -> Router {
    Router::new().route("/v1/models", get(models))
}

/// The route with no authentication whose response carries eight
/// rate-limit headers with values of the lengths the gate sends for the
/// bench's keys, copied from a template made once.
fn bare_headers() -> Router {
    let template: HeaderMap = [
        ("content-type", "application/json"),
        ("x-ratelimit-limit-requests", "1000"),
        ("x-ratelimit-remaining-requests", "999"),
        ("x-ratelimit-reset-requests", "60ms"),
        ("x-ratelimit-limit-requests-day", "10000"),
        ("x-ratelimit-remaining-requests-day", "9990"),
        ("x-ratelimit-reset-requests-day", "11h23m20s"),
        (
            "ratelimit-policy",
            "\"minute\";q=1000;w=60, \"day\";q=10000;w=86400",
        ),
        ("ratelimit", "\"minute\";r=999;t=1, \"day\";r=9990;t=41000"),
    ]
    .into_iter()
    .map(|(name, value)| {
        (
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    })
    .collect();
    // Shared: axum clones the handler, and so what it captures, for every
    // request; a captured map would be copied twice a response.
    let template = Arc::new(template);
    Router::new().route(
        "/v1/models",
        get(move || {
            let mut response = Response::new(Body::from(BODY));
            *response.headers_mut() = HeaderMap::clone(&template);
            async move { response }
        }),
    )
}

/// The route behind the gate.
fn lumyx(gate: Arc<Gate<MemoryBackend>>) -> Router {
    Router::new().route(
        "/v1/models",
        get(models).route_layer(GateLayer::new(gate, Scope::Models)),
    )
}

/// The route behind `tower_governor`, keyed on the `Authorization` header.
fn governed() -> Router {
    // 1,000 a minute: one request back every 60 ms, 1,000 at once.
    let config = GovernorConfigBuilder::default()
        .key_extractor(AuthorizationValue)
        .period(Duration::from_millis(60))
        .burst_size(1000)
        .finish()
        .expect("a non-zero quota");
    Router::new().route(
        "/v1/models",
        get(models).route_layer(tower_governor::GovernorLayer::new(config)),
    )
}

/// The `Authorization` header's value as `tower_governor`'s key, unverified:
/// a clone of the value hyper parsed (a reference count), no allocation.
#[derive(Debug, Clone, Copy)]
struct AuthorizationValue;

impl KeyExtractor for AuthorizationValue {
    type Key = HeaderValue;

    fn extract<T>(&self, request: &Request<T>) -> Result<HeaderValue, GovernorError> {
        request
            .headers()
            .get(AUTHORIZATION)
            .cloned()
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

/// Serves `app` on a free loopback port, on `runtime`; its URL.
fn serve(runtime: &tokio::runtime::Runtime, app: Router) -> String {
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("a loopback port");
    let address = listener.local_addr().expect("the listener's address");
    // As servers are deployed: a response leaves in one write, not after
    // Nagle's wait for the previous one's acknowledgement.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    runtime.spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}/v1/models")
}

/// The Lua script given to `wrk`, removed on drop.
struct Script {
    path: PathBuf,
}

impl Script {
    /// A script that sends `Authorization: Bearer <key>` with each of `keys`
    /// in turn, its requests formatted once in `init`, and whose `done`
    /// prints one line for [`Run::parse`].
    fn write(keys: &[ApiKey]) -> Script {
        let mut lua = String::from("local keys = {\n");
        for key in keys {
            writeln!(lua, "  \"{}\",", key.expose_secret()).expect("writing to a String");
        }
        lua.push_str(
            r#"}
local requests = {}
local turn = 0

function init(args)
  for i, key in ipairs(keys) do
    requests[i] = wrk.format(nil, nil, { ["Authorization"] = "Bearer " .. key })
  end
end

function request()
  turn = turn % #requests + 1
  return requests[turn]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "lumyx-wrk requests=%d duration_us=%d bytes=%d status=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(99)))
end
"#,
        );
        let path = std::env::temp_dir().join(format!("lumyx-gate-http-{}.lua", std::process::id()));
        std::fs::write(&path, lua).expect("writing the wrk script");
        Script { path }
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One `wrk` run and the CPU it took.
#[derive(Debug, Clone)]
struct Run {
    requests: u64,
    duration_us: u64,
    bytes: u64,
    /// Responses whose status was not 2xx or 3xx.
    non_2xx: u64,
    /// Connect, read and write errors and timeouts.
    socket_errors: u64,
    p50_us: f64,
    p99_us: f64,
    /// CPU time of this process (the servers) during the run, in seconds.
    server_cpu: f64,
    /// CPU time of `wrk`, in seconds.
    wrk_cpu: f64,
    /// CPU time of every other process of the machine, in seconds.
    other_cpu: f64,
}

impl Run {
    fn parse(stdout: &str) -> Option<Run> {
        let line = stdout.lines().find(|l| l.starts_with("lumyx-wrk "))?;
        let field = |name: &str| -> Option<u64> {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))?
                .parse()
                .ok()
        };
        Some(Run {
            requests: field("requests")?,
            duration_us: field("duration_us")?,
            bytes: field("bytes")?,
            non_2xx: field("status")?,
            socket_errors: field("connect")? + field("read")? + field("write")? + field("timeout")?,
            p50_us: field("p50_us")? as f64,
            p99_us: field("p99_us")? as f64,
            server_cpu: 0.0,
            wrk_cpu: 0.0,
            other_cpu: 0.0,
        })
    }

    fn seconds(&self) -> f64 {
        self.duration_us as f64 / 1e6
    }

    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds()
    }

    fn server_micros_per_request(&self) -> f64 {
        self.server_cpu * 1e6 / self.requests as f64
    }

    fn bytes_per_response(&self) -> f64 {
        self.bytes as f64 / self.requests as f64
    }

    fn line(&self) -> String {
        format!(
            "{:>8.0} req/s  p50 {:>5.2} ms  p99 {:>5.2} ms  non-2xx {}  socket errors {}  \
             server CPU {:>3.0}% ({:.1} µs/req)  wrk CPU {:>3.0}%  others' CPU {:>3.0}%",
            self.per_second(),
            self.p50_us / 1000.0,
            self.p99_us / 1000.0,
            self.non_2xx,
            self.socket_errors,
            100.0 * self.server_cpu / self.seconds(),
            self.server_micros_per_request(),
            100.0 * self.wrk_cpu / self.seconds(),
            100.0 * self.other_cpu / self.seconds(),
        )
    }
}

/// Runs `wrk` against `url` for `seconds`.
fn load(wrk: &Path, script: &Path, url: &str, seconds: u64) -> Run {
    let before = CpuTimes::now();
    let output = Command::new(wrk)
        .arg(format!("-t{WRK_THREADS}"))
        .arg(format!("-c{WRK_CONNECTIONS}"))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(url)
        .output()
        .expect("running wrk");
    let after = CpuTimes::now();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "wrk failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut run = Run::parse(&stdout)
        .unwrap_or_else(|| panic!("wrk's output has no line of the script's `done`: {stdout}"));
    run.server_cpu = after.own - before.own;
    run.wrk_cpu = after.children - before.children;
    run.other_cpu = (after.machine - before.machine - run.server_cpu - run.wrk_cpu).max(0.0);
    run
}

/// CPU seconds of this process and of its children that were waited for,
/// from `/proc/self/stat`, and of the whole machine, from `/proc/stat`
/// (zero where there is none): what else ran during a run.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    own: f64,
    children: f64,
    machine: f64,
}

impl CpuTimes {
    fn now() -> CpuTimes {
        // The kernel reports these in USER_HZ, 100 a second on Linux.
        const TICKS: f64 = 100.0;
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        // After the command's name, which may hold spaces: fields 3 onwards.
        let fields: Vec<f64> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default()
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0.0))
            .collect();
        // utime, stime, cutime, cstime: fields 14 to 17.
        let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0.0) / TICKS;
        // user, nice, system, idle, iowait, irq, softirq, steal: all but
        // idle and iowait were busy.
        let machine: f64 = std::fs::read_to_string("/proc/stat")
            .unwrap_or_default()
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .map(|line| {
                line.split_whitespace()
                    .take(8)
                    .enumerate()
                    .filter(|&(i, _)| i != 3 && i != 4)
                    .map(|(_, ticks)| ticks.parse().unwrap_or(0.0))
                    .sum()
            })
            .unwrap_or(0.0);
        CpuTimes {
            own: field(14) + field(15),
            children: field(16) + field(17),
            machine: machine / TICKS,
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// A positive number from the environment, or `default`.
fn setting(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => match value.parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} is a positive whole number, got `{value}`"),
        },
        Err(_) => default,
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown (no model name in /proc/cpuinfo)".to_owned())
}

/// `wrk -v`'s first line (it exits 1 after printing it).
fn wrk_version(wrk: &Path) -> String {
    Command::new(wrk)
        .arg("-v")
        .output()
        .ok()
        .and_then(|out| {
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            text.lines().next().map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
