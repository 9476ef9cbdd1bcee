//! Redaction of key-shaped text, for anything that repeats what a client
//! sent (an error message naming a model, a path, an id) or goes to a log.
//!
//! The scanner finds *real* keys (checksum and all); redaction must also
//! hide keys that are mistyped, cut short, upper-cased, of another service's
//! format, or split into pieces by whatever came between a copy and a paste
//! (a line break, a space, a zero-width space, a `%0A`, groups of 16 joined
//! by `-`), so it looks at the shape only. A key of any format has a run of
//! at least 40 hex digits after its prefix's `_`, a `nova_` key 59; a typo
//! that puts a letter among them does not split the run, and a separator
//! that splits it leaves pieces that [`redact`] joins again.

use std::borrow::Cow;

/// The fewest ASCII letters and digits a key-shaped part holds, all its
/// pieces together: 32, the fewest random digits (128 bits) a key format may
/// have. See [`redact`] for the whole rule.
pub const REDACT_MIN_RUN: usize = 32;

/// The shortest run of ASCII letters and digits that [`redact`] joins to its
/// neighbours as a piece of one key-shaped part: 8. Shorter runs are the
/// words of ordinary names (`gpt-4o-mini`, the 4-digit groups of a UUID),
/// and they break a chain of pieces. See [`redact`] for the whole rule.
pub const REDACT_MIN_PIECE: usize = 8;

/// How many characters a redacted part keeps at each end, as a hint does.
const SHOWN_CHARS: usize = 4;

/// `text` with every key-shaped part replaced by its hint.
///
/// # The rule
///
/// A *piece* is a run of at least [`REDACT_MIN_PIECE`] (8) ASCII letters and
/// digits. Pieces follow each other in one *chain* when exactly one
/// separator stands between them: any one character that is not an ASCII
/// letter or digit (`-`, a space, `\n`, `.`, `%`, `/`, `_`, a zero-width
/// space or any other non-ASCII character), or the line break `\r\n`. A
/// chain ends at a shorter run, at two or more separators in a row, and at
/// either end of the text. A chain of at least [`REDACT_MIN_RUN`] (32)
/// letters and digits in all, its separators not counted, is key-shaped,
/// and so is a single piece of 32 or more.
///
/// A key-shaped part keeps its first 4 and last 4 letters and digits with
/// `…` between them; the separators inside it go with what they separated.
/// The text around it is kept: a key prefix such as `nova_` is a run of 4,
/// which is no piece, so a well-formed key becomes exactly its
/// [`KeyHint`](crate::KeyHint), and so does a key cut by single separators
/// into pieces of 8 or more, however many (groups of 16 joined by `-`, a
/// line break anywhere, a `%0A` in its middle).
///
/// Text without a key-shaped part is returned as it is, without allocating:
/// ordinary words, model names (`gpt-4o-mini-2024-07-18`,
/// `meta-llama/Llama-3.1-70B-Instruct`: their pieces of 8 or more are too
/// few), UUIDs (only their first and last groups are pieces, and they do not
/// touch), API paths, and ids such as `conv_…` with up to 31 letters and
/// digits after the `_`.
///
/// # Limits
///
/// The rule errs on the side of hiding: long pieces that touch are shortened
/// even when they are no key, e.g. three long words in a row
/// (`internationalization responsibilities standardization`), or an id of
/// 24 or more letters and digits right before `/messages`. And a piece
/// shorter than 8 is not joined: a key cut 7 digits from one end shows those
/// 7 digits beside its hint, and a key shown in groups shorter than 8 (such
/// as 4) is not recognised at all.
///
/// ```
/// use lumyx_keys::redact;
///
/// let key = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";
/// let text = format!("model {key} not found");
/// assert_eq!(redact(&text), "model nova_0123…6dce not found");
/// // A mistyped or truncated key is hidden too.
/// assert_eq!(redact("sk_0123456789ABCDEF0123456789abcdef0123"), "sk_0123…0123");
/// // So is a key split by a line break, or shown in groups.
/// let split = format!("{}\n{}", &key[..34], &key[34..]);
/// assert_eq!(redact(&split), "nova_0123…6dce");
/// assert_eq!(
///     redact("nova_0123456789abcdef-0123456789abcdef-0123456789abcdef-012ece76dce"),
///     "nova_0123…6dce"
/// );
/// assert_eq!(redact("gpt-4o-mini"), "gpt-4o-mini");
/// assert_eq!(
///     redact("550e8400-e29b-41d4-a716-446655440000"),
///     "550e8400-e29b-41d4-a716-446655440000"
/// );
/// ```
pub fn redact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Where the text not yet copied to `out` starts.
    let mut copied = 0;
    // The chain of pieces being read: where its first piece starts, where
    // its last one ends, and its letters and digits.
    let mut chain: Option<(usize, usize, usize)> = None;
    let mut at = 0;
    loop {
        while at < bytes.len() && !bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_alphanumeric() {
            at += 1;
        }
        let len = at - start;
        let piece = len >= REDACT_MIN_PIECE;
        chain = match chain {
            // Every boundary is next to an ASCII byte, hence a char boundary.
            Some((first, last, count)) if piece && one_separator(&text[last..start]) => {
                Some((first, at, count + len))
            }
            _ => {
                if let Some((first, last, count)) = chain
                    && count >= REDACT_MIN_RUN
                {
                    let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
                    out.push_str(&text[copied..first]);
                    out.push_str(&text[first..first + SHOWN_CHARS]);
                    out.push('…');
                    out.push_str(&text[last - SHOWN_CHARS..last]);
                    copied = last;
                }
                piece.then_some((start, at, len))
            }
        };
        if len == 0 {
            break;
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Whether `gap`, the text between two runs, is one separator.
fn one_separator(gap: &str) -> bool {
    let mut chars = gap.chars();
    chars.next().is_some() && (chars.next().is_none() || gap == "\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiKey;

    #[test]
    fn every_key_becomes_its_hint() {
        for _ in 0..100 {
            let key = ApiKey::generate().unwrap();
            let text = format!("a {} b \"{}\"", key.expose_secret(), key.expose_secret());
            let hint = key.hint().to_string();
            assert_eq!(redact(&text), format!("a {hint} b \"{hint}\""));
        }
    }

    #[test]
    fn damaged_keys_are_hidden_too() {
        let key = ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let damaged = [
            secret.to_uppercase(),
            secret[..40].to_owned(),
            secret[5..].to_owned(),
            format!("{}G{}", &secret[..30], &secret[31..]),
            format!("x{secret}x"),
            secret.replace("nova_", "nova-"),
        ];
        for text in damaged {
            let redacted = redact(&text);
            // No run of 12 secret digits survives.
            for window in secret.as_bytes()[5..].windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !redacted.to_lowercase().contains(window),
                    "{redacted} shows {window}"
                );
            }
        }
    }

    /// What a client may put inside a key: a hyphen, a space, a line break
    /// (both kinds), a zero-width space, a percent-encoded line break, a dot.
    const SEPARATORS: [&str; 7] = ["-", " ", "\n", "\r\n", "\u{200B}", "%0A", "."];

    /// Fails when `redacted` shows 12 consecutive random or checksum digits
    /// of `secret`, compared in lowercase and with the separators between
    /// them left out (a key in pieces of 8 shows no 12 digits in a row).
    #[track_caller]
    fn assert_hides(secret: &str, text: &str, redacted: &str) {
        for part in redacted.split('…') {
            let shown: String = part
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            for window in secret.as_bytes()[5..].windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !shown.contains(window),
                    "{text:?} became {redacted:?}, which shows {window}"
                );
            }
        }
    }

    /// `key` cut at each of `cuts` (offsets into it), `separator` between pieces.
    fn split(key: &str, cuts: &[usize], separator: &str) -> String {
        let mut text = String::new();
        let mut from = 0;
        for &cut in cuts {
            text.push_str(&key[from..cut]);
            text.push_str(separator);
            from = cut;
        }
        text.push_str(&key[from..]);
        text
    }

    /// Offsets in a `nova_` key where its 59 random and checksum digits
    /// split into two pieces of at least 8.
    const LONG_PIECE_CUTS: std::ops::RangeInclusive<usize> = 5 + 8..=64 - 8;

    #[test]
    fn a_key_split_anywhere_by_one_separator_is_hidden() {
        for _ in 0..10 {
            let key = ApiKey::generate().unwrap();
            let secret = key.expose_secret();
            let hint = key.hint().to_string();
            for separator in SEPARATORS {
                for cut in 1..secret.len() {
                    let text = split(secret, &[cut], separator);
                    assert_hides(secret, &text, &redact(&text));
                }
                for cut in LONG_PIECE_CUTS {
                    let text = split(secret, &[cut], separator);
                    assert_eq!(redact(&text), hint, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn a_key_split_in_three_pieces_of_8_or_more_becomes_its_hint() {
        let key = ApiKey::generate().unwrap();
        let secret = key.expose_secret();
        let hint = key.hint().to_string();
        for first in SEPARATORS {
            for second in SEPARATORS {
                for one in LONG_PIECE_CUTS {
                    for two in one + 8..=*LONG_PIECE_CUTS.end() {
                        let mut text = split(secret, &[one], first);
                        let at = two + first.len();
                        text.insert_str(at, second);
                        let redacted = redact(&text);
                        assert_hides(secret, &text, &redacted);
                        assert_eq!(redacted, hint, "{text:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_key_shown_in_groups_becomes_its_hint() {
        for _ in 0..10 {
            let key = ApiKey::generate().unwrap();
            let secret = key.expose_secret();
            let hint = key.hint().to_string();
            for separator in SEPARATORS {
                for size in [8, 10, 16, 20] {
                    // The whole key in groups, and its digits after the prefix.
                    let whole: Vec<usize> = (size..secret.len()).step_by(size).collect();
                    let digits: Vec<usize> = (5 + size..secret.len()).step_by(size).collect();
                    for cuts in [whole, digits] {
                        let text = split(secret, &cuts, separator);
                        let redacted = redact(&text);
                        assert_hides(secret, &text, &redacted);
                        if secret.len() - cuts.last().unwrap() >= 8 && cuts[0] >= 5 + 8 {
                            assert_eq!(redacted, hint, "{text:?}");
                        }
                    }
                }
                // In a sentence.
                let text = format!(
                    "model '{}' not found",
                    split(secret, &[21, 37, 53], separator)
                );
                assert_eq!(redact(&text), format!("model '{hint}' not found"));
            }
        }
    }

    #[test]
    fn short_runs_and_other_text_are_kept() {
        for text in [
            "",
            "gpt-4o-mini",
            "gpt-4o-mini-2024-07-18",
            "meta-llama/Llama-3.1-70B-Instruct",
            "meta-llama/Meta-Llama-3.1-405B-Instruct-Turbo",
            "mistralai/Mixtral-8x22B-Instruct-v0.1",
            "sentence-transformers/all-MiniLM-L6-v2",
            "conv_0123456789abcdef01234567",
            "conv_0123456789abcdef0123456789abcde",
            "550e8400-e29b-41d4-a716-446655440000",
            "urn:uuid:550e8400-e29b-41d4-a716-446655440000",
            "/v1/models/gpt-4o-mini",
            "/v1/conversations/conv_0123456789abcdef0123456789abcde",
            "/v1/conversations/conv_68a1f2/messages",
            "/v1/keys/key_4e58d9f4757ccfc3/usage",
            "/v2/models/550e8400-e29b-41d4-a716-446655440000",
            "application/x-www-form-urlencoded; charset=utf-8",
            "The model answered in a sentence of ordinary words.",
            "ünïcödé ✓",
            "0123456789abcdef0123456789abcde",
            // Long pieces, but too few letters and digits in all.
            "0123456789abcdef-0123456789abcde",
            // Enough letters and digits, but pieces too short to join.
            "0123456-89abcdef0123456789abcdef0123",
            // Pieces joined by two characters.
            "0123456789abcdef0--123456789abcdef",
        ] {
            assert!(
                matches!(redact(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
        assert_eq!(redact("ü0123456789abcdef0123456789abcdef✓"), "ü0123…cdef✓");
        assert_eq!(redact("ThisIsAnIdentifierOfThirtyTwoChr"), "This…oChr");
    }
}
