//! The SHA-256 digest that stores keep instead of the key, which is never
//! stored.
//!
//! Keys carry 204 bits of entropy, so a fast unsalted hash is right: nobody can
//! search that space, and lookups by digest stay a single hash away.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::{Error, KeyId};

/// The length of a digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// The SHA-256 digest of the 64 bytes of a key.
///
/// Equality is constant-time. The text forms are lowercase hex (64 digits,
/// what `Display`, `FromStr` and serde use) and standard base64 with padding.
///
/// ```
/// use lumyx_keys::{ApiKeyRef, KeyDigest};
///
/// let key = ApiKeyRef::parse("nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce")?;
/// let digest = key.digest();
/// assert_eq!(
///     digest.to_string(),
///     "4e58d9f4757ccfc351c2d36db31a68179b00ad0b87f4fb73cdb9f775120d5e01"
/// );
/// assert_eq!(KeyDigest::from_base64(&digest.to_base64())?, digest);
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; DIGEST_LEN]);

impl KeyDigest {
    /// The digest of a key's bytes. Only parsed keys are hashed, through
    /// [`ApiKeyRef::digest`](crate::ApiKeyRef::digest).
    pub(crate) fn of_key_bytes(key: &[u8]) -> KeyDigest {
        KeyDigest(Sha256::digest(key).into())
    }

    /// A digest from its raw bytes, as read from a store.
    pub const fn from_bytes(bytes: [u8; DIGEST_LEN]) -> KeyDigest {
        KeyDigest(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// The public id derived from this digest: `key_` + its first 8 bytes.
    pub fn id(&self) -> KeyId {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        KeyId::from_bytes(head)
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads the 64 lowercase or uppercase hex digits of [`KeyDigest::to_hex`].
    pub fn from_hex(text: &str) -> Result<KeyDigest, Error> {
        let mut bytes = [0u8; DIGEST_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| Error::Text {
            what: "key digest",
            expected: "64 hex digits",
        })?;
        Ok(KeyDigest(bytes))
    }

    /// Standard base64 with padding, 44 characters.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Reads the text of [`KeyDigest::to_base64`].
    pub fn from_base64(text: &str) -> Result<KeyDigest, Error> {
        let invalid = || Error::Text {
            what: "key digest",
            expected: "44 characters of standard base64",
        };
        let bytes = BASE64.decode(text).map_err(|_| invalid())?;
        let bytes: [u8; DIGEST_LEN] = bytes.try_into().map_err(|_| invalid())?;
        Ok(KeyDigest(bytes))
    }
}

impl PartialEq for KeyDigest {
    /// Constant-time, so that comparing a presented digest with a stored one
    /// tells nothing about how many bytes matched.
    fn eq(&self, other: &Self) -> bool {
        // Fold the differences of the four 8-byte words without a branch,
        // then let `subtle` compare the fold with zero; this is as
        // constant-time as `subtle`'s byte-wise slice comparison and several
        // times faster on the lookup of every request.
        let words = |digest: &KeyDigest| {
            let mut words = [0u64; DIGEST_LEN / 8];
            for (word, bytes) in words.iter_mut().zip(digest.0.chunks_exact(8)) {
                *word = u64::from_ne_bytes(bytes.try_into().expect("chunks of 8"));
            }
            words
        };
        let difference = words(self)
            .iter()
            .zip(words(other))
            .fold(0u64, |seen, (a, b)| seen | (a ^ b));
        difference.ct_eq(&0).into()
    }
}

impl Eq for KeyDigest {}

impl std::hash::Hash for KeyDigest {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Display for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::text::write_hex(f, &self.0)
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({self})")
    }
}

impl FromStr for KeyDigest {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        KeyDigest::from_hex(text)
    }
}

crate::text::serde_via_text!(KeyDigest);
