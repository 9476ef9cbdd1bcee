//! Text that came from the client (a model name, a path, an id, a content
//! type, a map key) shows in an error only after every key-shaped part is
//! replaced by its hint, and cut to at most 64 characters.

use lumyx_api_types::{ApiError, ChatCompletionRequest, ErrorCode, parse_json};
use lumyx_keys::ApiKey;
use serde_json::{Value, json};

/// Most characters of one client text an error shows.
const MAX_SHOWN_CHARS: usize = 64;

/// Every constructor that repeats a client's text, given `text` wherever it
/// takes one, with the names of the constructors that also put it in `param`.
fn errors_repeating(text: &str) -> Vec<(&'static str, ApiError)> {
    vec![
        ("model_not_found", ApiError::model_not_found(text)),
        ("persona_not_found", ApiError::persona_not_found(text)),
        (
            "conversation_not_found",
            ApiError::conversation_not_found(text),
        ),
        ("key_not_found", ApiError::key_not_found(text)),
        ("not_found (method)", ApiError::not_found(text, "/v1/x")),
        ("not_found (path)", ApiError::not_found("GET", text)),
        (
            "method_not_allowed (method)",
            ApiError::method_not_allowed(text, "/v1/models"),
        ),
        (
            "method_not_allowed (path)",
            ApiError::method_not_allowed("PUT", text),
        ),
        (
            "unsupported_media_type",
            ApiError::unsupported_media_type(Some(text)),
        ),
        (
            "invalid_value",
            ApiError::invalid_value(text, "expected a string"),
        ),
        ("missing_field", ApiError::missing_field(text)),
    ]
}

/// Constructors whose `param` is the client's text.
const PARAM_FROM_TEXT: [&str; 2] = ["invalid_value", "missing_field"];

#[test]
fn every_constructor_shows_a_key_as_its_hint() {
    let key = ApiKey::generate().unwrap();
    let secret = key.expose_secret();
    let hint = key.hint().to_string();
    let text = format!("metadata.{secret}");
    let shown = format!("metadata.{hint}");
    for (name, error) in errors_repeating(&text) {
        let message = error.message();
        assert!(!message.contains(secret), "{name}: {message}");
        assert!(message.contains(&shown), "{name}: {message}");
        if PARAM_FROM_TEXT.contains(&name) {
            assert_eq!(error.param(), Some(shown.as_str()), "{name}");
        }
        let envelope = serde_json::to_string(&error).unwrap();
        assert!(!envelope.contains(secret), "{name}: {envelope}");
    }
    let error = ApiError::internal_error().with_param(&text);
    assert_eq!(error.param(), Some(shown.as_str()));
}

#[test]
fn every_constructor_cuts_client_text_to_64_characters() {
    // Two-byte characters: the cut counts characters, not bytes.
    let text = "é-".repeat(100);
    let kept: String = text.chars().take(MAX_SHOWN_CHARS - 1).collect();
    let shown = format!("{kept}…");
    assert_eq!(shown.chars().count(), MAX_SHOWN_CHARS);
    let too_long: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    for (name, error) in errors_repeating(&text) {
        let message = error.message();
        assert!(message.contains(&shown), "{name}: {message}");
        assert!(!message.contains(&too_long), "{name}: {message}");
        if PARAM_FROM_TEXT.contains(&name) {
            assert_eq!(error.param(), Some(shown.as_str()), "{name}");
        }
    }
    // Text of 64 characters is shown whole.
    let exact: String = text.chars().take(MAX_SHOWN_CHARS).collect();
    let error = ApiError::model_not_found(&exact);
    assert!(error.message().contains(&format!("'{exact}'")), "{error}");
}

#[test]
fn a_key_is_redacted_before_the_cut() {
    let key = ApiKey::generate().unwrap();
    let hint = key.hint().to_string();
    let text = format!("{}{}", key.expose_secret(), "-".repeat(100));
    // The hint (14 characters), then dashes up to 63 characters, then `…`.
    let shown = format!("{hint}{}…", "-".repeat(MAX_SHOWN_CHARS - 1 - 14));
    let error = ApiError::model_not_found(&text);
    assert!(error.message().contains(&format!("'{shown}'")), "{error}");
}

/// What a client may put inside a key: a hyphen, a space, a line break
/// (both kinds), a zero-width space, a percent-encoded line break, a dot.
const SEPARATORS: [&str; 7] = ["-", " ", "\n", "\r\n", "\u{200B}", "%0A", "."];

/// `key` with `separator` inserted at each of `cuts` (offsets into it).
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

/// Fails when `error`'s message or envelope shows 12 consecutive random or
/// checksum digits of `secret`, compared in lowercase and with separators
/// left out.
#[track_caller]
fn assert_hides(secret: &str, text: &str, error: &ApiError) {
    let envelope = serde_json::to_string(error).unwrap();
    for shown in [error.message(), envelope.as_str()] {
        for part in shown.split('…') {
            let digits: String = part
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_lowercase())
                .collect();
            for window in secret.as_bytes()[5..].windows(12) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(
                    !digits.contains(window),
                    "{text:?} gave {shown:?}, which shows {window}"
                );
            }
        }
    }
}

#[test]
fn a_key_split_by_a_separator_is_shown_as_its_hint() {
    let key = ApiKey::generate().unwrap();
    let secret = key.expose_secret();
    let hint = key.hint().to_string();
    // Cuts that leave pieces of at least 8 of the 59 digits after `nova_`.
    let long_pieces = 5 + 8..=secret.len() - 8;
    for separator in SEPARATORS {
        let mut forms: Vec<Vec<usize>> = (1..secret.len()).map(|cut| vec![cut]).collect();
        for one in long_pieces.clone() {
            for two in one + 8..=*long_pieces.end() {
                forms.push(vec![one, two]);
            }
        }
        // Groups of 16: of the whole key, and of its digits after `nova_`.
        forms.push(vec![16, 32, 48]);
        forms.push(vec![21, 37, 53]);
        for cuts in forms {
            let text = split(secret, &cuts, separator);
            let path = format!("/v1/models/{text}");
            for error in [
                ApiError::model_not_found(&text),
                ApiError::not_found("GET", &path),
            ] {
                assert_hides(secret, &text, &error);
                let whole = cuts.iter().all(|cut| long_pieces.contains(cut));
                if whole {
                    assert!(error.message().contains(&hint), "{text:?}: {error}");
                }
            }
        }
    }
}

#[test]
fn ordinary_names_are_shown_as_sent() {
    let error = ApiError::model_not_found("gpt-4o-mini");
    assert!(error.message().contains("'gpt-4o-mini'"), "{error}");
    let error = ApiError::not_found("GET", "/v2/models/550e8400-e29b-41d4-a716-446655440000");
    assert!(
        error
            .message()
            .contains("GET /v2/models/550e8400-e29b-41d4-a716-446655440000."),
        "{error}"
    );
    for model in [
        "gpt-4o-mini-2024-07-18",
        "meta-llama/Llama-3.1-70B-Instruct",
        "550e8400-e29b-41d4-a716-446655440000",
        "conv_0123456789abcdef0123456789abcde",
    ] {
        let error = ApiError::model_not_found(model);
        assert!(error.message().contains(&format!("'{model}'")), "{error}");
    }
    for path in [
        "/v1/conversations/conv_0123456789abcdef0123456789abcde",
        "/v1/keys/key_4e58d9f4757ccfc3/usage",
    ] {
        let error = ApiError::not_found("GET", path);
        assert!(error.message().contains(&format!("GET {path}.")), "{error}");
    }
}

/// Parses and validates `body` as a chat request, expecting a failure.
#[track_caller]
fn chat_error(body: Value) -> ApiError {
    parse_json::<ChatCompletionRequest>(body.to_string().as_bytes()).unwrap_err()
}

#[test]
fn a_request_naming_a_key_is_answered_with_its_hint() {
    let key = ApiKey::generate().unwrap();
    let secret = key.expose_secret();
    let hint = key.hint().to_string();

    // A content part whose `type` is a key.
    let error = chat_error(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": secret}]}]
    }));
    assert_eq!(error.code(), Some(&ErrorCode::InvalidValue), "{error}");
    assert_eq!(error.param(), Some("messages[0].content[0].type"));
    assert!(!error.message().contains(secret), "{error}");
    assert!(error.message().contains(&format!("'{hint}'")), "{error}");

    // A role that is a key.
    let error = chat_error(json!({
        "model": "m",
        "messages": [{"role": secret, "content": "hi"}]
    }));
    assert_eq!(error.param(), Some("messages[0].role"));
    assert!(!error.message().contains(secret), "{error}");
    assert!(error.message().contains(&format!("'{hint}'")), "{error}");

    // A metadata key that is a key: the path stops at the map.
    let error = chat_error(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "metadata": {secret: 1}
    }));
    assert_eq!(error.param(), Some("metadata"));
    assert!(!error.to_string().contains(secret), "{error}");
}
