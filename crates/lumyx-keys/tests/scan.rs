//! The secret scanner of SPEC §1.5.

use lumyx_keys::{ApiKey, KeyFormat, Scanner};

const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

fn positions(text: &str) -> Vec<(usize, usize, usize)> {
    Scanner::default()
        .scan(text)
        .map(|finding| (finding.offset, finding.line, finding.column))
        .collect()
}

#[test]
fn finds_keys_between_non_word_characters() {
    for (text, offset) in [
        (KEY.to_owned(), 0),
        (format!("export NOVA_AI_API_KEY={KEY}"), 23),
        (format!("\"{KEY}\","), 1),
        (format!("url?key={KEY}&x=1"), 8),
        (format!("é{KEY}é"), 2),
    ] {
        assert_eq!(
            positions(&text),
            vec![(offset, 1, text[..offset].chars().count() + 1)],
            "{text}"
        );
    }
}

#[test]
fn ignores_keys_glued_to_word_characters() {
    for text in [
        format!("x{KEY}"),
        format!("{KEY}0"),
        format!("_{KEY}"),
        format!("{KEY}_"),
        format!("9{KEY}a"),
    ] {
        assert!(positions(&text).is_empty(), "{text}");
    }
}

#[test]
fn reports_only_candidates_whose_checksum_holds() {
    let wrong = KEY.replace("ece76dce", "ece76dcf");
    let upper = KEY.to_uppercase().replacen("NOVA_", "nova_", 1);
    let short = &KEY[..63];
    let text = format!("{wrong}\n{upper}\n{short}\n{KEY}\n");
    assert_eq!(positions(&text), vec![(3 * 65 - 1, 4, 1)]);
}

#[test]
fn counts_lines_and_columns_and_finds_every_key() {
    let second = ApiKey::generate().unwrap();
    let text = format!("a\n  {KEY} {}\n\tlast: {KEY}", second.expose_secret());
    let findings: Vec<_> = Scanner::default().scan(&text).collect();
    let places: Vec<_> = findings.iter().map(|f| (f.line, f.column)).collect();
    assert_eq!(places, vec![(2, 3), (2, 68), (3, 8)]);
    assert_eq!(findings[1].hint, second.hint());
    for finding in &findings {
        assert_eq!(&text[finding.offset..finding.offset + 5], "nova_");
    }
}

#[test]
fn overlapping_prefixes_do_not_hide_a_key() {
    let text = format!("nova_nova_{KEY}");
    // `nova_nova_…` is glued to the key by `_`, so nothing is reported ...
    assert!(positions(&text).is_empty());
    // ... but a prefix that fails to be a key does not swallow the one after it.
    let text = format!("nova_ {KEY}");
    assert_eq!(positions(&text), vec![(6, 1, 7)]);
}

#[test]
fn scans_for_a_custom_format() {
    let format = KeyFormat::new("acme_").unwrap();
    let key = format.generate().unwrap();
    let text = format!("{KEY} {}", key.expose_secret());
    let findings: Vec<_> = Scanner::new(format).scan(&text).collect();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].offset, 65);
    assert_eq!(findings[0].hint, key.hint());
}
