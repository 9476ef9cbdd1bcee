//! The public id of a key: `key_` + the first 8 bytes of its digest in hex.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The public id of a key, such as `key_4e58d9f4757ccfc3`.
///
/// Ids are what management APIs, logs and dashboards show. They are derived
/// from the digest, so a store can find a record by id or by digest with one
/// index.
///
/// ```
/// use lumyx_keys::KeyId;
///
/// let id: KeyId = "key_4e58d9f4757ccfc3".parse()?;
/// assert_eq!(id.to_string(), "key_4e58d9f4757ccfc3");
/// assert!("key_4E58".parse::<KeyId>().is_err());
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyId([u8; 8]);

impl KeyId {
    /// The text before the hex digits.
    pub const PREFIX: &'static str = "key_";

    /// An id from its 8 raw bytes.
    pub const fn from_bytes(bytes: [u8; 8]) -> KeyId {
        KeyId(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// How many hash slots a Redis Cluster has.
    pub const CLUSTER_SLOTS: u16 = 16_384;

    /// The Redis Cluster hash slot of the Redis keys this id tags (their
    /// names hold `{key_…}`): a key's record, limiter state and usage all
    /// sit in it. It is what Redis's `CLUSTER KEYSLOT` answers: the CRC16
    /// (XMODEM) of the id's text, modulo 16384.
    ///
    /// ```
    /// use lumyx_keys::KeyId;
    ///
    /// let id: KeyId = "key_4e58d9f4757ccfc3".parse()?;
    /// assert_eq!(id.cluster_slot(), 12934); // CLUSTER KEYSLOT lumyx:rl:{key_4e58d9f4757ccfc3}
    /// # Ok::<(), lumyx_keys::Error>(())
    /// ```
    pub fn cluster_slot(&self) -> u16 {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0_u8; 20];
        text[..4].copy_from_slice(KeyId::PREFIX.as_bytes());
        for (pair, byte) in text[4..].chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        crc16::State::<crc16::XMODEM>::calculate(&text) % KeyId::CLUSTER_SLOTS
    }
}

impl std::hash::Hash for KeyId {
    /// Writes one `u64`: ids are uniformly random (they come from SHA-256), so
    /// a map keyed by id can use the value itself as its hash.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0));
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(KeyId::PREFIX)?;
        crate::text::write_hex(f, &self.0)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl FromStr for KeyId {
    type Err = Error;

    /// Reads `key_` and 16 lowercase hex digits.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || Error::Text {
            what: "key id",
            expected: "`key_` and 16 lowercase hex digits",
        };
        let digits = text.strip_prefix(KeyId::PREFIX).ok_or_else(invalid)?;
        if digits.len() != 16
            || !digits
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(invalid());
        }
        let mut bytes = [0u8; 8];
        hex::decode_to_slice(digits, &mut bytes).map_err(|_| invalid())?;
        Ok(KeyId(bytes))
    }
}

crate::text::serde_via_text!(KeyId);
