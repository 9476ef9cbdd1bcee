//! `lumyx-api-types` beside its anchor, `async-openai`'s chat types.
//!
//! ```text
//! cargo bench -p lumyx-benches --bench api_types
//! ```
//!
//! One group, `api_types`, with `lumyx` and `async-openai` side by side:
//! - `deserialize_request`: read a typical chat request of about 1 KB
//!   (developer prompt, a short multi-turn history, sampling options,
//!   streaming with usage, user and metadata) from bytes;
//! - `serialize_response`: write a chat completion (OpenAI's documented
//!   example, with usage details) into a reused buffer.
//!
//! `lumyx/parse_json_request` adds validation (ranges, roles) to the read,
//! which the anchor does not do, to show what a server pays in total.
//!
//! On a shared machine, criterion's one-after-the-other runs pick up other
//! processes' load unevenly. `LUMYX_BENCH_INTERLEAVED=1` first prints an
//! interleaved comparison (alternating batches of both sides, 300 rounds),
//! whose per-round ratio is robust to that:
//!
//! ```text
//! LUMYX_BENCH_INTERLEAVED=1 cargo bench -p lumyx-benches --bench api_types
//! ```

use std::hint::black_box;
use std::time::Instant;

#[path = "interleave.rs"]
mod interleave;

use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use criterion::{Criterion, Throughput, criterion_group};
use lumyx_api_types::{ChatCompletionRequest, ChatCompletionResponse, parse_json};

/// A typical request of about 1 KB.
const REQUEST: &str = r#"{
  "model": "nova_1_1",
  "messages": [
    {"role": "developer", "content": "You are Nova, a concise assistant for a developer platform. Answer in at most three sentences and include a code sample when it helps."},
    {"role": "user", "content": "How do I rotate an API key without downtime?"},
    {"role": "assistant", "content": "Call POST /v1/keys/{id}/rotate with a grace period. Deploy the new key while the old one keeps working, then let the grace period expire."},
    {"role": "user", "content": "What grace period do you recommend for a fleet of 40 services that deploy once a day?"},
    {"role": "assistant", "content": "Use at least 48 hours so that every service picks up the new key in a regular deploy, with a day to spare for a failed rollout."},
    {"role": "user", "content": "And how do I check that nothing still uses the old key before it expires?"}
  ],
  "temperature": 0.7,
  "top_p": 1.0,
  "max_completion_tokens": 512,
  "n": 1,
  "stream": true,
  "stream_options": {"include_usage": true},
  "user": "user-8f14e45f",
  "metadata": {"session": "s-20261127-0042", "client": "dashboard"}
}"#;

/// OpenAI's documented chat completion.
const RESPONSE: &str = r#"{
  "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  "object": "chat.completion",
  "created": 1741570283,
  "model": "gpt-4o-2024-08-06",
  "choices": [
    {
      "index": 0,
      "message": {
        "role": "assistant",
        "content": "The image shows a wooden boardwalk path running through a lush green field or meadow. The sky is bright blue with some scattered clouds, giving the scene a serene and peaceful atmosphere. Trees and shrubs are visible in the background.",
        "refusal": null,
        "annotations": []
      },
      "logprobs": null,
      "finish_reason": "stop"
    }
  ],
  "usage": {
    "prompt_tokens": 1117,
    "completion_tokens": 46,
    "total_tokens": 1163,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {
      "reasoning_tokens": 0,
      "audio_tokens": 0,
      "accepted_prediction_tokens": 0,
      "rejected_prediction_tokens": 0
    }
  },
  "service_tier": "default",
  "system_fingerprint": "fp_fc9f1d7035"
}"#;

fn api_types(c: &mut Criterion) {
    let request = REQUEST.as_bytes();
    // Both sides must read the same request, or the comparison is void.
    let ours: ChatCompletionRequest = serde_json::from_slice(request).unwrap();
    let theirs: CreateChatCompletionRequest = serde_json::from_slice(request).unwrap();
    assert_eq!(ours.messages.len(), theirs.messages.len());

    let our_response: ChatCompletionResponse = serde_json::from_str(RESPONSE).unwrap();
    let their_response: CreateChatCompletionResponse = serde_json::from_str(RESPONSE).unwrap();
    let mut buffer = Vec::with_capacity(4096);

    let mut group = c.benchmark_group("api_types");

    group.throughput(Throughput::Bytes(request.len() as u64));
    group.bench_function("deserialize_request/lumyx", |b| {
        b.iter(|| {
            let value: ChatCompletionRequest = serde_json::from_slice(black_box(request)).unwrap();
            value
        })
    });
    group.bench_function("deserialize_request/async-openai", |b| {
        b.iter(|| {
            let value: CreateChatCompletionRequest =
                serde_json::from_slice(black_box(request)).unwrap();
            value
        })
    });
    group.bench_function("parse_json_request/lumyx", |b| {
        b.iter(|| parse_json::<ChatCompletionRequest>(black_box(request)).unwrap())
    });

    buffer.clear();
    serde_json::to_writer(&mut buffer, &our_response).unwrap();
    group.throughput(Throughput::Bytes(buffer.len() as u64));
    group.bench_function("serialize_response/lumyx", |b| {
        b.iter(|| {
            buffer.clear();
            serde_json::to_writer(&mut buffer, black_box(&our_response)).unwrap();
            buffer.len()
        })
    });
    group.bench_function("serialize_response/async-openai", |b| {
        b.iter(|| {
            buffer.clear();
            serde_json::to_writer(&mut buffer, black_box(&their_response)).unwrap();
            buffer.len()
        })
    });

    group.finish();
}

/// Times alternating batches of `ours` and `theirs` and prints the median
/// time of each and the median of the per-round ratios.
fn interleave(name: &str, mut ours: impl FnMut(), mut theirs: impl FnMut()) {
    const ROUNDS: usize = 300;
    const BATCH: u32 = 2000;
    fn time(f: &mut dyn FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..BATCH {
            f();
        }
        start.elapsed().as_secs_f64() * 1e9 / f64::from(BATCH)
    }
    let result = interleave::interleave(ROUNDS, || time(&mut ours), || time(&mut theirs));
    println!(
        "interleaved {name}: lumyx {:.0} ns, async-openai {:.0} ns, ratio {:.3}",
        result.ours_ns, result.theirs_ns, result.ratio
    );
}

fn interleaved() {
    let request = REQUEST.as_bytes();
    let our_response: ChatCompletionResponse = serde_json::from_str(RESPONSE).unwrap();
    let their_response: CreateChatCompletionResponse = serde_json::from_str(RESPONSE).unwrap();
    let (mut ours, mut theirs) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    interleave(
        "deserialize_request",
        || {
            let value: ChatCompletionRequest = serde_json::from_slice(black_box(request)).unwrap();
            black_box(value);
        },
        || {
            let value: CreateChatCompletionRequest =
                serde_json::from_slice(black_box(request)).unwrap();
            black_box(value);
        },
    );
    interleave(
        "serialize_response",
        || {
            ours.clear();
            serde_json::to_writer(&mut ours, black_box(&our_response)).unwrap();
            black_box(ours.len());
        },
        || {
            theirs.clear();
            serde_json::to_writer(&mut theirs, black_box(&their_response)).unwrap();
            black_box(theirs.len());
        },
    );
}

criterion_group!(benches, api_types);

fn main() {
    if std::env::var_os("LUMYX_BENCH_INTERLEAVED").is_some() {
        interleaved();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
