//! Bytes → streaming scanner. Any bytes, read through a small buffer in
//! arbitrary chunks with interruptions, must give the findings of the
//! in-memory scan of their lossy text; nothing may panic.
//!
//! The first byte sets the buffer length, the next 8 the read pattern, and in
//! the rest every `\0` stands for a valid key, so that the fuzzer places keys
//! (next to each other, glued to words, across refills) without having to
//! find a checksum.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use lumyx_keys::{ApiKeyRef, KEY_LEN, MIN_SCAN_BUFFER_LEN, Scanner};

const KEY: &[u8] = b"nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

/// Hands out `input` in chunks as long as the bytes of `pattern`, in turn; a
/// 0 fails with `Interrupted` (once: the next read goes on).
struct Chunks<'a> {
    input: &'a [u8],
    pattern: &'a [u8],
    reads: usize,
    interrupted: bool,
}

impl Read for Chunks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let chunk = usize::from(self.pattern[self.reads % self.pattern.len()]);
        self.reads += 1;
        if chunk == 0 && !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let len = chunk.max(1).min(buf.len()).min(self.input.len());
        buf[..len].copy_from_slice(&self.input[..len]);
        self.input = &self.input[len..];
        Ok(len)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&buffer, rest)) = data.split_first() else {
        return;
    };
    let (pattern, text) = rest.split_at(rest.len().min(8));
    let pattern = if pattern.is_empty() { &[255] } else { pattern };
    let mut input = Vec::with_capacity(text.len());
    for &byte in text {
        match byte {
            0 => input.extend_from_slice(KEY),
            byte => input.push(byte),
        }
    }

    let reader = Chunks {
        input: &input,
        pattern,
        reads: 0,
        interrupted: false,
    };
    let buffer_len = MIN_SCAN_BUFFER_LEN + usize::from(buffer);
    let streamed: Vec<_> = Scanner::default()
        .scan_reader_with_buffer(reader, buffer_len)
        .collect::<io::Result<_>>()
        .expect("the reader only fails with Interrupted");

    let lossy = String::from_utf8_lossy(&input);
    let in_memory: Vec<_> = Scanner::default().scan(&lossy).collect();
    assert_eq!(streamed.len(), in_memory.len());
    for (streamed, in_memory) in streamed.iter().zip(&in_memory) {
        assert_eq!(
            (streamed.line, streamed.column, streamed.hint),
            (in_memory.line, in_memory.column, in_memory.hint)
        );
        let key = std::str::from_utf8(&input[streamed.offset..streamed.offset + KEY_LEN])
            .expect("a key is ASCII");
        assert_eq!(ApiKeyRef::parse(key).unwrap().hint(), streamed.hint);
    }
    if std::str::from_utf8(&input).is_ok() {
        assert_eq!(streamed, in_memory);
    }
});
