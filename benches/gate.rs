//! The gate's hot path in memory: one `Gate::check_now` against a table of
//! 1,000,000 keys, for every outcome, and with the headers rendered.
//!
//! ```text
//! cargo bench -p lumyx-benches --bench gate
//! ```
//!
//! Groups:
//! - `admitted`: a valid key, in scope, under its limits: the verdict alone,
//!   then with its eight headers rendered into a fresh `HeaderMap`; keys
//!   taken in turn from 1,024 (whose entries stay in the caches: the
//!   computation) or 65,536 (which do not: the memory) spread over the table,
//!   on a manual clock moved 86.4 ms a check (each key comes back with room
//!   in its bucket, and a day passes every million checks, so no key reaches
//!   its daily limit);
//! - `denied`: every refusal (a missing header, a malformed one, a key of the
//!   wrong length, a bad checksum, an unknown key, expired, revoked, out of
//!   scope, the minute limit, the day limit);
//! - `admitted_2_threads`: two threads, each on its own keys: decisions per
//!   second of both (the throughput of the wall time).
//!
//! The anchor, in `admitted`: governor's keyed limiter keyed on the header's
//! value, what `tower_governor` does per request (with the system clock,
//! 1,024 keys in turn). The anchor of the gate as a whole is
//! `tower_governor` in front of the same route under a load generator: the
//! `gate_http` bench.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use http::{HeaderMap, HeaderValue};
use lumyx_gate::{Gate, KeyTable, MemoryBackend};
use lumyx_keys::{ApiKey, KeyRecord, Limits, Scope, Scopes};
use lumyx_ratelimit::ManualClock;

#[path = "resident.rs"]
mod resident;

const TABLE_SIZE: usize = 1_000_000;
const IN_TURN: usize = 65_536;
/// The clock's step between two checks of the `admitted` rows.
const STEP: Duration = Duration::from_micros(86_400);
/// How many checks of the two-thread row pass between two moves of the
/// clock.
const CLOCK_EVERY: u64 = 64;

type MemoryGate = Gate<MemoryBackend<ManualClock>, ManualClock>;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 1).unwrap()
}

/// A gate over a table of `TABLE_SIZE` keys, and the bearer headers of
/// `IN_TURN` of them spread over it.
fn gate_with_table() -> (MemoryGate, ManualClock, Vec<HeaderValue>) {
    let clock = ManualClock::at(start());
    let before = resident::rss();
    let table = Arc::new(KeyTable::with_capacity(TABLE_SIZE));
    let mut headers = Vec::with_capacity(IN_TURN);
    let limits = Limits::new(1000, 10_000).unwrap();
    for i in 0..TABLE_SIZE {
        let key = ApiKey::generate().unwrap();
        table.put(record_of(&key).with_limits(limits));
        if i % (TABLE_SIZE / IN_TURN) == 0 && headers.len() < IN_TURN {
            headers.push(bearer(&key));
        }
    }
    if let (Some(before), Some(after)) = (before, resident::rss()) {
        // The headers kept for the rows are 85 bytes each, and a few MB.
        println!(
            "table of {TABLE_SIZE} keys: resident set growth {:.0} bytes/key",
            after.saturating_sub(before) as f64 / TABLE_SIZE as f64
        );
    }
    let gate = Gate::with_clock(
        table,
        MemoryBackend::with_clock(clock.clone()),
        clock.clone(),
    );
    (gate, clock, headers)
}

fn bearer(key: &ApiKey) -> HeaderValue {
    HeaderValue::from_str(&format!("Bearer {}", key.expose_secret())).unwrap()
}

/// The record of a key created the day before the benches' clock starts.
fn record_of(key: &ApiKey) -> KeyRecord {
    KeyRecord::new(
        key.as_key_ref(),
        "bench",
        "acct",
        start() - TimeDelta::days(1),
    )
}

/// Adds a key with this record's settings to the gate's table.
fn add_key(gate: &MemoryGate, edit: impl FnOnce(KeyRecord) -> KeyRecord) -> HeaderValue {
    let key = ApiKey::generate().unwrap();
    gate.table().put(edit(record_of(&key)));
    bearer(&key)
}

fn admitted(c: &mut Criterion) {
    let (gate, clock, headers) = gate_with_table();
    let mut group = c.benchmark_group("admitted");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    for keys in [1024, IN_TURN] {
        group.bench_function(format!("check, {keys} keys in turn"), |b| {
            b.iter(|| {
                i += 1;
                clock.advance(STEP);
                let verdict = gate.check_now(Some(&headers[i % keys]), Scope::Chat);
                assert!(verdict.is_admitted());
                black_box(verdict)
            })
        });
        group.bench_function(
            format!("check and render headers, {keys} keys in turn"),
            |b| {
                b.iter(|| {
                    i += 1;
                    clock.advance(STEP);
                    let verdict = gate.check_now(Some(&headers[i % keys]), Scope::Chat);
                    let mut map = HeaderMap::new();
                    verdict.write_headers(&mut map);
                    black_box(map)
                })
            },
        );
    }
    // The anchor: what `tower_governor` does per request, without HTTP:
    // governor's keyed limiter (a `DashMap`) keyed on the header's value,
    // a quota of 1,000 a minute, no verification, no day, no counts.
    let anchor: DefaultKeyedRateLimiter<HeaderValue> =
        RateLimiter::dashmap(Quota::per_minute(NonZeroU32::new(1000).unwrap()));
    for header in &headers[..1024] {
        let _ = anchor.check_key(header);
    }
    group.bench_function(
        "anchor: governor keyed on the header, 1024 keys in turn",
        |b| {
            b.iter(|| {
                i += 1;
                black_box(anchor.check_key(black_box(&headers[i % 1024])))
            })
        },
    );
    let verdict = gate.check_now(Some(&headers[0]), Scope::Chat);
    group.bench_function("render headers alone", |b| {
        b.iter(|| {
            let mut map = HeaderMap::new();
            verdict.write_headers(&mut map);
            black_box(map)
        })
    });
    group.finish();

    // Two threads, each with its own half of the keys; the clock is moved by
    // one of them only, so the other's checks find it where it is, and only
    // every `CLOCK_EVERY` checks: a clock written at every check would make
    // the two cores take turns with its cache line, which a server's system
    // clock does not.
    let mut group = c.benchmark_group("admitted_2_threads");
    group.throughput(Throughput::Elements(1));
    group.bench_function("check, 1024 keys in turn", |b| {
        b.iter_custom(|iters| {
            let per_thread = iters / 2;
            let started = Instant::now();
            std::thread::scope(|scope| {
                for half in 0..2 {
                    let (gate, clock, headers) = (&gate, &clock, &headers);
                    scope.spawn(move || {
                        for n in 0..per_thread {
                            if half == 0 && n % CLOCK_EVERY == 0 {
                                clock.advance(STEP * 2 * CLOCK_EVERY as u32);
                            }
                            let at = (n as usize * 2 + half) % 1024;
                            let _ = black_box(gate.check_now(Some(&headers[at]), Scope::Chat));
                        }
                    });
                }
            });
            started.elapsed()
        })
    });
    group.finish();
}

fn denied(c: &mut Criterion) {
    let clock = ManualClock::at(start());
    let gate: MemoryGate = Gate::with_clock(
        Arc::new(KeyTable::new()),
        MemoryBackend::with_clock(clock.clone()),
        clock.clone(),
    );
    let now = start();
    let valid = add_key(&gate, |record| record);
    let valid_text = valid.to_str().unwrap().to_owned();
    let mut bad_checksum = valid_text.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == '0' { '1' } else { '0' });
    let unknown = bearer(&ApiKey::generate().unwrap());
    let expired = add_key(&gate, |record| {
        record.with_expiry(now - TimeDelta::hours(1))
    });
    let revoked = add_key(&gate, |mut record| {
        record.revoked_at = Some(now - TimeDelta::hours(1));
        record
    });
    let out_of_scope = add_key(&gate, |record| {
        record.with_scopes(Scopes::NONE.with(Scope::Models))
    });
    let minute = add_key(&gate, |record| {
        record.with_limits(Limits::new(1, 10_000).unwrap())
    });
    assert!(gate.check_now(Some(&minute), Scope::Chat).is_admitted());
    let day = add_key(&gate, |record| {
        record.with_limits(Limits::new(1000, 1).unwrap())
    });
    assert!(gate.check_now(Some(&day), Scope::Chat).is_admitted());

    let cases: [(&str, Option<HeaderValue>); 10] = [
        ("missing header", None),
        (
            "malformed header",
            Some(HeaderValue::from_static("Basic dXNlcjpwYXNz")),
        ),
        (
            "wrong length",
            Some(HeaderValue::from_static("Bearer nova_0123456789abcdef")),
        ),
        (
            "bad checksum",
            Some(HeaderValue::from_str(&bad_checksum).unwrap()),
        ),
        ("unknown key", Some(unknown)),
        ("expired", Some(expired)),
        ("revoked", Some(revoked)),
        ("out of scope", Some(out_of_scope)),
        ("minute limit", Some(minute)),
        ("day limit", Some(day)),
    ];
    let mut group = c.benchmark_group("denied");
    group.throughput(Throughput::Elements(1));
    for (name, header) in &cases {
        group.bench_function(*name, |b| {
            b.iter(|| {
                let verdict = gate.check_now(black_box(header.as_ref()), Scope::Chat);
                assert!(!verdict.is_admitted());
                black_box(verdict)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, admitted, denied);
criterion_main!(benches);
