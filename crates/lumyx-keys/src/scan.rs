//! The secret scanner of SPEC §1.5: finds real keys in any text.
//!
//! A candidate is the prefix followed by the format's hex digits, standing
//! between non-word characters (word characters are ASCII letters, digits
//! and `_`; the start and end of the text count as non-word). Only candidates
//! whose checksum holds are reported, so hex-looking noise is not, and a
//! finding carries the hint, never the key.

use crate::format::KEY_LEN;
use crate::{KeyFormat, KeyHint};

/// One key found in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Finding {
    /// Byte offset of the key's first character in the text.
    pub offset: usize,
    /// Line of the key, counting from 1.
    pub line: usize,
    /// Column of the key's first character, counting characters from 1.
    pub column: usize,
    /// The key's hint.
    pub hint: KeyHint,
}

/// Finds keys of a format in texts.
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
            format: self.format,
            text,
            search_from: 0,
            position: Position {
                offset: 0,
                line: 1,
                column: 1,
            },
        }
    }
}

/// Where the line and column count has got to in a text.
#[derive(Debug, Clone, Copy)]
struct Position {
    offset: usize,
    line: usize,
    column: usize,
}

impl Position {
    /// Moves forward to `offset`, counting lines and characters on the way.
    fn advance_to(&mut self, text: &str, offset: usize) {
        for ch in text[self.offset..offset].chars() {
            if ch == '\n' {
                self.line += 1;
                self.column = 1;
            } else {
                self.column += 1;
            }
        }
        self.offset = offset;
    }
}

/// The iterator of [`Scanner::scan`].
#[derive(Clone)]
pub struct Findings<'a> {
    format: KeyFormat,
    text: &'a str,
    search_from: usize,
    position: Position,
}

impl std::fmt::Debug for Findings<'_> {
    /// Shows where the scan is, never the text: it may hold keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Findings")
            .field("format", &self.format)
            .field("text_len", &self.text.len())
            .field("search_from", &self.search_from)
            .finish()
    }
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

impl Iterator for Findings<'_> {
    type Item = Finding;

    fn next(&mut self) -> Option<Finding> {
        let text = self.text;
        let bytes = text.as_bytes();
        let prefix = self.format.prefix();
        while let Some(found) = text[self.search_from..].find(prefix.as_str()) {
            let start = self.search_from + found;
            let end = start + KEY_LEN;
            // The prefix is ASCII, so `start + 1` is a character boundary.
            self.search_from = start + 1;
            let bounded_before = start == 0 || !is_word_byte(bytes[start - 1]);
            let bounded_after = bytes.get(end).is_none_or(|&b| !is_word_byte(b));
            if !(bounded_before && bounded_after) {
                continue;
            }
            let Some(key) = text.get(start..end).and_then(|c| self.format.parse(c).ok()) else {
                continue;
            };
            self.search_from = end;
            self.position.advance_to(text, start);
            return Some(Finding {
                offset: start,
                line: self.position.line,
                column: self.position.column,
                hint: key.hint(),
            });
        }
        self.search_from = text.len();
        None
    }
}

impl std::iter::FusedIterator for Findings<'_> {}
