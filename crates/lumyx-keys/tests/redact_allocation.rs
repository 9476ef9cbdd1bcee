//! Redacting text without a key-shaped part allocates nothing: error
//! messages and logs pass every client text through `redact`.
//!
//! This file holds one test so that nothing else allocates while it counts.

use std::alloc::System;
use std::borrow::Cow;

use lumyx_keys::redact;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn ordinary_text_is_borrowed_without_allocating() {
    let texts = [
        "gpt-4o-mini-2024-07-18",
        "meta-llama/Llama-3.1-70B-Instruct",
        "550e8400-e29b-41d4-a716-446655440000",
        "/v1/conversations/conv_0123456789abcdef0123456789abcde",
        "/v1/keys/key_4e58d9f4757ccfc3/usage",
        "The model answered in a sentence of ordinary words.",
        "ünïcödé ✓ 0123456-89abcdef0123456789abcdef0123",
    ];
    let region = Region::new(GLOBAL);
    for text in texts {
        let redacted = std::hint::black_box(redact(text));
        assert!(matches!(redacted, Cow::Borrowed(t) if t == text));
    }
    let change = region.change();
    assert_eq!(change.allocations, 0, "{change:?}");
    assert_eq!(change.reallocations, 0, "{change:?}");

    // The counter does count: a key is replaced in a new string.
    let region = Region::new(GLOBAL);
    let key = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
    assert_eq!(redact(key), "nova_0123…6dce");
    assert!(region.change().allocations >= 1);
}
