//! The secret scanner: finds real keys in any text or stream.
//!
//! A candidate is the prefix followed by the format's hex digits, standing
//! between non-word characters (word characters are ASCII letters, digits
//! and `_`; the start and end of the input count as non-word). Only
//! candidates whose checksum holds are reported, so hex-looking noise is not,
//! and a finding carries the hint, never the key.
//!
//! Two entry points share one search (`KeySearch`) and one line count
//! (`Position`): [`Scanner::scan`] over a `&str` in memory, and
//! [`Scanner::scan_reader`] over any [`Read`], through a buffer of fixed size
//! that is refilled in place, so an input of any size takes the same memory.
//!
//! Lines count `\n` bytes. Columns count characters from the line start as
//! [`String::from_utf8_lossy`] would decode the input: each maximal invalid
//! UTF-8 sequence is one character (U+FFFD). On a `&str` that is simply its
//! characters. Every key byte is ASCII and no ASCII byte is ever part of an
//! invalid sequence, so a stream and its lossy text hold the same keys at the
//! same lines and columns; only byte offsets differ, since a stream reports
//! offsets in its own bytes.

use std::fmt;
use std::io::{self, Read};

use memchr::memmem::Finder;
use zeroize::Zeroize;

use crate::format::KEY_LEN;
use crate::{KeyFormat, KeyHint};

/// The size of the buffer of [`Scanner::scan_reader`]: 256 KiB, small enough
/// to stay in a core's L2 cache while it is read, searched and counted.
pub const SCAN_BUFFER_LEN: usize = 256 * 1024;

/// The smallest buffer [`Scanner::scan_reader_with_buffer`] uses: 128 bytes.
///
/// A refill keeps at most 68 bytes of the previous window (a key that may
/// continue, the byte before it, and the start of a UTF-8 sequence), so every
/// refill still reads new input.
pub const MIN_SCAN_BUFFER_LEN: usize = 2 * KEY_LEN;

/// One key found in a text or a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Byte offset of the key's first character in the input.
    pub offset: usize,
    /// Line of the key, counting from 1: the number of `\n` before it, plus 1.
    pub line: usize,
    /// Column of the key's first character, counting characters from 1 (see
    /// [`Scanner::scan_reader`] for input that is not UTF-8).
    pub column: usize,
    /// The key's hint.
    pub hint: KeyHint,
}

/// Finds keys of a format in texts and streams.
///
/// ```
/// use lumyx_keys::Scanner;
///
/// let text = "token = \"nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce\"\n\
///             fake  = nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dcf";
/// let findings: Vec<_> = Scanner::default().scan(text).collect();
/// assert_eq!(findings.len(), 1); // the second one's checksum does not hold
/// assert_eq!((findings[0].line, findings[0].column), (1, 10));
/// assert_eq!(findings[0].hint.to_string(), "nova_0123…6dce");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scanner {
    format: KeyFormat,
}

impl Scanner {
    /// A scanner for keys of `format`.
    pub fn new(format: KeyFormat) -> Scanner {
        Scanner { format }
    }

    /// The keys in `text`, in order.
    pub fn scan<'a>(&self, text: &'a str) -> Findings<'a> {
        Findings {
            search: KeySearch::new(self.format),
            text,
            search_from: 0,
            position: Position::START,
        }
    }

    /// The keys in everything `reader` yields, in order, read through a
    /// buffer of [`SCAN_BUFFER_LEN`] bytes: a file of any size or standard
    /// input takes the same memory.
    ///
    /// Offsets count the reader's bytes. The input need not be UTF-8: lines
    /// and columns are those of [`Scanner::scan`] over
    /// [`String::from_utf8_lossy`] of the whole input, where each maximal
    /// invalid sequence counts as one character. The reader is read directly,
    /// so it needs no [`BufReader`](std::io::BufReader); reads that fail with
    /// [`io::ErrorKind::Interrupted`] are retried, and any other error is
    /// yielded once and ends the iteration.
    ///
    /// ```
    /// use lumyx_keys::Scanner;
    ///
    /// // Any `Read`: a file, standard input, a socket, or bytes in memory.
    /// // `\xff` is not UTF-8; it counts as one character, as U+FFFD would.
    /// let input: &[u8] = b"# config\n\xff key=nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce\n";
    /// for finding in Scanner::default().scan_reader(input) {
    ///     let finding = finding?;
    ///     assert_eq!((finding.offset, finding.line, finding.column), (15, 2, 7));
    ///     assert_eq!(finding.hint.to_string(), "nova_0123…6dce");
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn scan_reader<R: Read>(&self, reader: R) -> ReaderFindings<R> {
        self.scan_reader_with_buffer(reader, SCAN_BUFFER_LEN)
    }

    /// [`Scanner::scan_reader`] with a buffer of `buffer_len` bytes, at least
    /// [`MIN_SCAN_BUFFER_LEN`] (a smaller length is raised to it).
    ///
    /// The findings are the same whatever the buffer; a larger one means
    /// fewer reads, a smaller one less memory.
    ///
    /// ```
    /// use lumyx_keys::{MIN_SCAN_BUFFER_LEN, Scanner};
    ///
    /// let input = format!("{}nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce", " ".repeat(100));
    /// let findings = Scanner::default()
    ///     .scan_reader_with_buffer(input.as_bytes(), MIN_SCAN_BUFFER_LEN)
    ///     .collect::<Result<Vec<_>, _>>()?;
    /// assert_eq!(findings[0].offset, 100);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn scan_reader_with_buffer<R: Read>(
        &self,
        reader: R,
        buffer_len: usize,
    ) -> ReaderFindings<R> {
        ReaderFindings {
            search: KeySearch::new(self.format),
            reader,
            buffer: vec![0; buffer_len.max(MIN_SCAN_BUFFER_LEN)].into_boxed_slice(),
            filled: 0,
            window_offset: 0,
            search_from: 0,
            position: Position::START,
            state: ReadState::Reading,
        }
    }
}

/// The search both scans share: where the prefix is, and whether a key of
/// the format stands there.
#[derive(Debug, Clone)]
struct KeySearch {
    format: KeyFormat,
    /// Finds the prefix with SIMD; built once per scan.
    prefix: Finder<'static>,
}

/// What [`KeySearch::next_key`] found in a window of the input.
enum Next {
    /// A key starts at this index of the window.
    Key { start: usize, hint: KeyHint },
    /// No key starts before `resume_at`; one may start there once the
    /// window holds more input.
    NeedMore { resume_at: usize },
}

impl KeySearch {
    fn new(format: KeyFormat) -> KeySearch {
        KeySearch {
            format,
            prefix: Finder::new(format.prefix().as_bytes()).into_owned(),
        }
    }

    /// The first key in `window` that starts at or after `from`.
    ///
    /// `window` is either the start of the input or holds the byte before
    /// `from`, so a candidate at index 0 is at the start of the input.
    /// Unless `at_end` says the input ends with the window, a candidate is
    /// only judged once the byte after it, its right boundary, is in.
    fn next_key(&self, window: &[u8], mut from: usize, at_end: bool) -> Next {
        while let Some(found) = self.prefix.find(&window[from..]) {
            let start = from + found;
            if !at_end && start + KEY_LEN >= window.len() {
                return Next::NeedMore { resume_at: start };
            }
            if let Some(hint) = self.key_at(window, start) {
                return Next::Key { start, hint };
            }
            from = start + 1;
        }
        // A prefix cut off at the end of the window may still be completed.
        let partial_prefix = self.format.prefix().len() - 1;
        Next::NeedMore {
            resume_at: window.len().saturating_sub(partial_prefix).max(from),
        }
    }

    /// The hint of the key at `start`, if one of the format stands there
    /// between non-word characters.
    fn key_at(&self, window: &[u8], start: usize) -> Option<KeyHint> {
        let end = start + KEY_LEN;
        let candidate = window.get(start..end)?;
        let bounded_before = start == 0 || !is_word_byte(window[start - 1]);
        let bounded_after = window.get(end).is_none_or(|&b| !is_word_byte(b));
        if !(bounded_before && bounded_after) {
            return None;
        }
        // Most text that starts like a key is a name such as `nova_api_key`:
        // it is refused at its first byte that is not a lowercase hex digit,
        // before a parse that would look at all 64 bytes.
        let digits = &candidate[self.format.prefix().len()..];
        if !digits
            .iter()
            .all(|&b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        let candidate = std::str::from_utf8(candidate).ok()?;
        self.format.parse(candidate).ok().map(|key| key.hint())
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Line and column at a byte offset of the input.
#[derive(Debug, Clone, Copy)]
struct Position {
    offset: usize,
    line: usize,
    column: usize,
}

impl Position {
    const START: Position = Position {
        offset: 0,
        line: 1,
        column: 1,
    };

    /// Moves forward over `passed`, the input from `self.offset` on, which
    /// must end where a character of the lossy text starts.
    ///
    /// Newlines are counted in bulk with SIMD, and characters only after the
    /// last newline, so a pass costs little more than reading the bytes.
    fn advance_over(&mut self, passed: &[u8]) {
        match memchr::memrchr(b'\n', passed) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', passed).count();
                self.column = 1 + lossy_char_count(&passed[last + 1..]);
            }
            None => self.column += lossy_char_count(passed),
        }
        self.offset += passed.len();
    }

    fn finding(&self, hint: KeyHint) -> Finding {
        Finding {
            offset: self.offset,
            line: self.line,
            column: self.column,
            hint,
        }
    }
}

/// How many characters [`String::from_utf8_lossy`] makes of `bytes`: one per
/// valid character and one U+FFFD per maximal invalid sequence.
fn lossy_char_count(bytes: &[u8]) -> usize {
    bytes
        .utf8_chunks()
        .map(|chunk| chunk.valid().chars().count() + usize::from(!chunk.invalid().is_empty()))
        .sum()
}

/// The last index at or before `index` where a character of the lossy text
/// starts, given that one starts at index 0.
///
/// A byte that is not a continuation byte (`0b10xx_xxxx`) always starts a
/// character or an invalid sequence, and so does a fourth continuation byte
/// in a row, since a UTF-8 sequence has at most three; so the answer is at
/// most 3 bytes back.
fn char_start_at_or_before(window: &[u8], index: usize) -> usize {
    let is_continuation = |byte: u8| byte & 0b1100_0000 == 0b1000_0000;
    (index.saturating_sub(3)..=index)
        .rev()
        .find(|&i| !is_continuation(window[i]))
        .unwrap_or(index)
}

/// The iterator of [`Scanner::scan`].
#[derive(Clone)]
pub struct Findings<'a> {
    search: KeySearch,
    text: &'a str,
    search_from: usize,
    position: Position,
}

impl fmt::Debug for Findings<'_> {
    /// Shows where the scan is, never the text: it may hold keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Findings")
            .field("format", &self.search.format)
            .field("text_len", &self.text.len())
            .field("search_from", &self.search_from)
            .finish()
    }
}

impl Iterator for Findings<'_> {
    type Item = Finding;

    fn next(&mut self) -> Option<Finding> {
        let bytes = self.text.as_bytes();
        match self.search.next_key(bytes, self.search_from, true) {
            Next::Key { start, hint } => {
                self.search_from = start + KEY_LEN;
                self.position
                    .advance_over(&bytes[self.position.offset..start]);
                Some(self.position.finding(hint))
            }
            Next::NeedMore { .. } => {
                self.search_from = bytes.len();
                None
            }
        }
    }
}

impl std::iter::FusedIterator for Findings<'_> {}

/// Whether a [`ReaderFindings`] may read more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Reading,
    /// The reader said end of input; the window is the rest of it.
    AtEnd,
    /// Iteration is over: the input is exhausted or a read failed.
    Done,
}

/// The iterator of [`Scanner::scan_reader`]: yields each key found, or the
/// error a read failed with, after which it ends.
///
/// Its buffer is wiped when it is dropped, since it may hold keys.
pub struct ReaderFindings<R> {
    search: KeySearch,
    reader: R,
    buffer: Box<[u8]>,
    /// `buffer[..filled]` is the window: the input read and not yet dropped.
    filled: usize,
    /// The offset in the input of `buffer[0]`.
    window_offset: usize,
    /// Where in the window the search goes on.
    search_from: usize,
    /// Always at or after the window's start.
    position: Position,
    state: ReadState,
}

impl<R> fmt::Debug for ReaderFindings<R> {
    /// Shows where the scan is, never the reader or the buffer: they may
    /// hold keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderFindings")
            .field("format", &self.search.format)
            .field("buffer_len", &self.buffer.len())
            .field("searched_to", &(self.window_offset + self.search_from))
            .field("state", &self.state)
            .finish()
    }
}

impl<R: Read> ReaderFindings<R> {
    /// Reads more input after the window, first dropping the part of the
    /// window that is done with when the buffer is full.
    fn fill(&mut self) -> io::Result<()> {
        if self.filled == self.buffer.len() {
            self.drop_searched();
        }
        loop {
            match self.reader.read(&mut self.buffer[self.filled..]) {
                Ok(0) => {
                    self.state = ReadState::AtEnd;
                    return Ok(());
                }
                Ok(read) => {
                    self.filled += read;
                    return Ok(());
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Moves the part of the window still needed to the buffer's front: from
    /// the byte before `search_from` (a candidate's left boundary), or up to
    /// 3 bytes earlier, where a character starts, so that columns go on
    /// counting from there.
    fn drop_searched(&mut self) {
        let cut = char_start_at_or_before(&self.buffer[..self.filled], self.search_from - 1);
        let counted_to = self.position.offset - self.window_offset;
        self.position.advance_over(&self.buffer[counted_to..cut]);
        self.buffer.copy_within(cut..self.filled, 0);
        self.window_offset += cut;
        self.filled -= cut;
        self.search_from -= cut;
    }
}

impl<R: Read> Iterator for ReaderFindings<R> {
    type Item = io::Result<Finding>;

    fn next(&mut self) -> Option<io::Result<Finding>> {
        loop {
            let at_end = match self.state {
                ReadState::Reading => false,
                ReadState::AtEnd => true,
                ReadState::Done => return None,
            };
            let window = &self.buffer[..self.filled];
            match self.search.next_key(window, self.search_from, at_end) {
                Next::Key { start, hint } => {
                    self.search_from = start + KEY_LEN;
                    let counted_to = self.position.offset - self.window_offset;
                    self.position.advance_over(&window[counted_to..start]);
                    return Some(Ok(self.position.finding(hint)));
                }
                Next::NeedMore { .. } if at_end => {
                    self.state = ReadState::Done;
                    return None;
                }
                Next::NeedMore { resume_at } => self.search_from = resume_at,
            }
            if let Err(err) = self.fill() {
                self.state = ReadState::Done;
                return Some(Err(err));
            }
        }
    }
}

impl<R: Read> std::iter::FusedIterator for ReaderFindings<R> {}

impl<R> Drop for ReaderFindings<R> {
    fn drop(&mut self) {
        self.buffer.zeroize();
    }
}
