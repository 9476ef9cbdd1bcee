//! The parsed key: a borrowed view for the hot path and an owned secret.
//!
//! Neither type shows the key through `Debug` or `Display`: both print the
//! hint, so a key never reaches a log by accident. The canonical text, which
//! parsing reads back, is reached only through `expose_secret()`.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::format::{KEY_LEN, KeyFormat, KeyPrefix};
use crate::{Error, KeyDigest, KeyHint, KeyId};

/// A key that parsed, borrowed from the text it was parsed from.
///
/// This is what the hot path works with: [`KeyFormat::parse`] returns it
/// without allocating or copying the secret.
///
/// ```
/// use lumyx_keys::ApiKeyRef;
///
/// let text = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
/// let key = ApiKeyRef::parse(text)?;
/// assert_eq!(key.id().to_string(), "key_4e58d9f4757ccfc3");
/// assert_eq!(format!("{key:?}"), "ApiKeyRef(nova_0123…6dce)");
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct ApiKeyRef<'a> {
    text: &'a str,
    prefix: KeyPrefix,
}

impl<'a> ApiKeyRef<'a> {
    /// Parses a key of the default `nova_` format; see [`KeyFormat::parse`].
    #[inline]
    pub fn parse(text: &'a str) -> Result<ApiKeyRef<'a>, Error> {
        KeyFormat::NOVA.parse(text)
    }

    /// Wraps text that [`KeyFormat::parse`] accepted.
    pub(crate) fn from_valid(text: &'a str, prefix: KeyPrefix) -> ApiKeyRef<'a> {
        ApiKeyRef { text, prefix }
    }

    /// The canonical text of the key. Handle with care: this is the secret.
    pub fn expose_secret(&self) -> &'a str {
        self.text
    }

    /// The prefix of the key's format.
    pub fn prefix(&self) -> KeyPrefix {
        self.prefix
    }

    /// The SHA-256 digest of the key, the form stores keep.
    #[inline]
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of_key_bytes(self.text.as_bytes())
    }

    /// The public id of the key (`key_` + 16 hex digits of the digest).
    pub fn id(&self) -> KeyId {
        self.digest().id()
    }

    /// The public hint, such as `nova_0123…6dce`.
    pub fn hint(&self) -> KeyHint {
        KeyHint::of_key(self.text.as_bytes(), self.prefix.len())
    }

    /// Copies the key into an owned secret that is wiped when dropped.
    pub fn to_owned_key(&self) -> ApiKey {
        let bytes: &[u8; KEY_LEN] = self
            .text
            .as_bytes()
            .try_into()
            .expect("a parsed key has KEY_LEN bytes");
        ApiKey::from_valid_bytes(bytes, self.prefix)
    }
}

impl PartialEq for ApiKeyRef<'_> {
    /// Constant-time in the key's bytes.
    fn eq(&self, other: &Self) -> bool {
        self.text.as_bytes().ct_eq(other.text.as_bytes()).into()
    }
}

impl Eq for ApiKeyRef<'_> {}

impl fmt::Debug for ApiKeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyRef({})", self.hint())
    }
}

impl fmt::Display for ApiKeyRef<'_> {
    /// Shows the hint, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.hint(), f)
    }
}

impl<'a> TryFrom<&'a str> for ApiKeyRef<'a> {
    type Error = Error;

    fn try_from(text: &'a str) -> Result<Self, Self::Error> {
        ApiKeyRef::parse(text)
    }
}

/// An owned API key: the secret a client holds, wiped from memory on drop.
///
/// `Debug` and `Display` show the hint; the key itself is reached only through
/// [`ApiKey::expose_secret`], whose text [`FromStr`] reads back. There is
/// deliberately no `Serialize`. The bytes live on the heap, so moving a key
/// moves a pointer and leaves no copy of the secret behind.
///
/// ```
/// use lumyx_keys::ApiKey;
///
/// let key = ApiKey::generate()?;
/// let text = key.expose_secret();
/// assert_eq!(text.parse::<ApiKey>()?, key);
/// assert!(!format!("{key} {key:?}").contains(text));
/// # Ok::<(), lumyx_keys::Error>(())
/// ```
#[derive(Clone)]
pub struct ApiKey {
    bytes: Box<[u8; KEY_LEN]>,
    prefix: KeyPrefix,
}

impl ApiKey {
    /// Mints a `nova_` key from the operating system's CSPRNG; see
    /// [`KeyFormat::generate`] for other prefixes.
    pub fn generate() -> Result<ApiKey, Error> {
        KeyFormat::NOVA.generate()
    }

    /// Parses and copies a key of the default `nova_` format.
    pub fn parse(text: &str) -> Result<ApiKey, Error> {
        ApiKeyRef::parse(text).map(|key| key.to_owned_key())
    }

    /// A key whose bytes are all zero, for [`KeyFormat::generate_with`] to
    /// fill in place.
    pub(crate) fn zeroed(prefix: KeyPrefix) -> ApiKey {
        ApiKey {
            bytes: Box::new([0; KEY_LEN]),
            prefix,
        }
    }

    /// The bytes, for [`KeyFormat::generate_with`] to fill in place.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.bytes
    }

    fn from_valid_bytes(bytes: &[u8; KEY_LEN], prefix: KeyPrefix) -> ApiKey {
        let mut key = ApiKey::zeroed(prefix);
        key.bytes.copy_from_slice(bytes);
        key
    }

    /// The borrowed view of this key.
    pub fn as_key_ref(&self) -> ApiKeyRef<'_> {
        ApiKeyRef::from_valid(self.expose_secret(), self.prefix)
    }

    /// The canonical text of the key. Handle with care: this is the secret.
    pub fn expose_secret(&self) -> &str {
        std::str::from_utf8(&self.bytes[..]).expect("a key is ASCII")
    }

    /// The prefix of the key's format.
    pub fn prefix(&self) -> KeyPrefix {
        self.prefix
    }

    /// The SHA-256 digest of the key, the form stores keep.
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of_key_bytes(&self.bytes[..])
    }

    /// The public id of the key.
    pub fn id(&self) -> KeyId {
        self.digest().id()
    }

    /// The public hint, such as `nova_0123…6dce`.
    pub fn hint(&self) -> KeyHint {
        KeyHint::of_key(&self.bytes[..], self.prefix.len())
    }
}

impl Drop for ApiKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl PartialEq for ApiKey {
    /// Constant-time in the key's bytes.
    fn eq(&self, other: &Self) -> bool {
        self.bytes[..].ct_eq(&other.bytes[..]).into()
    }
}

impl Eq for ApiKey {}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.hint())
    }
}

impl fmt::Display for ApiKey {
    /// Shows the hint, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.hint(), f)
    }
}

impl FromStr for ApiKey {
    type Err = Error;

    /// Parses a key of the default `nova_` format.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ApiKey::parse(text)
    }
}

impl TryFrom<&str> for ApiKey {
    type Error = Error;

    fn try_from(text: &str) -> Result<Self, Self::Error> {
        ApiKey::parse(text)
    }
}

impl<'a> From<&'a ApiKey> for ApiKeyRef<'a> {
    fn from(key: &'a ApiKey) -> Self {
        key.as_key_ref()
    }
}
