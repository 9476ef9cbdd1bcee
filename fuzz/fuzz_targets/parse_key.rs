//! Bytes → key parser. Whatever parses must write back to the same bytes, and
//! the derived public forms must read back too; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lumyx_keys::{ApiKey, ApiKeyRef, KeyFormat, KeyHint, KeyId, Scanner};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = ApiKeyRef::parse(text) {
        assert_eq!(key.expose_secret().as_bytes(), data);
        let owned: ApiKey = text.parse().expect("a borrowed parse implies an owned one");
        assert_eq!(owned.expose_secret(), text);
        assert_eq!(owned.as_key_ref(), key);
        assert_eq!(key.hint().to_string().parse::<KeyHint>().unwrap(), key.hint());
        assert_eq!(key.id().to_string().parse::<KeyId>().unwrap(), key.id());
        assert!(!format!("{key:?} {owned}").contains(text));
    }
    // A custom format whose prefix is the text's own takes the same bytes.
    if let Some(end) = text.find('_') {
        if let Ok(format) = KeyFormat::new(&text[..=end]) {
            if let Ok(key) = format.parse(text) {
                assert_eq!(key.expose_secret(), text);
            }
        }
    }
    for finding in Scanner::default().scan(text) {
        assert_eq!(&text[finding.offset..finding.offset + 5], "nova_");
    }
});
