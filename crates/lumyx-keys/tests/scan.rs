//! The secret scanner of SPEC §1.5, in memory and streaming.
//!
//! The streaming scan is checked against the in-memory one on generated
//! texts, with small buffers and short reads so that keys straddle refills.

use std::alloc::System;
use std::io::{self, Read};

use lumyx_keys::{
    ApiKey, Finding, KEY_LEN, KeyFormat, MIN_SCAN_BUFFER_LEN, SCAN_BUFFER_LEN, Scanner,
};
use proptest::prelude::*;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

// Counts allocations, for the memory bound of the streaming scan.
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

fn positions(text: &str) -> Vec<(usize, usize, usize)> {
    Scanner::default()
        .scan(text)
        .map(|finding| (finding.offset, finding.line, finding.column))
        .collect()
}

#[test]
fn finds_keys_between_non_word_characters() {
    for (text, offset) in [
        (KEY.to_owned(), 0),
        (format!("export NOVA_AI_API_KEY={KEY}"), 23),
        (format!("\"{KEY}\","), 1),
        (format!("url?key={KEY}&x=1"), 8),
        (format!("é{KEY}é"), 2),
    ] {
        assert_eq!(
            positions(&text),
            vec![(offset, 1, text[..offset].chars().count() + 1)],
            "{text}"
        );
    }
}

#[test]
fn ignores_keys_glued_to_word_characters() {
    for text in [
        format!("x{KEY}"),
        format!("{KEY}0"),
        format!("_{KEY}"),
        format!("{KEY}_"),
        format!("9{KEY}a"),
    ] {
        assert!(positions(&text).is_empty(), "{text}");
    }
}

#[test]
fn reports_only_candidates_whose_checksum_holds() {
    let wrong = KEY.replace("ece76dce", "ece76dcf");
    let upper = KEY.to_uppercase().replacen("NOVA_", "nova_", 1);
    let short = &KEY[..63];
    let text = format!("{wrong}\n{upper}\n{short}\n{KEY}\n");
    assert_eq!(positions(&text), vec![(3 * 65 - 1, 4, 1)]);
}

#[test]
fn counts_lines_and_columns_and_finds_every_key() {
    let second = ApiKey::generate().unwrap();
    let text = format!("a\n  {KEY} {}\n\tlast: {KEY}", second.expose_secret());
    let findings: Vec<_> = Scanner::default().scan(&text).collect();
    let places: Vec<_> = findings.iter().map(|f| (f.line, f.column)).collect();
    assert_eq!(places, vec![(2, 3), (2, 68), (3, 8)]);
    assert_eq!(findings[1].hint, second.hint());
    for finding in &findings {
        assert_eq!(&text[finding.offset..finding.offset + 5], "nova_");
    }
}

#[test]
fn overlapping_prefixes_do_not_hide_a_key() {
    let text = format!("nova_nova_{KEY}");
    // `nova_nova_…` is glued to the key by `_`, so nothing is reported ...
    assert!(positions(&text).is_empty());
    // ... but a prefix that fails to be a key does not swallow the one after it.
    let text = format!("nova_ {KEY}");
    assert_eq!(positions(&text), vec![(6, 1, 7)]);
}

#[test]
fn scans_for_a_custom_format() {
    let format = KeyFormat::new("acme_").unwrap();
    let key = format.generate().unwrap();
    let text = format!("{KEY} {}", key.expose_secret());
    let findings: Vec<_> = Scanner::new(format).scan(&text).collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].offset, 65);
    assert_eq!(findings[0].hint, key.hint());
}

// ---------------------------------------------------------------------------
// Streaming.

/// A reader that hands out `input` in chunks of the given lengths, in turn,
/// and fails with `Interrupted` on every `interrupt_every`-th read (never
/// when it is 0).
struct ChunkedReader<'a> {
    input: &'a [u8],
    chunks: Vec<usize>,
    reads: usize,
    interrupt_every: usize,
}

impl<'a> ChunkedReader<'a> {
    fn new(input: &'a [u8], chunks: Vec<usize>, interrupt_every: usize) -> Self {
        assert!(chunks.iter().all(|&len| len > 0));
        assert_ne!(interrupt_every, 1, "every read would be interrupted");
        ChunkedReader {
            input,
            chunks,
            reads: 0,
            interrupt_every,
        }
    }
}

impl Read for ChunkedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reads += 1;
        if self.interrupt_every > 0 && self.reads.is_multiple_of(self.interrupt_every) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let chunk = self.chunks[self.reads % self.chunks.len()];
        let len = chunk.min(buf.len()).min(self.input.len());
        buf[..len].copy_from_slice(&self.input[..len]);
        self.input = &self.input[len..];
        Ok(len)
    }
}

fn stream(reader: impl Read, buffer_len: usize) -> Vec<Finding> {
    Scanner::default()
        .scan_reader_with_buffer(reader, buffer_len)
        .collect::<io::Result<_>>()
        .expect("the reader does not fail")
}

/// The streaming scan of `input` agrees with the in-memory scan of its lossy
/// text: same keys, lines, columns and hints, and offsets that point at the
/// key in `input` (the same offsets when `input` is UTF-8).
fn assert_stream_matches_memory(input: &[u8], streamed: &[Finding]) {
    let text = String::from_utf8_lossy(input);
    let in_memory: Vec<_> = Scanner::default().scan(&text).collect();
    let places = |findings: &[Finding]| {
        findings
            .iter()
            .map(|f| (f.line, f.column, f.hint))
            .collect::<Vec<_>>()
    };
    assert_eq!(places(streamed), places(&in_memory));
    if std::str::from_utf8(input).is_ok() {
        assert_eq!(streamed, in_memory.as_slice());
    }
    for finding in streamed {
        let key = std::str::from_utf8(&input[finding.offset..finding.offset + KEY_LEN]).unwrap();
        assert_eq!(ApiKey::parse(key).unwrap().hint(), finding.hint);
    }
}

#[test]
fn a_key_straddling_any_refill_is_found_once() {
    for filler in [" ", "x", "é", "日", "\r\n", "\u{fffd}", "\u{1F600}"] {
        for before in 0..3 * MIN_SCAN_BUFFER_LEN {
            // The middle key is glued to the `_` after it.
            let input = format!("{}{KEY}\t{KEY}_\n{KEY}", filler.repeat(before));
            let streamed = stream(input.as_bytes(), MIN_SCAN_BUFFER_LEN);
            let glued_to_filler = filler == "x" && before > 0;
            let expected = if glued_to_filler { 1 } else { 2 };
            assert_eq!(streamed.len(), expected, "{filler:?} x {before}");
            assert_stream_matches_memory(input.as_bytes(), &streamed);
        }
    }
}

#[test]
fn the_same_findings_for_every_buffer_length() {
    let input = format!("a\n  {KEY} é\r\n{KEY}\n\tlast: {KEY}\n");
    let expected = stream(input.as_bytes(), SCAN_BUFFER_LEN);
    assert_eq!(expected.len(), 3);
    assert_stream_matches_memory(input.as_bytes(), &expected);
    for buffer_len in 0..=input.len() + 1 {
        assert_eq!(
            stream(input.as_bytes(), buffer_len),
            expected,
            "{buffer_len}"
        );
    }
}

#[test]
fn one_byte_reads_and_interruptions_change_nothing() {
    let input = format!("x = {KEY}\r\ny = \"{KEY}\"\n{}", &KEY[..40]);
    let expected = stream(input.as_bytes(), SCAN_BUFFER_LEN);
    assert_eq!(expected.len(), 2);
    for interrupt_every in [0, 2, 3] {
        let reader = ChunkedReader::new(input.as_bytes(), vec![1], interrupt_every);
        assert_eq!(stream(reader, MIN_SCAN_BUFFER_LEN), expected);
    }
}

#[test]
fn lines_and_columns_count_crlf_multibyte_and_invalid_utf8() {
    let mut input = Vec::new();
    input.extend_from_slice(b"one\r\ntwo \xE2\x82 \xF0\x9F\x98\x80 \xC3\xA9\xFF");
    let key_offset = input.len() + 1;
    input.push(b' ');
    input.extend_from_slice(KEY.as_bytes());
    input.extend_from_slice(b"\r\n\x80\x80\x80\x80\x80");
    input.extend_from_slice(KEY.as_bytes());
    // `two ` 4, the cut-off `€` 1, ` ` 1, `😀` 1, ` ` 1, `é` 1, `\xFF` 1, ` ` 1:
    // 11 characters, as `String::from_utf8_lossy` counts them.
    let expected = vec![(key_offset, 2, 12), (key_offset + KEY_LEN + 7, 3, 6)];
    for buffer_len in [
        MIN_SCAN_BUFFER_LEN,
        MIN_SCAN_BUFFER_LEN + 3,
        SCAN_BUFFER_LEN,
    ] {
        let reader = ChunkedReader::new(&input, vec![1, 7, 2], 0);
        let streamed = stream(reader, buffer_len);
        let places: Vec<_> = streamed
            .iter()
            .map(|f| (f.offset, f.line, f.column))
            .collect();
        assert_eq!(places, expected, "{buffer_len}");
        assert_stream_matches_memory(&input, &streamed);
    }
}

#[test]
fn streaming_keeps_the_word_boundaries() {
    let mut texts = vec![
        format!("{KEY}{KEY}"),
        format!("{KEY} {KEY}"),
        format!("x{KEY}"),
        format!("{KEY}_"),
        format!("nova_nova_{KEY}"),
        format!("nova_ {KEY}"),
        format!("{KEY}\u{e9}{KEY}"),
    ];
    texts.extend((0..KEY_LEN).map(|cut| format!("{KEY} {}", &KEY[..cut])));
    for text in &texts {
        for chunk in [1, 5, 64, 65, 200] {
            let reader = ChunkedReader::new(text.as_bytes(), vec![chunk], 0);
            let streamed = stream(reader, MIN_SCAN_BUFFER_LEN);
            assert_stream_matches_memory(text.as_bytes(), &streamed);
        }
    }
    let count = |text: &str| stream(text.as_bytes(), MIN_SCAN_BUFFER_LEN).len();
    assert_eq!(count(&texts[0]), 0, "adjacent keys touch each other");
    assert_eq!(count(&texts[1]), 2);
    assert_eq!(count(&texts[2]) + count(&texts[3]) + count(&texts[4]), 0);
    assert_eq!(count(&texts[5]) + count(&texts[6]), 3);
    assert_eq!(count(&texts[7 + 63]), 1, "input ending mid-key");
    assert_eq!(count(""), 0);
    assert_eq!(count(&KEY[..63]), 0);
}

#[test]
fn a_read_error_is_yielded_once_and_ends_the_scan() {
    let input = format!("{KEY}\n{KEY}");
    let failing = input.as_bytes().chain(FailingReader);
    let mut findings = Scanner::default().scan_reader_with_buffer(failing, MIN_SCAN_BUFFER_LEN);
    assert_eq!(findings.next().unwrap().unwrap().offset, 0);
    // The second key's right boundary was never read: it is not reported.
    let err = findings.next().unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert!(findings.next().is_none());
    assert!(findings.next().is_none());
}

struct FailingReader;

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn the_streaming_scan_never_shows_its_input() {
    let input = format!("secret: {KEY}\n");
    let mut findings = Scanner::default().scan_reader(io::Cursor::new(input.clone()));
    let before = format!("{findings:?}");
    assert!(findings.next().is_some());
    for shown in [before, format!("{findings:?}")] {
        assert!(!shown.contains(&KEY[10..40]), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}

#[test]
fn streams_a_custom_format() {
    let format = KeyFormat::new("acme_").unwrap();
    let key = format.generate().unwrap();
    let input = format!("{KEY} acme_{}", key.expose_secret());
    let input = format!("{input} {}", key.expose_secret());
    let findings: Vec<_> = Scanner::new(format)
        .scan_reader_with_buffer(input.as_bytes(), MIN_SCAN_BUFFER_LEN)
        .collect::<io::Result<_>>()
        .unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].offset, 65 + 5 + KEY_LEN + 1);
    assert_eq!(findings[0].hint, key.hint());
}

/// Pieces of generated text: words, line ends, multibyte characters, invalid
/// UTF-8, keys, near-keys and bare prefixes, glued together at random.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    let other = ApiKey::generate().unwrap().expose_secret().to_owned();
    let wrong = KEY.replace("ece76dce", "ece76dcf");
    prop_oneof![
        "[a-z_0-9 ]{0,12}".prop_map(String::into_bytes),
        prop::sample::select(vec![
            "\n",
            "\r\n",
            " ",
            "\t",
            "é",
            "日本",
            "\u{1F600}",
            "nova_",
            "="
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        prop::collection::vec(0x80u8..=0xFF, 1..5),
        prop::sample::select(vec![KEY.to_owned(), other, wrong, KEY.to_uppercase()])
            .prop_map(String::into_bytes),
        (0..KEY_LEN).prop_map(|cut| KEY.as_bytes()[..cut].to_vec()),
    ]
}

proptest! {
    #[test]
    fn streaming_equals_in_memory(
        pieces in prop::collection::vec(piece(), 0..80),
        buffer_len in MIN_SCAN_BUFFER_LEN..400,
        chunks in prop::collection::vec(1usize..300, 1..6),
        interrupt_every in prop_oneof![Just(0usize), 2usize..5],
    ) {
        let input = pieces.concat();
        let reader = ChunkedReader::new(&input, chunks, interrupt_every);
        let streamed = stream(reader, buffer_len);
        assert_stream_matches_memory(&input, &streamed);
    }
}

/// Generates `blocks` blocks of source-like text on the fly, each with one
/// key on its last line, and records the longest read it was asked for and
/// the most heap the process held beyond what it held at the start.
struct GeneratedText<'r> {
    block: Vec<u8>,
    blocks_left: usize,
    at: usize,
    region: &'r Region<'static, System>,
    largest_read: usize,
    peak_heap: isize,
}

impl Read for GeneratedText<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let change = self.region.change();
        let heap = change.bytes_allocated as isize - change.bytes_deallocated as isize;
        self.peak_heap = self.peak_heap.max(heap);
        self.largest_read = self.largest_read.max(buf.len());
        if self.blocks_left == 0 {
            return Ok(0);
        }
        let len = buf.len().min(self.block.len() - self.at);
        buf[..len].copy_from_slice(&self.block[self.at..self.at + len]);
        self.at += len;
        if self.at == self.block.len() {
            self.at = 0;
            self.blocks_left -= 1;
        }
        Ok(len)
    }
}

#[test]
fn a_large_stream_takes_the_fixed_buffer_only() {
    const LINES_PER_BLOCK: usize = 100;
    let mut block = "    let limit = config.rate_limit_per_minute.unwrap_or(60); // é\n"
        .repeat(LINES_PER_BLOCK - 1)
        .into_bytes();
    let key_offset_in_block = block.len() + "NOVA_API_KEY=".len();
    block.extend_from_slice(format!("NOVA_API_KEY={KEY}\n").as_bytes());
    let blocks = (64 << 20) / block.len();

    let region = Region::new(GLOBAL);
    let mut generated = GeneratedText {
        block: block.clone(),
        blocks_left: blocks,
        at: 0,
        region: &region,
        largest_read: 0,
        peak_heap: 0,
    };
    let mut found = 0;
    for finding in Scanner::default().scan_reader(&mut generated) {
        let finding = finding.unwrap();
        assert_eq!(finding.offset, found * block.len() + key_offset_in_block);
        assert_eq!(finding.line, (found + 1) * LINES_PER_BLOCK);
        assert_eq!(finding.column, "NOVA_API_KEY=".len() + 1);
        found += 1;
    }
    assert_eq!(found, blocks);
    assert!(blocks * block.len() >= 63 << 20);
    assert_eq!(generated.largest_read, SCAN_BUFFER_LEN);
    // The buffer and the generator's block, with room for what tests running
    // beside this one hold; far from the 64 MiB read.
    assert!(
        generated.peak_heap < (4 << 20),
        "held {} bytes",
        generated.peak_heap
    );

    // The count does see the heap: a copy of the input would show.
    let whole: Vec<u8> = block.repeat(blocks);
    let change = region.change();
    assert!(change.bytes_allocated - change.bytes_deallocated >= whole.len());
}
