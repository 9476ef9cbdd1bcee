//! Random ids: hex digits from the operating system's randomness.

/// `bytes` random bytes as `2 * bytes` lowercase hex digits.
///
/// # Panics
/// When the operating system has no randomness to give (as key generation
/// would fail then too).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).expect("the operating system's random numbers");
    hex::encode(buffer)
}
