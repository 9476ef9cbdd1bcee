//! The key format of SPEC §1.1 and §1.2: the known-answer vector, generation,
//! parsing and its errors, round trips, and mutation resistance.

use lumyx_keys::{
    ApiKey, ApiKeyRef, Error, KEY_LEN, KeyDigest, KeyFormat, KeyHint, KeyId, KeyPrefix,
};
use proptest::prelude::*;
use sha2::Digest as _;

const KAT_RANDOM: &str = "0123456789abcdef0123456789abcdef0123456789abcdef012";
const KAT_KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
const KAT_DIGEST: &str = "4e58d9f4757ccfc351c2d36db31a68179b00ad0b87f4fb73cdb9f775120d5e01";
const KAT_ID: &str = "key_4e58d9f4757ccfc3";
const KAT_HINT: &str = "nova_0123…6dce";

#[test]
fn known_answer_vector_of_spec_1_1() {
    assert_eq!(KAT_KEY, format!("nova_{KAT_RANDOM}ece76dce"));
    assert_eq!(
        crc32fast::hash(b"123456789"),
        0xcbf4_3926,
        "CRC-32/ISO-HDLC check value"
    );

    let key = ApiKeyRef::parse(KAT_KEY).expect("the SPEC vector parses");
    assert_eq!(key.expose_secret(), KAT_KEY);
    assert_eq!(key.digest().to_hex(), KAT_DIGEST);
    assert_eq!(key.digest().to_string(), KAT_DIGEST);
    assert_eq!(key.id().to_string(), KAT_ID);
    assert_eq!(key.hint().to_string(), KAT_HINT);
    assert_eq!(key.prefix(), KeyPrefix::NOVA);
}

/// An RNG that replays fixed bytes, to mint the known-answer key.
struct ReplayRng(Vec<u8>);

impl rand_core::TryRngCore for ReplayRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("keys are minted with try_fill_bytes")
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("keys are minted with try_fill_bytes")
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let taken: Vec<u8> = self.0.drain(..dst.len()).collect();
        dst.copy_from_slice(&taken);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ReplayRng {}

#[test]
fn generation_from_known_randomness_gives_the_known_key() {
    // 51 digits come from 26 bytes; the last nibble is unused.
    let bytes = hex::decode(format!("{KAT_RANDOM}f")).unwrap();
    let key = KeyFormat::NOVA
        .generate_with(&mut ReplayRng(bytes))
        .unwrap();
    assert_eq!(key.expose_secret(), KAT_KEY);
}

/// An RNG that always fails, as an exhausted or broken OS source would.
struct BrokenRng;

#[derive(Debug)]
struct Unavailable;

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("entropy source unavailable")
    }
}

impl std::error::Error for Unavailable {}

impl rand_core::TryRngCore for BrokenRng {
    type Error = Unavailable;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Err(Unavailable)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Err(Unavailable)
    }

    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        Err(Unavailable)
    }
}

impl rand_core::TryCryptoRng for BrokenRng {}

#[test]
fn an_rng_failure_is_an_error_not_a_panic() {
    use std::error::Error as _;
    let err = KeyFormat::NOVA.generate_with(&mut BrokenRng).unwrap_err();
    assert!(matches!(err, Error::Random(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the random number generator failed, so no key was generated"
    );
    // The RNG's own error is the cause, as it was.
    let cause = err.source().expect("the RNG's error is kept");
    assert!(cause.downcast_ref::<Unavailable>().is_some(), "{cause:?}");
    assert_eq!(cause.to_string(), "entropy source unavailable");
}

#[test]
fn generated_keys_are_canonical_and_distinct() {
    let keys: Vec<ApiKey> = (0..64).map(|_| ApiKey::generate().unwrap()).collect();
    for key in &keys {
        let text = key.expose_secret();
        assert_eq!(text.len(), KEY_LEN);
        assert!(text.starts_with("nova_"));
        assert!(
            text[5..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(&ApiKey::parse(text).unwrap(), key);
    }
    let distinct: std::collections::HashSet<&str> =
        keys.iter().map(ApiKey::expose_secret).collect();
    assert_eq!(distinct.len(), keys.len());
}

#[test]
fn parse_checks_length_first_and_says_expected_and_actual() {
    assert!(matches!(
        ApiKeyRef::parse(&KAT_KEY[..63]),
        Err(Error::Length {
            expected: 64,
            actual: 63
        })
    ));
    assert!(matches!(
        ApiKeyRef::parse(""),
        Err(Error::Length {
            expected: 64,
            actual: 0
        })
    ));
    // A wrong prefix and bad characters in a wrong length still say length.
    assert!(matches!(
        ApiKeyRef::parse("sk-XYZ"),
        Err(Error::Length {
            expected: 64,
            actual: 6
        })
    ));
    let message = ApiKeyRef::parse(&KAT_KEY[..63]).unwrap_err().to_string();
    assert!(
        message.contains("64") && message.contains("63"),
        "{message}"
    );
}

#[test]
fn parse_checks_prefix_second() {
    let other = KAT_KEY.replacen("nova_", "nava_", 1);
    assert!(matches!(
        ApiKeyRef::parse(&other),
        Err(Error::Prefix { expected }) if expected == KeyPrefix::NOVA
    ));
    // A right-length text with a wrong prefix and bad characters says prefix.
    let garbage = "x".repeat(64);
    assert!(matches!(
        ApiKeyRef::parse(&garbage),
        Err(Error::Prefix { .. })
    ));
    let custom = KeyFormat::new("acme_").unwrap();
    assert!(matches!(
        custom.parse(KAT_KEY),
        Err(Error::Prefix { expected }) if expected == custom.prefix()
    ));
}

#[test]
fn parse_checks_characters_third_with_the_position() {
    let mut upper = KAT_KEY.to_owned();
    upper.replace_range(20..21, "A");
    assert!(matches!(
        ApiKeyRef::parse(&upper),
        Err(Error::Character { position: 20 })
    ));
    // Uppercase hex is refused as non-canonical, even where it would be
    // the right digit.
    let shouted = format!("nova_{}", KAT_KEY[5..].to_uppercase());
    assert!(matches!(
        ApiKeyRef::parse(&shouted),
        Err(Error::Character { position: 15 })
    ));
    // The first bad position is the one reported.
    let mut two_bad = KAT_KEY.to_owned();
    two_bad.replace_range(60..61, "g");
    two_bad.replace_range(7..8, "z");
    assert!(matches!(
        ApiKeyRef::parse(&two_bad),
        Err(Error::Character { position: 7 })
    ));
    // A bad character in the checksum digits is a character error too.
    let mut bad_checksum_digit = KAT_KEY.to_owned();
    bad_checksum_digit.replace_range(63..64, "x");
    assert!(matches!(
        ApiKeyRef::parse(&bad_checksum_digit),
        Err(Error::Character { position: 63 })
    ));
}

#[test]
fn a_non_ascii_character_is_a_character_error_at_its_offset() {
    // "é" takes two bytes, so the text keeps its 64-byte length.
    for position in 5..63 {
        let mut text = KAT_KEY.as_bytes()[..position].to_vec();
        text.extend_from_slice("é".as_bytes());
        text.extend_from_slice(&KAT_KEY.as_bytes()[position + 2..]);
        let text = String::from_utf8(text).unwrap();
        assert!(matches!(
            ApiKeyRef::parse(&text),
            Err(Error::Character { position: at }) if at == position
        ));
    }
}

#[test]
fn parse_checks_the_checksum_last() {
    let wrong = KAT_KEY.replace("ece76dce", "ece76dcf");
    assert!(matches!(ApiKeyRef::parse(&wrong), Err(Error::Checksum)));
}

#[test]
fn every_error_message_leaves_the_input_out() {
    let mut mistyped = KAT_KEY.to_owned();
    mistyped.replace_range(30..31, "0");
    let cases = [
        KAT_KEY[..60].to_owned(),
        KAT_KEY.replacen("nova", "novb", 1),
        KAT_KEY.replace('a', "Z"),
        mistyped,
    ];
    for case in &cases {
        let err = ApiKeyRef::parse(case).unwrap_err();
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(&case[5..20]), "{shown} echoes the input");
        }
    }
}

#[test]
fn every_single_character_substitution_is_rejected() {
    const ALPHABET: &[u8] = b"0123456789abcdefABCDEFghijklmnopqrstuvwxyz_-!~. ";
    let original = KAT_KEY.as_bytes();
    let mut tried = 0;
    for position in 0..KEY_LEN {
        for &replacement in ALPHABET {
            if replacement == original[position] {
                continue;
            }
            let mut mutated = original.to_vec();
            mutated[position] = replacement;
            let mutated = String::from_utf8(mutated).unwrap();
            assert!(
                ApiKeyRef::parse(&mutated).is_err(),
                "substitution at {position} by {:?} was accepted",
                replacement as char
            );
            tried += 1;
        }
    }
    assert!(tried > 64 * 40);
}

#[test]
fn every_adjacent_transposition_is_rejected() {
    let original = KAT_KEY.as_bytes();
    let mut tried = 0;
    for position in 0..KEY_LEN - 1 {
        if original[position] == original[position + 1] {
            continue; // swapping equal characters changes nothing
        }
        let mut mutated = original.to_vec();
        mutated.swap(position, position + 1);
        let mutated = String::from_utf8(mutated).unwrap();
        assert!(
            ApiKeyRef::parse(&mutated).is_err(),
            "transposition at {position} was accepted"
        );
        tried += 1;
    }
    assert!(tried > 50);
}

#[test]
fn custom_prefixes_follow_spec_1_1() {
    for valid in ["ab_", "a_", "acme_", "sk2_", "abcdefghijklmno_"] {
        let format = KeyFormat::new(valid).unwrap_or_else(|err| panic!("{valid}: {err}"));
        assert_eq!(format.prefix().as_str(), valid);
        assert_eq!(format.random_len(), 64 - valid.len() - 8);
        assert!(format.random_len() >= 32);
    }
    for invalid in [
        "",
        "_",
        "a",
        "ab",
        "Ab_",
        "1a_",
        "_a_",
        "a-b_",
        "ab__",
        "ab_c",
        "abcdefghijklmnop_",
        "né_",
    ] {
        let err = KeyFormat::new(invalid).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidPrefix { prefix, .. } if prefix == invalid),
            "{invalid:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid key prefix"), "{err}");
    }
}

#[test]
fn text_forms_of_public_values_round_trip() {
    let key = ApiKeyRef::parse(KAT_KEY).unwrap();
    let digest = key.digest();
    assert_eq!(KeyDigest::from_hex(KAT_DIGEST).unwrap(), digest);
    assert_eq!(KeyDigest::from_base64(&digest.to_base64()).unwrap(), digest);
    assert_eq!(digest.to_base64().len(), 44);
    assert!(KeyDigest::from_hex(&KAT_DIGEST[..62]).is_err());
    assert!(KeyDigest::from_base64("AAAA").is_err());

    assert_eq!(KAT_ID.parse::<KeyId>().unwrap(), key.id());
    for bad_id in [
        "key_4e58d9f4757ccfc",
        "key_4E58D9F4757CCFC3",
        "kee_4e58d9f4757ccfc3",
        "key_4e58d9f4757ccfcz",
    ] {
        assert!(bad_id.parse::<KeyId>().is_err(), "{bad_id}");
    }

    assert_eq!(KAT_HINT.parse::<KeyHint>().unwrap(), key.hint());
    assert_eq!(key.hint().prefix(), "nova_");
    for bad_hint in [
        "nova_0123...6dce",
        "nova_0123…6dc",
        "Nova_0123…6dce",
        "nova_012…6dce",
        "é…6dce",
    ] {
        assert!(bad_hint.parse::<KeyHint>().is_err(), "{bad_hint}");
    }

    let json = serde_json::to_string(&(digest, key.id(), key.hint())).unwrap();
    assert_eq!(json, format!(r#"["{KAT_DIGEST}","{KAT_ID}","{KAT_HINT}"]"#));
    let back: (KeyDigest, KeyId, KeyHint) = serde_json::from_str(&json).unwrap();
    assert_eq!(back, (digest, key.id(), key.hint()));
}

#[test]
fn digest_equality_sees_every_byte() {
    let digest = KeyDigest::from_hex(KAT_DIGEST).unwrap();
    assert_eq!(digest, KeyDigest::from_bytes(*digest.as_bytes()));
    for position in 0..32 {
        for flip in [0x01, 0x80] {
            let mut bytes = *digest.as_bytes();
            bytes[position] ^= flip;
            assert_ne!(KeyDigest::from_bytes(bytes), digest, "byte {position}");
        }
    }
}

#[test]
fn owned_and_borrowed_keys_agree() {
    let owned: ApiKey = KAT_KEY.parse().unwrap();
    let borrowed = ApiKeyRef::try_from(KAT_KEY).unwrap();
    assert_eq!(owned.as_key_ref(), borrowed);
    assert_eq!(borrowed.to_owned_key(), owned);
    assert_eq!(ApiKey::try_from(KAT_KEY).unwrap(), owned);
    assert_eq!(owned.digest(), borrowed.digest());
    assert_eq!(owned.id(), borrowed.id());
    assert_eq!(owned.hint(), borrowed.hint());
    assert_ne!(ApiKey::generate().unwrap(), owned);
}

/// Valid prefixes of SPEC §1.1: 2 to 16 characters, `[a-z][a-z0-9]*_`.
fn valid_prefix() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,14}_"
}

proptest! {
    #[test]
    fn generate_display_parse_round_trips(prefix in valid_prefix()) {
        let format = KeyFormat::new(&prefix).unwrap();
        let key = format.generate().unwrap();
        let text = key.expose_secret().to_owned();
        prop_assert_eq!(text.len(), KEY_LEN);
        let parsed = format.parse(&text).unwrap();
        prop_assert_eq!(parsed.expose_secret(), text.as_str());
        prop_assert_eq!(&parsed.to_owned_key(), &key);
        prop_assert_eq!(parsed.hint(), key.hint());
        let hint = parsed.hint();
        prop_assert_eq!(hint.prefix(), prefix.as_str());
        prop_assert_eq!(parsed.hint().to_string().parse::<KeyHint>().unwrap(), key.hint());
        prop_assert_eq!(parsed.id().to_string().parse::<KeyId>().unwrap(), key.id());
        prop_assert_eq!(parsed.digest().to_hex().parse::<KeyDigest>().unwrap(), key.digest());
        // The digest is the SHA-256 of the key's 64 bytes (SPEC §1.3).
        let standard: [u8; 32] = sha2::Sha256::digest(text.as_bytes()).into();
        prop_assert_eq!(*key.digest().as_bytes(), standard);
    }

    #[test]
    fn mutations_of_generated_keys_fail_at_the_right_check(
        prefix in valid_prefix(),
        position in 0..KEY_LEN,
        replacement in proptest::char::range('!', '~'),
        transpose in any::<bool>(),
    ) {
        let format = KeyFormat::new(&prefix).unwrap();
        let key = format.generate().unwrap();
        let mut bytes = key.expose_secret().as_bytes().to_vec();
        if transpose {
            let position = position.min(KEY_LEN - 2);
            prop_assume!(bytes[position] != bytes[position + 1]);
            bytes.swap(position, position + 1);
        } else {
            prop_assume!(bytes[position] != replacement as u8);
            bytes[position] = replacement as u8;
        }
        let mutated = String::from_utf8(bytes).unwrap();
        let first_change = mutated
            .bytes()
            .zip(key.expose_secret().bytes())
            .position(|(a, b)| a != b)
            .unwrap();
        let err = format.parse(&mutated).unwrap_err();
        if first_change < prefix.len() {
            prop_assert!(
                matches!(err, Error::Prefix { expected } if expected == format.prefix()),
                "{err:?}"
            );
        } else if let Some(offset) = mutated
            .bytes()
            .skip(prefix.len())
            .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            prop_assert!(
                matches!(err, Error::Character { position } if position == prefix.len() + offset),
                "{err:?}"
            );
        } else {
            // CRC-32 detects every error burst of up to 32 bits, which is
            // what one substituted or two swapped hex digits are.
            prop_assert!(matches!(err, Error::Checksum), "{err:?}");
        }
    }

    #[test]
    fn arbitrary_strings_never_panic_the_parser(text in any::<String>()) {
        let _ = ApiKeyRef::parse(&text);
        let _ = text.parse::<KeyId>();
        let _ = text.parse::<KeyHint>();
        let _ = text.parse::<KeyDigest>();
        let _ = KeyPrefix::new(&text);
    }

    #[test]
    fn key_shaped_strings_never_panic_and_errors_hide_them(
        body in "[0-9a-fA-Z_\\-é]{50,62}"
    ) {
        let text = format!("nova_{body}");
        if let Err(err) = ApiKeyRef::parse(&text) {
            let shown = format!("{err} {err:?}");
            prop_assert!(!shown.contains(&body));
        }
    }
}
