//! The public hint of a key: enough to recognise it, too little to use it.

use std::fmt;
use std::str::FromStr;

use crate::Error;
use crate::format::{KEY_LEN, KeyPrefix, MAX_PREFIX_LEN};

/// How many random digits after the prefix a hint shows.
const HEAD_DIGITS: usize = 4;
/// How many digits at the end of the key a hint shows.
const TAIL_DIGITS: usize = 4;
/// What stands for the hidden middle of the key.
const ELLIPSIS: &str = "…";

/// The hint of a key: its prefix, the first 4 random digits, `…`, and the
/// last 4 digits, such as `nova_0123…6dce`: what management APIs, logs and
/// dashboards show of a key.
///
/// It shows 4 random digits and the checksum's last 4; at least 36 random
/// digits stay hidden, and the shown checksum digits give away 16 bits of
/// them, so at least 128 bits remain unknown. It is stored inline and
/// written without allocating, which lets `Debug` of secret types use it.
///
/// ```
/// use lumyx_keys::{ApiKeyRef, KeyHint};
///
/// let key = ApiKeyRef::parse("nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce")?;
/// assert_eq!(key.hint().to_string(), "nova_0123…6dce");
/// assert_eq!("nova_0123…6dce".parse::<KeyHint>()?, key.hint());
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyHint {
    head: [u8; MAX_PREFIX_LEN + HEAD_DIGITS],
    head_len: u8,
    tail: [u8; TAIL_DIGITS],
}

impl KeyHint {
    /// The hint of a parsed key's bytes.
    pub(crate) fn of_key(key: &[u8], prefix_len: usize) -> KeyHint {
        let head_len = prefix_len + HEAD_DIGITS;
        let mut head = [0u8; MAX_PREFIX_LEN + HEAD_DIGITS];
        head[..head_len].copy_from_slice(&key[..head_len]);
        let mut tail = [0u8; TAIL_DIGITS];
        tail.copy_from_slice(&key[KEY_LEN - TAIL_DIGITS..]);
        KeyHint {
            head,
            head_len: head_len as u8,
            tail,
        }
    }

    /// The prefix of the key the hint stands for.
    pub fn prefix(&self) -> &str {
        let head = self.head_str();
        &head[..head.len() - HEAD_DIGITS]
    }

    fn head_str(&self) -> &str {
        std::str::from_utf8(&self.head[..self.head_len as usize]).expect("a hint is ASCII")
    }

    fn tail_str(&self) -> &str {
        std::str::from_utf8(&self.tail).expect("a hint is ASCII")
    }
}

impl fmt::Display for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.head_str())?;
        f.write_str(ELLIPSIS)?;
        f.write_str(self.tail_str())
    }
}

impl fmt::Debug for KeyHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHint({self})")
    }
}

impl FromStr for KeyHint {
    type Err = Error;

    /// Reads the text of `Display`: prefix, 4 hex digits, `…`, 4 hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || Error::Text {
            what: "key hint",
            expected: "a key prefix, 4 hex digits, `…` and 4 hex digits",
        };
        let is_hex = |digits: &str| {
            digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let (head, tail) = text.split_once(ELLIPSIS).ok_or_else(invalid)?;
        if !head.is_ascii()
            || head.len() < HEAD_DIGITS
            || tail.len() != TAIL_DIGITS
            || !is_hex(tail)
        {
            return Err(invalid());
        }
        let (prefix, digits) = head.split_at(head.len() - HEAD_DIGITS);
        if !is_hex(digits) {
            return Err(invalid());
        }
        KeyPrefix::new(prefix).map_err(|_| invalid())?;
        let mut hint = KeyHint {
            head: [0; MAX_PREFIX_LEN + HEAD_DIGITS],
            head_len: head.len() as u8,
            tail: [0; TAIL_DIGITS],
        };
        hint.head[..head.len()].copy_from_slice(head.as_bytes());
        hint.tail.copy_from_slice(tail.as_bytes());
        Ok(hint)
    }
}

crate::text::serde_via_text!(KeyHint);
