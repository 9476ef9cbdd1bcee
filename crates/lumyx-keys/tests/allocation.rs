//! SPEC §1.2: parsing a string allocates nothing, whether it succeeds or not,
//! and neither do the digest, id and hint of a parsed key.
//!
//! This file holds one test so that nothing else allocates while it counts.

use std::alloc::System;

use lumyx_keys::{ApiKeyRef, KeyFormat};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

#[test]
fn parsing_and_hashing_allocate_nothing() {
    let custom = KeyFormat::new("acme_").unwrap();
    let inputs = [
        KEY.to_owned(),
        KEY[..40].to_owned(),
        KEY.replacen("nova_", "nava_", 1),
        KEY.replace('a', "A"),
        KEY.replace("6dce", "6dcf"),
        String::new(),
        "é".repeat(32),
    ];
    let region = Region::new(GLOBAL);
    let mut accepted = 0;
    for input in &inputs {
        if let Ok(key) = ApiKeyRef::parse(input) {
            std::hint::black_box((key.digest(), key.id(), key.hint()));
            accepted += 1;
        }
        let _ = std::hint::black_box(custom.parse(input));
    }
    let change = region.change();
    assert_eq!(accepted, 1);
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");

    // The counter does count: the same region sees an owned key's box.
    let region = Region::new(GLOBAL);
    let owned = ApiKeyRef::parse(KEY).unwrap().to_owned_key();
    assert!(region.change().allocations >= 1);
    drop(owned);
}
