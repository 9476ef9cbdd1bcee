//! The secret scanner of `lumyx-keys` beside its anchor, the `regex` crate.
//!
//! ```text
//! cargo bench -p lumyx-benches --bench scan
//! ```
//!
//! One group, `scan`, over 4 MB of generated source-like text with 46 keys
//! (the density of the README's 100 MB file), in bytes per second:
//! - `lumyx/in_memory`: [`Scanner::scan`] of the text as a `&str`;
//! - `lumyx/streaming`: [`Scanner::scan_reader`] of the same bytes through
//!   its 256 KiB buffer, copies included;
//! - `regex/find_iter`: `nova_[0-9a-f]{59}` with `regex`'s `find_iter`,
//!   which checks no word boundary and no checksum and counts no lines.
//!
//! The README's comparison with ripgrep and GNU grep uses a 100 MB file with
//! 1,142 keys made by the same generator (keys from the OS CSPRNG, everything
//! else from a fixed seed):
//!
//! ```text
//! LUMYX_SCAN_CORPUS=/tmp/corpus.txt cargo bench -p lumyx-benches --bench scan
//! cargo build --release --example scan
//! hyperfine --warmup 2 --runs 5 \
//!     'target/release/examples/scan /tmp/corpus.txt' \
//!     "rg -c 'nova_[0-9a-f]{59}' /tmp/corpus.txt" \
//!     "grep -cE 'nova_[0-9a-f]{59}' /tmp/corpus.txt"
//! ```

use std::fs::File;
use std::hint::black_box;
use std::io::{self, BufWriter, Write};

use criterion::{Criterion, Throughput, criterion_group};
use lumyx_keys::{ApiKey, Scanner};
use regex::Regex;

/// The README's file: 100 MB with 1,142 keys.
const CORPUS_LEN: usize = 100_000_000;
const CORPUS_KEYS: usize = 1142;
/// The benchmark's text: 4 MB at the same density.
const TEXT_LEN: usize = 4_000_000;

/// Source, config, logs and data, as a repository or a log holds them; some
/// name `nova_` or hold long hex without being keys.
const LINES: &[&str] = &[
    "use std::collections::HashMap;",
    "    let limit = config.rate_limit_per_minute.unwrap_or(60);",
    "    if response.status() == 429 {",
    "        return Err(Error::RateLimited { retry_after });",
    "    }",
    "}",
    "",
    "fn handle(request: Request, state: &AppState) -> Result<Response, Error> {",
    "    // TODO: retry once when the upstream times out, then give up.",
    "    let body = serde_json::to_vec(&payload)?;",
    "    tracing::debug!(target: \"lumyx::gate\", key_id = %record.id, \"admitted\");",
    "import os",
    "nova_api_key = os.environ.get(\"NOVA_API_KEY\")",
    "client = Nova(base_url=\"https://api.lumyx.ai/v1\", timeout=30)",
    "    response = client.chat.completions.create(model=\"nova-large\", messages=messages)",
    "    for choice in response.choices:",
    "        print(choice.message.content)",
    "export NOVA_API_URL=https://api.lumyx.ai/v1",
    "NOVA_LOG_LEVEL=info",
    "  {\"id\": \"conv_8f2a9c1e\", \"model\": \"nova-large\", \"created\": 1764201600},",
    "  \"usage\": {\"prompt_tokens\": 1532, \"completion_tokens\": 211, \"total_tokens\": 1743},",
    "2026-11-27T10:14:03.512Z INFO lumyx::server request_id=7c0b4f1e status=200 ms=41",
    "2026-11-27T10:14:03.977Z WARN lumyx::gate key_id=key_4e58d9f4757ccfc3 status=429",
    "sha256: 4e58d9f4757ccfc351c2d36db31a68179b00ad0b87f4fb73cdb9f775120d5e01",
    "commit 39761b3a1c0f7d2e9b4a5c6d7e8f90a1b2c3d4e5",
    "# nova_team: rotate the staging credentials before the release.",
    "// Größe des Puffers: 256 KiB — passt in den L2-Cache.",
    "    assert_eq!(hint.to_string(), \"nova_0123…6dce\");",
    "SELECT id, owner, created_at FROM keys WHERE revoked_at IS NULL ORDER BY created_at;",
    "<a href=\"/docs/keys#rotation\">Rotate a key</a> before it expires.",
    "    - name: Run the tests",
    "      run: cargo test --workspace --all-features",
];

/// How a key appears when it leaks.
const KEY_LINES: &[(&str, &str)] = &[
    ("NOVA_API_KEY=", ""),
    ("    api_key = \"", "\""),
    ("Authorization: Bearer ", ""),
    ("  \"apiKey\": \"", "\","),
];

/// splitmix64: a fixed, seedable sequence, so the text is the same every run.
struct Sequence(u64);

impl Sequence {
    fn below(&mut self, bound: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % bound as u64) as usize
    }
}

/// Writes about `len` bytes of lines from [`LINES`], with `keys` fresh keys
/// on lines of their own, one at a random place in each `len / keys` bytes;
/// returns how many bytes it wrote.
fn write_text(out: &mut impl Write, len: usize, keys: usize) -> io::Result<usize> {
    let mut sequence = Sequence(0x2026_1127);
    let stretch = len / keys;
    let mut written = 0;
    let mut keys_written = 0;
    let mut next_key_at = sequence.below(stretch);
    while written < len || keys_written < keys {
        let line = if keys_written < keys && written >= next_key_at {
            let (before, after) = KEY_LINES[sequence.below(KEY_LINES.len())];
            let key = ApiKey::generate().expect("the OS CSPRNG works");
            keys_written += 1;
            next_key_at = keys_written * stretch + sequence.below(stretch);
            format!("{before}{}{after}", key.expose_secret())
        } else {
            LINES[sequence.below(LINES.len())].to_owned()
        };
        writeln!(out, "{line}")?;
        written += line.len() + 1;
    }
    Ok(written)
}

fn scan(c: &mut Criterion) {
    let mut text = Vec::new();
    write_text(&mut text, TEXT_LEN, TEXT_LEN * CORPUS_KEYS / CORPUS_LEN).unwrap();
    let text = String::from_utf8(text).unwrap();
    let scanner = Scanner::default();
    let pattern = Regex::new("nova_[0-9a-f]{59}").unwrap();
    let keys = scanner.scan(&text).count();
    assert_eq!(keys, TEXT_LEN * CORPUS_KEYS / CORPUS_LEN);
    assert_eq!(pattern.find_iter(&text).count(), keys);

    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("lumyx/in_memory", |b| {
        b.iter(|| {
            scanner
                .scan(black_box(&text))
                .map(|finding| finding.line)
                .max()
        })
    });
    group.bench_function("lumyx/streaming", |b| {
        b.iter(|| {
            let findings = scanner.scan_reader(black_box(text.as_bytes()));
            findings.map(|finding| finding.unwrap().line).max()
        })
    });
    group.bench_function("regex/find_iter", |b| {
        b.iter(|| pattern.find_iter(black_box(&text)).count())
    });
    group.finish();
}

criterion_group!(benches, scan);

fn main() {
    if let Some(path) = std::env::var_os("LUMYX_SCAN_CORPUS") {
        let mut out = BufWriter::new(File::create(&path).expect("the corpus file can be created"));
        let written = write_text(&mut out, CORPUS_LEN, CORPUS_KEYS).expect("the corpus is written");
        out.flush().expect("the corpus is written");
        eprintln!(
            "wrote {written} bytes with {CORPUS_KEYS} keys to {}",
            path.display()
        );
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
