//! Counters for the in-memory limiter beside governor, for when the hardware
//! counters (`perf stat`) are not available, as in many VMs: one workload per
//! run, to be counted by `valgrind --tool=cachegrind`, which reports the
//! instructions, the data reads and writes and, with a cache model of a given
//! CPU, the first- and second-level data-cache misses of the run.
//!
//! ```text
//! cargo bench -p lumyx-benches --bench ratelimit_counts --no-run
//! BIN=$(ls -t target/release/deps/ratelimit_counts-* | grep -v '\.d$' | head -1)
//! for n in 0 1000000; do
//!   LUMYX_COUNT="lumyx denied 100000 $n" valgrind --tool=cachegrind --cache-sim=yes \
//!     --D1=32768,8,64 --LL=1048576,8,64 --cachegrind-out-file=/dev/null "$BIN"
//! done
//! ```
//!
//! The difference between the run with `n` decisions and the one with 0 is
//! what `n` decisions cost; divide by `n`. The workloads are those of the
//! `memory` group of the `ratelimit` bench: the same keys in the same order,
//! decisions denied on a frozen clock or admitted on a clock moved before
//! each (10 s for one key, 1 ms for many). Without `LUMYX_COUNT` (as under `cargo bench`) it does
//! nothing.

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::FakeRelativeClock;
use governor::{Quota, RateLimiter};
use lumyx_ratelimit::{Limits, ManualClock, MemoryLimiter};

/// The keys visited by call `i`, as in the `ratelimit` bench.
fn key(i: u64, n: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n
}

fn main() {
    let Ok(spec) = std::env::var("LUMYX_COUNT") else {
        return;
    };
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [who, outcome, keys, decisions] = words[..] else {
        panic!("LUMYX_COUNT is `lumyx|governor denied|admitted KEYS DECISIONS`, got `{spec}`");
    };
    let keys: u64 = keys.parse().expect("KEYS is a number");
    let decisions: u64 = decisions.parse().expect("DECISIONS is a number");
    let admitted = match outcome {
        "admitted" => true,
        "denied" => false,
        other => panic!("expected denied or admitted, got {other}"),
    };
    let rpm = if admitted { 1000 } else { 1 };
    // As in the `ratelimit` bench: a key comes back with a full bucket.
    let step = if keys == 1 {
        Duration::from_secs(10)
    } else {
        Duration::from_millis(1)
    };
    match who {
        "lumyx" => {
            let limits = Limits::new(rpm, 10_000).unwrap();
            let clock = ManualClock::at("2026-11-27T00:00:01Z".parse().unwrap());
            let limiter = MemoryLimiter::<u64, _>::with_clock(clock.clone());
            for k in 0..keys {
                let _ = limiter.check(&k, limits);
            }
            for i in 0..decisions {
                if admitted {
                    clock.advance(step);
                }
                let decision = black_box(limiter.check(&key(i, keys), limits));
                assert_eq!(decision.is_admitted(), admitted);
            }
        }
        "governor" => {
            let quota = Quota::per_minute(NonZeroU32::new(rpm).unwrap());
            let limiter = RateLimiter::dashmap_with_clock(quota, FakeRelativeClock::default());
            for k in 0..keys {
                let _ = limiter.check_key(&k);
            }
            for i in 0..decisions {
                if admitted {
                    limiter.clock().advance(step);
                }
                let decision = black_box(limiter.check_key(&key(i, keys)));
                assert_eq!(decision.is_ok(), admitted);
            }
        }
        other => panic!("expected lumyx or governor, got {other}"),
    }
}
