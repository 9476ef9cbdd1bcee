use std::hash::{BuildHasher, Hasher, RandomState};

/// The default key hasher of [`MemoryLimiter`](crate::MemoryLimiter): a
/// folded-multiply hash (the construction of `foldhash` and `ahash`'s
/// fallback) with a random seed per limiter.
///
/// It is several times faster than std's SipHash on short keys, which is
/// most of the cost of a decision. It is not a keyed PRF: choose
/// [`RandomState`] (with [`MemoryLimiter::with_clock_and_hasher`](crate::MemoryLimiter::with_clock_and_hasher))
/// for keys an attacker can choose freely. Limiter keys are normally key ids
/// that passed verification (SPEC §2), which an attacker cannot pick.
#[derive(Debug, Clone)]
pub struct FastHashBuilder {
    seed: u64,
}

impl FastHashBuilder {
    /// A builder with a fresh random seed (taken from std's [`RandomState`]).
    pub fn new() -> Self {
        Self {
            seed: RandomState::new().hash_one(0x6c75_6d79_785f_726cu64),
        }
    }
}

impl Default for FastHashBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BuildHasher for FastHashBuilder {
    type Hasher = FastHasher;

    fn build_hasher(&self) -> FastHasher {
        FastHasher { acc: self.seed }
    }
}

/// The hasher built by [`FastHashBuilder`].
#[derive(Debug, Clone)]
pub struct FastHasher {
    acc: u64,
}

/// Digits of pi: odd, with well-spread bits.
const K1: u64 = 0x243f_6a88_85a3_08d3;
const K2: u64 = 0x1319_8a2e_0370_7345;

/// Multiplies into 128 bits and folds the halves together: every input bit
/// reaches the middle of the output.
#[inline]
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl FastHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.acc = fold(self.acc ^ word, K1);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The tail's length keeps "ab" and "ab\0" apart.
            self.acc = fold(self.acc ^ u64::from_le_bytes(word), K2 ^ rest.len() as u64);
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        fold(self.acc, K2)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn distinct_keys_spread_over_all_bits() {
        let builder = FastHashBuilder::new();
        let mut seen = HashSet::new();
        let mut ones = [0u32; 64];
        for i in 0..100_000u64 {
            let hash = builder.hash_one(format!("key_{i:016x}"));
            assert!(seen.insert(hash), "collision at {i}");
            for (bit, count) in ones.iter_mut().enumerate() {
                *count += u32::from(hash >> bit & 1 == 1);
            }
        }
        for (bit, count) in ones.iter().enumerate() {
            assert!(
                (45_000..55_000).contains(count),
                "bit {bit} set {count} times"
            );
        }
        for i in 0..100_000u64 {
            assert!(seen.insert(builder.hash_one(i)), "u64 collision at {i}");
        }
    }

    #[test]
    fn seeds_differ_and_hashes_are_stable() {
        let (a, b) = (FastHashBuilder::new(), FastHashBuilder::new());
        assert_ne!(a.hash_one("k"), b.hash_one("k"));
        assert_eq!(a.hash_one("k"), a.clone().hash_one("k"));
        assert_ne!(a.hash_one("ab"), a.hash_one("ab\0"));
    }
}
