//! Text that came from the client (a model name, a path, an id, a content
//! type, a map key), made fit to repeat in an error message.
//!
//! Every error of this crate that repeats such text passes it through
//! [`shown`], so a key pasted into the wrong place is never sent back whole,
//! and a huge value never makes a huge message.

use std::borrow::Cow;

use lumyx_keys::redact;

/// Most characters of one client text an error message shows, the `…` that
/// marks a cut included.
pub(crate) const MAX_SHOWN_CHARS: usize = 64;

/// `text` as an error message may show it.
///
/// First every key-shaped part is replaced by its first 4 and last 4 letters
/// and digits around `…` ([`lumyx_keys::redact`]: a run of 32 or more ASCII
/// letters and digits, or pieces of 8 or more joined by single separators
/// that hold 32 in all), so a whole API key becomes exactly its hint
/// (`nova_0123…6dce`), also when a line break, a space or groups of 16 split
/// it. Then the result is cut to at most [`MAX_SHOWN_CHARS`] characters (not
/// bytes): a longer one keeps its first 63 and ends in `…`. Text that needs
/// neither is returned as it is, without allocating.
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    let redacted = redact(text);
    let mut starts = redacted.char_indices().map(|(at, _)| at);
    let last_kept = starts.nth(MAX_SHOWN_CHARS - 1);
    let longer = starts.next().is_some();
    match last_kept {
        Some(cut) if longer => Cow::Owned(format!("{}…", &redacted[..cut])),
        _ => redacted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

    #[test]
    fn a_key_becomes_its_hint() {
        assert_eq!(shown(KEY), "nova_0123…6dce");
        assert_eq!(
            shown(&format!("/v1/models/{KEY}")),
            "/v1/models/nova_0123…6dce"
        );
    }

    #[test]
    fn long_text_is_cut_to_64_characters_ending_in_an_ellipsis() {
        let text = "ab-".repeat(30);
        let cut = shown(&text);
        assert_eq!(cut.chars().count(), MAX_SHOWN_CHARS);
        assert_eq!(cut, format!("{}…", &text[..MAX_SHOWN_CHARS - 1]));
        let wide = "ü".repeat(MAX_SHOWN_CHARS + 1);
        assert_eq!(
            shown(&wide),
            format!("{}…", "ü".repeat(MAX_SHOWN_CHARS - 1))
        );
    }

    #[test]
    fn short_text_is_borrowed_as_it_is() {
        let exact = "ü".repeat(MAX_SHOWN_CHARS);
        for text in ["", "gpt-4o-mini", "text/plain; charset=utf-8", &exact] {
            assert!(
                matches!(shown(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    #[test]
    fn showing_twice_changes_nothing_more() {
        for text in [KEY.to_owned(), "x-".repeat(100), format!("{KEY}{KEY}")] {
            let once = shown(&text).into_owned();
            assert_eq!(shown(&once), once);
        }
    }
}
