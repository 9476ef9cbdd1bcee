//! Every seed of the `chat_request` fuzz target (`fuzz/seeds/chat_request`)
//! keeps the target's promises under `cargo test`, without nightly: a 400
//! `invalid_json` without `param`, or `invalid_value` / `missing_field` with a
//! non-empty one, a short message; a valid request writes back and stays valid.

use std::fs;
use std::path::Path;

use lumyx_api_types::{ChatCompletionRequest, ErrorCode, Validate, parse_json};

/// Longest message a body error may carry: never a client's whole value.
const MAX_MESSAGE_BYTES: usize = 512;

#[test]
fn fuzz_seeds_keep_the_targets_promises() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/chat_request");
    let mut seen = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        seen += 1;
        match parse_json::<ChatCompletionRequest>(&data) {
            Ok(request) => {
                let written = serde_json::to_vec(&request).unwrap();
                let again: ChatCompletionRequest = serde_json::from_slice(&written).unwrap();
                again.validate().unwrap();
                assert_eq!(again, request, "{}", path.display());
            }
            Err(error) => {
                let name = path.display();
                assert_eq!(error.status().as_u16(), 400, "{name}: {error}");
                match error.code() {
                    Some(ErrorCode::InvalidJson) => assert!(error.param().is_none(), "{name}"),
                    Some(ErrorCode::InvalidValue | ErrorCode::MissingField) => assert!(
                        error.param().is_some_and(|param| !param.is_empty()),
                        "{name}: {error}"
                    ),
                    other => panic!("{name}: unexpected code {other:?}"),
                }
                assert!(error.message().len() <= MAX_MESSAGE_BYTES, "{name}");
                assert!(!error.message().contains("ece76dce"), "{name}: {error}");
            }
        }
    }
    assert!(seen >= 10, "only {seen} seeds in {}", dir.display());
}
