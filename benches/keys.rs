//! The hot key-check path of `lumyx-keys`, each step beside the same step of
//! the `prefixed-api-key` crate (Seam-style keys, SHA-256 of the long token).
//!
//! ```text
//! cargo bench -p lumyx-benches --bench keys
//! ```
//!
//! Groups, with `lumyx` and `prefixed-api-key` in each:
//! - `reject_wrong_length`: a text of the wrong shape;
//! - `reject_bad_checksum`: a well-formed key that was never issued (the
//!   anchor has no checksum, so it must hash and compare to refuse it);
//! - `parse_valid`: parse a valid key;
//! - `check_valid`: the anchor's whole check of a valid key (parse, hash,
//!   constant-time comparison with the stored hash) beside ours (parse,
//!   digest, constant-time comparison with the stored digest);
//! - `digest`: hash a parsed key for storage or lookup;
//! - `verify_hit_1m`: parse, hash and find a valid key in a store of
//!   1,000,000 keys (the anchor: parse, look the short token up in a map of
//!   1,000,000 hashes, check the hash), once cycling through 4,096 keys spread
//!   over the store, whose entries fall out of the caches, and once for one
//!   key, which measures the computation alone.

use std::collections::HashMap;
use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use lumyx_keys::{ApiKey, ApiKeyRef, KeyRecord, MemoryKeyStore, Verification};
use prefixed_api_key::{PakControllerOsSha256, PrefixedApiKey, PrefixedApiKeyController};

const STORE_SIZE: usize = 1_000_000;
const PROBES: usize = 4096;

fn pak_controller() -> PakControllerOsSha256 {
    PrefixedApiKeyController::configure()
        .prefix("nova".to_owned())
        .seam_defaults()
        .finalize()
        .expect("the Seam defaults are complete")
}

fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap()
}

fn single_key_steps(c: &mut Criterion) {
    let key = ApiKey::generate().unwrap();
    let text = key.expose_secret().to_owned();
    let mut never_issued = text.clone();
    let last = never_issued.pop().unwrap();
    never_issued.push(if last == '0' { '1' } else { '0' });
    let wrong_length = &text[..40];

    let pak = pak_controller();
    let (pak_key, pak_hash) = pak.generate_key_and_hash();
    let pak_text = pak_key.to_string();
    let (other_pak_key, _) = pak.generate_key_and_hash();
    let other_pak_text = other_pak_key.to_string();
    let pak_garbage = "nova-0123456789abcdef0123456789abcdef0123";

    let mut group = c.benchmark_group("reject_wrong_length");
    group.bench_function("lumyx", |b| {
        b.iter(|| ApiKeyRef::parse(black_box(wrong_length)).is_err())
    });
    group.bench_function("prefixed-api-key", |b| {
        b.iter(|| PrefixedApiKey::from_string(black_box(pak_garbage)).is_err())
    });
    group.finish();

    let mut group = c.benchmark_group("reject_bad_checksum");
    group.bench_function("lumyx", |b| {
        b.iter(|| ApiKeyRef::parse(black_box(&never_issued)).is_err())
    });
    group.bench_function("prefixed-api-key", |b| {
        b.iter(|| {
            let presented = PrefixedApiKey::from_string(black_box(&other_pak_text)).unwrap();
            !pak.check_hash(&presented, &pak_hash)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("parse_valid");
    group.bench_function("lumyx", |b| {
        b.iter(|| ApiKeyRef::parse(black_box(&text)).unwrap().prefix().len())
    });
    group.bench_function("prefixed-api-key", |b| {
        b.iter(|| PrefixedApiKey::from_string(black_box(&pak_text)).unwrap())
    });
    group.finish();

    // The anchor's whole check of a valid key, parse + hash + constant-time
    // comparison with the stored hash, against ours: parse + digest +
    // constant-time comparison with the stored digest.
    let stored_digest = key.digest();
    let mut group = c.benchmark_group("check_valid");
    group.bench_function("lumyx", |b| {
        b.iter(|| ApiKeyRef::parse(black_box(&text)).unwrap().digest() == stored_digest)
    });
    group.bench_function("prefixed-api-key", |b| {
        b.iter(|| {
            let presented = PrefixedApiKey::from_string(black_box(&pak_text)).unwrap();
            pak.check_hash(&presented, &pak_hash)
        })
    });
    group.finish();

    let parsed = ApiKeyRef::parse(&text).unwrap();
    let mut group = c.benchmark_group("digest");
    group.bench_function("lumyx", |b| b.iter(|| black_box(parsed).digest()));
    group.bench_function("prefixed-api-key", |b| {
        b.iter(|| pak.long_token_hashed(black_box(&pak_key)))
    });
    group.finish();
}

fn verify_hit_in_a_million(c: &mut Criterion) {
    let now = created() + chrono::Duration::hours(1);

    let store = MemoryKeyStore::with_capacity(STORE_SIZE);
    let mut probes = Vec::with_capacity(PROBES);
    for i in 0..STORE_SIZE {
        let key = ApiKey::generate().unwrap();
        store
            .insert(KeyRecord::new(
                key.as_key_ref(),
                "bench",
                "acct_bench",
                created(),
            ))
            .unwrap();
        if i % (STORE_SIZE / PROBES) == 0 && probes.len() < PROBES {
            probes.push(key.expose_secret().to_owned());
        }
    }

    let pak = pak_controller();
    let mut pak_store: HashMap<String, String> = HashMap::with_capacity(STORE_SIZE);
    let mut pak_probes = Vec::with_capacity(PROBES);
    for i in 0..STORE_SIZE {
        let (key, hash) = pak.generate_key_and_hash();
        if i % (STORE_SIZE / PROBES) == 0 && pak_probes.len() < PROBES {
            pak_probes.push(key.to_string());
        }
        pak_store.insert(key.short_token().to_owned(), hash);
    }

    // The same check over 4,096 keys spread through the store (memory-bound:
    // the entries do not stay in the caches) and over one key (the compute).
    let mut group = c.benchmark_group("verify_hit_1m");
    for (case, probe_count) in [("4096_keys", PROBES), ("1_key", 1)] {
        let mut next = 0;
        group.bench_function(format!("lumyx/{case}"), |b| {
            b.iter(|| {
                next = (next + 1) % probe_count;
                let key = ApiKeyRef::parse(black_box(&probes[next])).unwrap();
                matches!(store.verify(key, now), Verification::Valid(_))
            })
        });
        let mut next = 0;
        group.bench_function(format!("prefixed-api-key/{case}"), |b| {
            b.iter(|| {
                next = (next + 1) % probe_count;
                let key = PrefixedApiKey::from_string(black_box(&pak_probes[next])).unwrap();
                let hash = pak_store.get(key.short_token()).unwrap();
                pak.check_hash(&key, hash)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, single_key_steps, verify_hit_in_a_million);
criterion_main!(benches);
