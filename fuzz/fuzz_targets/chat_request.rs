//! Bytes → `ChatCompletionRequest` → validation, the path every body of
//! `POST /v1/chat/completions` takes. It must never panic, and its answer must
//! keep the promises of SPEC §4: a 400 `invalid_json` without `param`, or a
//! 400 `invalid_value` / `missing_field` with a non-empty one, and a short
//! message; a request that passes is written back into JSON that reads and
//! validates again.
//!
//! ```text
//! cargo +nightly fuzz run chat_request
//! ```

#![no_main]

use libfuzzer_sys::fuzz_target;
use lumyx_api_types::{ChatCompletionRequest, ErrorCode, Validate, parse_json};

fuzz_target!(|data: &[u8]| {
    match parse_json::<ChatCompletionRequest>(data) {
        Ok(request) => {
            let written = serde_json::to_vec(&request).expect("a request always serializes");
            let again: ChatCompletionRequest =
                serde_json::from_slice(&written).expect("a written request reads back");
            again
                .validate()
                .expect("a written valid request stays valid");
            let _ = request.last_user_text();
        }
        Err(error) => {
            assert_eq!(error.status().as_u16(), 400, "{error}");
            let code = error.code().expect("a body error has a code");
            match code {
                ErrorCode::InvalidJson => assert!(error.param().is_none(), "{error}"),
                ErrorCode::InvalidValue | ErrorCode::MissingField => {
                    assert!(error.param().is_some_and(|p| !p.is_empty()), "{error}")
                }
                other => panic!("unexpected code {other} for a body error"),
            }
            // A message never repeats a client's value at length (SPEC §4:
            // at most a key's hint): serde's quoted input is dropped, any
            // detail cut short.
            assert!(error.message().len() <= 512, "{}", error.message().len());
            let envelope = serde_json::to_value(&error).expect("an error always serializes");
            assert_eq!(envelope["error"].as_object().map(|o| o.len()), Some(4));
        }
    }
});
