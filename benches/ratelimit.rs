//! lumyx-ratelimit beside its anchor, governor's keyed limiter.
//!
//! * `memory`: one decision (our minute + day, governor's minute only) on the
//!   same keys, 1 key and 100,000 keys: admitted decisions (manual clocks
//!   moved before each, 1 and 2 threads), denied decisions (frozen clocks,
//!   emptied buckets), and both on their default (real) clocks, where
//!   hammered keys are mostly denied.
//! * state bytes per key with 1,000,000 keys, printed before the groups run.
//! * `redis`: decisions per second with 50 concurrent callers on loopback,
//!   and a count of Redis commands per decision (printed), when a
//!   `redis-server` binary is installed.
//!
//! Run: `cargo bench -p lumyx-benches --bench ratelimit`. With
//! `LUMYX_BENCH_INTERLEAVED=1` the `memory` rows are first also measured
//! interleaved (alternating batches of both limiters; see `interleave.rs`),
//! whose ratios hold on a noisy machine where criterion's do not.

use std::collections::HashMap;
use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use governor::clock::FakeRelativeClock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lumyx_ratelimit::{Limits, ManualClock, MemoryLimiter, OutagePolicy, RedisLimiter};
use lumyx_test_support::RedisServer;

#[path = "interleave.rs"]
mod interleave;
#[path = "resident.rs"]
mod resident;
use resident::rss;

const MANY_KEYS: u64 = 100_000;

/// The keys visited by call `i`: a fixed scatter over `n` keys, so both
/// limiters see the same sequence and neither is helped by locality.
fn key(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

fn lumyx(n: u64) -> MemoryLimiter<u64> {
    let limiter = MemoryLimiter::<u64, _>::with_clock(lumyx_ratelimit::SystemClock);
    for k in 0..n {
        let _ = limiter.check(&k, Limits::default());
    }
    limiter
}

fn governor(n: u64) -> DefaultKeyedRateLimiter<u64> {
    let limiter = RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(60).unwrap()));
    for k in 0..n {
        let _ = limiter.check_key(&k);
    }
    limiter
}

/// Runs `iters` calls of `f` split over `threads` threads; returns the wall time.
fn on_threads(threads: u64, iters: u64, f: &(dyn Fn(u64) + Sync)) -> Duration {
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let per_thread = iters / threads;
                let base = t * per_thread * 7919;
                for i in 0..per_thread {
                    f(base + i);
                }
            });
        }
    });
    start.elapsed()
}

/// The clocks alone: part of every decision, and where the two differ most.
fn clocks(c: &mut Criterion) {
    let mut group = c.benchmark_group("clock");
    group.bench_function("std SystemTime::now", |b| {
        b.iter(|| black_box(std::time::SystemTime::now()))
    });
    group.bench_function("lumyx SystemClock", |b| {
        b.iter(|| black_box(lumyx_ratelimit::Clock::now(&lumyx_ratelimit::SystemClock)))
    });
    let clock = governor::clock::DefaultClock::default();
    group.bench_function("governor DefaultClock", |b| {
        b.iter(|| black_box(governor::clock::Clock::now(&clock)))
    });
    group.finish();
}

/// One row of the `memory` group: the same workload for both limiters, as
/// closures over the decision number, run on `threads` threads.
struct Row {
    id: String,
    threads: u64,
    ours: Box<dyn Fn(u64) + Sync>,
    theirs: Box<dyn Fn(u64) + Sync>,
    /// Decisions made and denied, when the row should admit (printed).
    denials: Option<[Arc<(AtomicU64, AtomicU64)>; 2]>,
}

/// The rows of the `memory` group.
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    // Admitted decisions: both limiters on manual clocks that move before
    // each decision, so decisions admit; both pay the same one atomic add for
    // moving their clock. One key: 10 s a decision (1000 per minute, so a
    // decision finds up to 166 more tokens; our daily limit never binds: 8640
    // decisions a day). 100,000 keys: 1 ms a decision, so each key comes back
    // 100 s later with a full bucket, within the same UTC day (a day holds 86
    // million decisions; idle keys of a past day would be swept and come back
    // as new ones). With 2 threads a decision can read the clock before the
    // other thread moves it on and decide after the other's decision: a few
    // requests "from the past". Denials are counted and printed.
    let fast = Limits::new(1000, 10_000).unwrap();
    let fast_quota = Quota::per_minute(NonZeroU32::new(1000).unwrap());
    for (label, n, step) in [
        ("1 key", 1, Duration::from_secs(10)),
        ("100k keys", MANY_KEYS, Duration::from_millis(1)),
    ] {
        let clock = ManualClock::at("2026-11-27T00:00:01Z".parse().unwrap());
        let ours = Arc::new(MemoryLimiter::<u64, _>::with_clock(clock.clone()));
        let theirs = Arc::new(RateLimiter::dashmap_with_clock(
            fast_quota,
            FakeRelativeClock::default(),
        ));
        for k in 0..n {
            let _ = ours.check(&k, fast);
            let _ = theirs.check_key(&k);
        }
        for threads in [1, 2] {
            let counts = [Arc::default(), Arc::default()];
            let (ours, theirs, clock) = (ours.clone(), theirs.clone(), clock.clone());
            let [our_counts, their_counts]: [Arc<(AtomicU64, AtomicU64)>; 2] = counts.clone();
            rows.push(Row {
                id: format!("admitted, {label}, {}", plural_threads(threads)),
                threads,
                ours: Box::new(move |i| {
                    clock.advance(step);
                    our_counts.0.fetch_add(1, Ordering::Relaxed);
                    if !black_box(ours.check(&key(i, n), fast)).is_admitted() {
                        our_counts.1.fetch_add(1, Ordering::Relaxed);
                    }
                }),
                theirs: Box::new(move |i| {
                    theirs.clock().advance(step);
                    their_counts.0.fetch_add(1, Ordering::Relaxed);
                    if black_box(theirs.check_key(&key(i, n))).is_err() {
                        their_counts.1.fetch_add(1, Ordering::Relaxed);
                    }
                }),
                denials: Some(counts),
            });
        }
    }

    // Denied decisions: frozen clocks, every bucket emptied first (1 per
    // minute), so every decision is a denial (asserted).
    let one = Limits::new(1, 10_000).unwrap();
    let one_quota = Quota::per_minute(NonZeroU32::new(1).unwrap());
    for (label, n) in [("1 key", 1), ("100k keys", MANY_KEYS)] {
        let ours = MemoryLimiter::<u64, _>::with_clock(ManualClock::at(
            "2026-11-27T12:00:00Z".parse().unwrap(),
        ));
        let theirs = RateLimiter::dashmap_with_clock(one_quota, FakeRelativeClock::default());
        for k in 0..n {
            let _ = ours.check(&k, one);
            let _ = theirs.check_key(&k);
        }
        rows.push(Row {
            id: format!("denied, {label}, 1 thread"),
            threads: 1,
            ours: Box::new(move |i| {
                assert!(!black_box(ours.check(&key(i, n), one)).is_admitted());
            }),
            theirs: Box::new(move |i| {
                assert!(black_box(theirs.check_key(&key(i, n))).is_err());
            }),
            denials: None,
        });
    }

    // Both on their default (real) clocks, clock reads included. Hammered at
    // full speed, a key at 60 per minute is nearly always denied, so this
    // mostly measures denials plus a clock read.
    for (label, n) in [("1 key", 1), ("100k keys", MANY_KEYS)] {
        let ours = Arc::new(lumyx(n));
        let theirs = Arc::new(governor(n));
        for threads in [1, 2] {
            let (ours, theirs) = (ours.clone(), theirs.clone());
            rows.push(Row {
                id: format!("real clock, {label}, {}", plural_threads(threads)),
                threads,
                ours: Box::new(move |i| {
                    let _ = black_box(ours.check(&key(i, n), Limits::default()));
                }),
                theirs: Box::new(move |i| {
                    let _ = black_box(theirs.check_key(&key(i, n)));
                }),
                denials: None,
            });
        }
    }
    rows
}

fn memory(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory");
    group.throughput(Throughput::Elements(1));
    for row in rows() {
        group.bench_function(BenchmarkId::new("lumyx minute+day", &row.id), |b| {
            b.iter_custom(|iters| on_threads(row.threads, iters, &*row.ours))
        });
        group.bench_function(BenchmarkId::new("governor minute", &row.id), |b| {
            b.iter_custom(|iters| on_threads(row.threads, iters, &*row.theirs))
        });
        if let Some([ours, theirs]) = &row.denials {
            report_denials("lumyx", &row.id, ours);
            report_denials("governor", &row.id, theirs);
        }
    }
    group.finish();
}

/// The rows of the `memory` group, interleaved: alternating batches of 20,000
/// decisions of each limiter, 100 rounds, medians (see `interleave.rs`).
fn memory_interleaved() {
    const BATCH: u64 = 20_000;
    const ROUNDS: usize = 100;
    println!("memory, interleaved ({ROUNDS} rounds of {BATCH} decisions each, medians):");
    for row in rows() {
        let per_decision = |f: &(dyn Fn(u64) + Sync)| {
            on_threads(row.threads, BATCH, f).as_nanos() as f64 / BATCH as f64
        };
        let result = interleave::interleave(
            ROUNDS,
            || per_decision(&*row.ours),
            || per_decision(&*row.theirs),
        );
        println!(
            "  {}: lumyx {:.1} ns, governor {:.1} ns, ratio {:.2}",
            row.id, result.ours_ns, result.theirs_ns, result.ratio
        );
    }
}

fn report_denials(who: &str, id: &str, counts: &(AtomicU64, AtomicU64)) {
    let (decided, denied) = (
        counts.0.load(Ordering::Relaxed),
        counts.1.load(Ordering::Relaxed),
    );
    println!(
        "  {who}, {id}: {denied} of {decided} decisions denied ({:.4}%)",
        100.0 * denied as f64 / decided.max(1) as f64
    );
}

fn plural_threads(threads: u64) -> String {
    format!("{threads} thread{}", if threads > 1 { "s" } else { "" })
}

fn memory_report() {
    const KEYS: u64 = 1_000_000;
    let before = rss();
    let limiter = lumyx(KEYS);
    let after = rss();
    let len = limiter.len() as u64;
    let capacity = limiter.capacity() as u64;
    let slot = MemoryLimiter::<u64>::SLOT_BYTES as u64;
    println!("state per key, {KEYS} keys (u64 keys):");
    println!(
        "  limiter state: {} bytes/key (one AtomicU64: GCRA arrival time 37 bits, day count 14, UTC day 13)",
        MemoryLimiter::<u64>::STATE_BYTES
    );
    println!(
        "  map slot: {slot} bytes (key + state) + 1 control byte; \
         {len} keys in {capacity} slots ({:.0}% full)",
        100.0 * len as f64 / capacity as f64
    );
    println!(
        "  map total: {:.1} bytes/key by capacity, overhead beyond state {:.1} bytes/key",
        (capacity * (slot + 1)) as f64 / len as f64,
        (capacity * (slot + 1)) as f64 / len as f64 - MemoryLimiter::<u64>::STATE_BYTES as f64
    );
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "  resident set growth: {:.1} bytes/key",
            (after - before) as f64 / len as f64
        );
    }
    drop(limiter);
    let before = rss();
    let theirs = governor(KEYS);
    if let (Some(before), Some(after)) = (before, rss()) {
        println!(
            "  governor keyed (dashmap), same keys: resident set growth {:.1} bytes/key",
            (after.saturating_sub(before)) as f64 / theirs.len() as f64
        );
    }
}

/// `INFO all` over a plain TCP connection (RESP by hand keeps this bench's
/// dependencies to the workspace's own): `total_commands_processed` and the
/// calls of each command.
fn command_counts(port: u16) -> (u64, HashMap<String, u64>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header).unwrap();
    let len: usize = header.trim().trim_start_matches('$').parse().unwrap();
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let info = String::from_utf8(body).unwrap();
    let number = |text: &str| -> u64 {
        text.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0)
    };
    let mut total = 0;
    let mut calls = HashMap::new();
    for line in info.lines() {
        if let Some(rest) = line.strip_prefix("total_commands_processed:") {
            total = number(rest);
        } else if let Some((name, stats)) = line
            .strip_prefix("cmdstat_")
            .and_then(|rest| rest.split_once(":calls="))
        {
            calls.insert(name.to_owned(), number(stats));
        }
    }
    (total, calls)
}

async fn run_clients(limiter: &Arc<RedisLimiter>, clients: u64, decisions: u64) {
    let mut tasks = Vec::new();
    for client in 0..clients {
        let limiter = Arc::clone(limiter);
        tasks.push(tokio::spawn(async move {
            let limits = Limits::new(1000, 10_000).unwrap();
            for i in 0..decisions / clients {
                let key = format!("bench-{}", key(client * 1_000_003 + i, 1000));
                let _ = black_box(limiter.check(&key, limits).await.unwrap());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

fn redis(c: &mut Criterion) {
    let Some(server) = RedisServer::start_or_skip("ratelimit bench") else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let limiter = runtime.block_on(async {
        RedisLimiter::builder(server.url().parse().expect("a Redis URL"))
            .outage_policy(OutagePolicy::Closed)
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .unwrap()
    });
    let limiter = Arc::new(limiter);

    // One round trip per decision: N decisions, N commands.
    runtime.block_on(async {
        run_clients(&limiter, 50, 1000).await; // loads the script
        const N: u64 = 10_000;
        let (total_before, calls_before) = command_counts(server.port());
        let start = Instant::now();
        run_clients(&limiter, 50, N).await;
        let elapsed = start.elapsed();
        let (total_after, calls_after) = command_counts(server.port());
        let delta = |name: &str| {
            calls_after.get(name).copied().unwrap_or(0)
                - calls_before.get(name).copied().unwrap_or(0)
        };
        println!(
            "redis, 50 concurrent clients: {N} decisions in {elapsed:?} = {:.0} decisions/s",
            N as f64 / elapsed.as_secs_f64()
        );
        // Redis counts the commands a script runs among all commands; the
        // ones a client sent are the rest (less the first INFO, counted in
        // the second reading).
        let inside_script =
            delta("time") + delta("hmget") + delta("hset") + delta("hdel") + delta("pexpire");
        println!(
            "redis round trips: {N} decisions -> {} EVALSHA, {} commands sent by clients \
             ({} processed in total, {inside_script} of them TIME/HMGET/HSET/HDEL/PEXPIRE inside the script)",
            delta("evalsha"),
            total_after - total_before - inside_script - 1,
            total_after - total_before - 1,
        );
    });

    let mut group = c.benchmark_group("redis");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("50 concurrent clients", |b| {
        b.iter_custom(|iters| {
            let iters = iters.max(50);
            runtime.block_on(async {
                let start = Instant::now();
                run_clients(&limiter, 50, iters).await;
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, clocks, memory, redis);

fn main() {
    if std::env::var_os("LUMYX_BENCH_INTERLEAVED").is_some() {
        memory_interleaved();
    }
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
