//! Which hash slot of a Redis Cluster a key lives in.

/// How many hash slots a Redis Cluster has.
pub const CLUSTER_SLOTS: u16 = 16_384;

/// The Redis Cluster hash slot of `key`, as Redis's `CLUSTER KEYSLOT`
/// answers it: the CRC16 (XMODEM) of its hash tag (what lies between its
/// first `{` and the next `}`, when that is not empty), or of the whole key,
/// modulo 16384.
///
/// ```
/// use lumyx_redis::hash_slot;
///
/// // A key's limiter state and usage share the slot of their tag.
/// assert_eq!(hash_slot(b"lumyx:rl:{key_4e58d9f4757ccfc3}"), 12934);
/// assert_eq!(hash_slot(b"lumyx:rl:{key_4e58d9f4757ccfc3}:u"), 12934);
/// assert_eq!(hash_slot(b"key_4e58d9f4757ccfc3"), 12934);
/// ```
pub fn hash_slot(key: &[u8]) -> u16 {
    let tag = key.iter().position(|&byte| byte == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&byte| byte == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16::State::<crc16::XMODEM>::calculate(tag.unwrap_or(key)) % CLUSTER_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_are_those_of_redis() {
        // `CLUSTER KEYSLOT` of a Redis 7 node.
        for (key, slot) in [
            ("123456789", 12739),
            ("foo", 12182),
            ("key_4e58d9f4757ccfc3", 12934),
            ("lumyx:rl:{key_4e58d9f4757ccfc3}", 12934),
            ("lumyx:rl:{key_4e58d9f4757ccfc3}:u", 12934),
            ("lumyx:rl:{%}", 13511),
            ("a{}b", 13694),
            ("{}", 15257),
            ("x{a}{b}", 15495),
            ("a{b", 13340),
            ("a}b{c}", 7365),
            ("", 0),
        ] {
            assert_eq!(hash_slot(key.as_bytes()), slot, "{key}");
        }
    }
}
