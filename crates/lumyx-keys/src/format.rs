//! The key format: prefix, random part, CRC-32; minting and parsing.
//!
//! A key is 64 ASCII bytes: a prefix such as `nova_`, lowercase hex digits from
//! the operating system's CSPRNG, and 8 lowercase hex digits of the CRC-32
//! (ISO-HDLC, the zlib one) of everything before them, big-endian.

use std::fmt;

use rand_core::{OsRng, TryCryptoRng};

use crate::Error;
use crate::key::{ApiKey, ApiKeyRef};

/// The length in bytes of every key, whatever its prefix.
pub const KEY_LEN: usize = 64;
/// The length in hex digits of the checksum at the end of a key.
pub const CHECKSUM_LEN: usize = 8;
/// The shortest prefix, trailing `_` included.
pub const MIN_PREFIX_LEN: usize = 2;
/// The longest prefix, trailing `_` included.
pub const MAX_PREFIX_LEN: usize = 16;
/// The fewest random hex digits a format may have (128 bits).
pub const MIN_RANDOM_LEN: usize = 32;

/// `HEX_VALUE[b]` is the value of the lowercase hex digit `b`, or
/// [`NOT_HEX`] for every other byte (uppercase included: it is not canonical).
const HEX_VALUE: [u8; 256] = hex_value_table();
const NOT_HEX: u8 = 0xFF;

const fn hex_value_table() -> [u8; 256] {
    let mut table = [NOT_HEX; 256];
    let mut digit = 0;
    while digit < 16 {
        table[b"0123456789abcdef"[digit] as usize] = digit as u8;
        digit += 1;
    }
    table
}

/// Whether every byte of `digits` (at least 8 of them) is `0-9` or `a-f`.
///
/// Eight bytes at a time: for ASCII bytes, adding `0x80 - lo` to each byte
/// sets its top bit exactly when the byte is at least `lo`, and no byte
/// carries into the next, so two range checks per lane take a few word
/// operations. A word with a non-ASCII byte is refused by its top bits
/// before the sums (which may then carry) are looked at. The last word overlaps the one before when the length is not
/// a multiple of 8. This is the hot path of every rejected or accepted key.
#[inline]
fn all_lowercase_hex(digits: &[u8]) -> bool {
    const LANES: u64 = 0x0101_0101_0101_0101;
    const TOP_BITS: u64 = 0x80 * LANES;
    let word_is_hex = |word: u64| {
        let at_least = |lo: u64| word.wrapping_add((0x80 - lo) * LANES);
        let digit = at_least(b'0' as u64) & !at_least(b'9' as u64 + 1);
        let letter = at_least(b'a' as u64) & !at_least(b'f' as u64 + 1);
        word & TOP_BITS == 0 && (digit | letter) & TOP_BITS == TOP_BITS
    };
    let word_at =
        |start: usize| u64::from_le_bytes(digits[start..start + 8].try_into().expect("8 bytes"));
    let last = digits.len() - 8;
    (0..last)
        .step_by(8)
        .all(|start| word_is_hex(word_at(start)))
        && word_is_hex(word_at(last))
}

/// A key prefix such as `nova_`: 2 to 16 bytes of `[a-z][a-z0-9]*_`.
///
/// It is stored inline, so formats, errors and hints that carry a prefix are
/// `Copy` and never allocate.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPrefix {
    bytes: [u8; MAX_PREFIX_LEN],
    len: u8,
}

impl KeyPrefix {
    /// The prefix of Lumyx AI's keys.
    pub const NOVA: KeyPrefix = KeyPrefix::from_valid(b"nova_");

    /// Checks `prefix`: 2 to 16 characters of `[a-z][a-z0-9]*_`, short
    /// enough to leave at least 32 random hex digits (128 bits) in a key.
    pub fn new(prefix: &str) -> Result<KeyPrefix, Error> {
        let refuse = |reason| Error::InvalidPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        let bytes = prefix.as_bytes();
        if !(MIN_PREFIX_LEN..=MAX_PREFIX_LEN).contains(&bytes.len()) {
            return Err(refuse("a prefix has 2 to 16 characters, `_` included"));
        }
        let (last, body) = bytes.split_last().expect("length checked above");
        if *last != b'_' {
            return Err(refuse("a prefix ends with `_`"));
        }
        if !body[0].is_ascii_lowercase() {
            return Err(refuse("a prefix starts with a lowercase letter a-z"));
        }
        if !body
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(refuse(
                "a prefix has only lowercase letters and digits before its `_`",
            ));
        }
        if KEY_LEN - bytes.len() - CHECKSUM_LEN < MIN_RANDOM_LEN {
            return Err(refuse("a prefix must leave at least 32 random hex digits"));
        }
        Ok(KeyPrefix::from_valid(bytes))
    }

    const fn from_valid(prefix: &[u8]) -> KeyPrefix {
        let mut bytes = [0; MAX_PREFIX_LEN];
        let mut i = 0;
        while i < prefix.len() {
            bytes[i] = prefix[i];
            i += 1;
        }
        KeyPrefix {
            bytes,
            len: prefix.len() as u8,
        }
    }

    /// The prefix as text, trailing `_` included.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("a prefix is ASCII")
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The length of the prefix in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Always `false`: a prefix has at least two bytes.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl Default for KeyPrefix {
    fn default() -> Self {
        KeyPrefix::NOVA
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", self.as_str())
    }
}

impl std::str::FromStr for KeyPrefix {
    type Err = Error;

    fn from_str(prefix: &str) -> Result<Self, Self::Err> {
        KeyPrefix::new(prefix)
    }
}

/// A key format: the `nova_` one by default, or a service's own prefix.
///
/// It mints keys ([`KeyFormat::generate`]) and parses them
/// ([`KeyFormat::parse`]) without allocating.
///
/// ```
/// use lumyx_keys::KeyFormat;
///
/// let format = KeyFormat::new("acme_")?;
/// let key = format.generate()?;
/// assert_eq!(key.expose_secret().len(), 64);
/// assert!(key.expose_secret().starts_with("acme_"));
///
/// let parsed = format.parse(key.expose_secret())?;
/// assert_eq!(parsed, key.as_key_ref());
/// assert!(KeyFormat::new("Acme_").is_err());
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeyFormat {
    prefix: KeyPrefix,
}

impl KeyFormat {
    /// The format of Lumyx AI's keys, prefix `nova_`.
    pub const NOVA: KeyFormat = KeyFormat {
        prefix: KeyPrefix::NOVA,
    };

    /// A format with a custom prefix: 2 to 16 characters of
    /// `[a-z][a-z0-9]*_`. Keys stay 64 characters long, so a longer prefix
    /// leaves fewer random digits, never fewer than 32 (128 bits).
    pub fn new(prefix: &str) -> Result<KeyFormat, Error> {
        Ok(KeyFormat {
            prefix: KeyPrefix::new(prefix)?,
        })
    }

    /// The format's prefix.
    pub fn prefix(&self) -> KeyPrefix {
        self.prefix
    }

    /// How many random hex digits a key of this format has.
    pub fn random_len(&self) -> usize {
        KEY_LEN - self.prefix.len() - CHECKSUM_LEN
    }

    /// Mints a key with the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`Error::Random`] when the operating system cannot provide randomness.
    pub fn generate(&self) -> Result<ApiKey, Error> {
        self.generate_with(&mut OsRng)
    }

    /// Mints a key with the given cryptographically secure RNG.
    ///
    /// # Errors
    /// [`Error::Random`], carrying the RNG's error, when the RNG fails.
    pub fn generate_with<R>(&self, rng: &mut R) -> Result<ApiKey, Error>
    where
        R: TryCryptoRng + ?Sized,
        R::Error: std::error::Error + Send + Sync + 'static,
    {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let prefix_len = self.prefix.len();
        let random_len = self.random_len();
        // The key is built in place on the heap; every buffer that holds
        // secret bytes is wiped on every path, the error path included.
        let mut key = ApiKey::zeroed(self.prefix);
        let bytes = key.bytes_mut();
        bytes[..prefix_len].copy_from_slice(self.prefix.as_bytes());

        // One random nibble per hex digit.
        let mut random = zeroize::Zeroizing::new([0u8; KEY_LEN / 2]);
        let random = &mut random[..random_len.div_ceil(2)];
        rng.try_fill_bytes(random)
            .map_err(|err| Error::Random(Box::new(err)))?;
        let digits = &mut bytes[prefix_len..prefix_len + random_len];
        for (i, digit) in digits.iter_mut().enumerate() {
            let byte = random[i / 2];
            let nibble = if i % 2 == 0 { byte >> 4 } else { byte & 0x0F };
            *digit = DIGITS[nibble as usize];
        }

        let checksum = crc32fast::hash(&bytes[..KEY_LEN - CHECKSUM_LEN]);
        for (i, digit) in bytes[KEY_LEN - CHECKSUM_LEN..].iter_mut().enumerate() {
            let nibble = (checksum >> (28 - 4 * i)) & 0x0F;
            *digit = DIGITS[nibble as usize];
        }
        Ok(key)
    }

    /// Parses `text` without allocating. It checks, in this order, the length
    /// (64 bytes), the prefix, the characters (lowercase hex digits only;
    /// uppercase is refused as not canonical) and the checksum, and stops at
    /// the first failure, so garbage is refused before anything is hashed.
    ///
    /// # Errors
    /// [`Error::Length`], [`Error::Prefix`], [`Error::Character`] or
    /// [`Error::Checksum`]; none of them contains `text`.
    #[inline]
    pub fn parse<'a>(&self, text: &'a str) -> Result<ApiKeyRef<'a>, Error> {
        let bytes = text.as_bytes();
        if bytes.len() != KEY_LEN {
            return Err(Error::Length {
                expected: KEY_LEN,
                actual: bytes.len(),
            });
        }
        let prefix_len = self.prefix.len();
        if &bytes[..prefix_len] != self.prefix.as_bytes() {
            return Err(Error::Prefix {
                expected: self.prefix,
            });
        }

        let digits = &bytes[prefix_len..];
        if !all_lowercase_hex(digits) {
            let offset = digits
                .iter()
                .position(|&b| HEX_VALUE[b as usize] == NOT_HEX)
                .expect("a non-hex byte was seen");
            return Err(Error::Character {
                position: prefix_len + offset,
            });
        }

        let stated = bytes[KEY_LEN - CHECKSUM_LEN..]
            .iter()
            .fold(0u32, |sum, &b| {
                (sum << 4) | u32::from(HEX_VALUE[b as usize])
            });
        if crc32fast::hash(&bytes[..KEY_LEN - CHECKSUM_LEN]) != stated {
            return Err(Error::Checksum);
        }
        Ok(ApiKeyRef::from_valid(text, self.prefix))
    }
}
