//! Every validation rule and every deserialization failure answers the right
//! `code` and `param`.

use lumyx_api_types::{
    ApiError, ChatCompletionRequest, ChatMessage, ContentPart, CreateConversationRequest,
    CreateKeyRequest, DAILY_LIMIT_RANGE, ErrorCode, LIST_LIMIT_RANGE, ListOrder, ListParams,
    MAX_GRACE_PERIOD_SECONDS, MessageContent, Metadata, RATE_LIMIT_PER_MINUTE_RANGE, Role,
    RotateKeyRequest, Scope, UpdateConversationRequest, Validate, check_daily_limit,
    check_rate_limit_per_minute, from_json_str, parse_json,
};
use serde_json::{Value, json};

#[track_caller]
fn assert_error(error: &ApiError, code: ErrorCode, param: Option<&str>) {
    assert_eq!(error.code(), Some(&code), "{error}");
    assert_eq!(error.param(), param, "{error}");
    assert_eq!(error.status().as_u16(), 400, "{error}");
}

/// Parses and validates `body` as a chat request, expecting a failure.
#[track_caller]
fn chat_error(body: Value) -> ApiError {
    parse_json::<ChatCompletionRequest>(body.to_string().as_bytes()).unwrap_err()
}

fn valid_chat() -> Value {
    json!({"model": "nova_1_1", "messages": [{"role": "user", "content": "Hi"}]})
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

#[test]
fn a_valid_request_passes() {
    let request: ChatCompletionRequest = parse_json(valid_chat().to_string().as_bytes()).unwrap();
    assert_eq!(request.model, "nova_1_1");
}

#[test]
fn missing_model_is_missing_field_model() {
    let error = chat_error(json!({"messages": [{"role": "user", "content": "Hi"}]}));
    assert_error(&error, ErrorCode::MissingField, Some("model"));
    assert!(error.message().contains("'model'"), "{error}");
}

#[test]
fn empty_model_is_invalid_value_model() {
    let error = chat_error(with(valid_chat(), "model", json!("")));
    assert_error(&error, ErrorCode::InvalidValue, Some("model"));
}

#[test]
fn missing_messages_is_missing_field_messages() {
    let error = chat_error(json!({"model": "nova_1_1"}));
    assert_error(&error, ErrorCode::MissingField, Some("messages"));
}

#[test]
fn empty_messages_is_invalid_value_messages() {
    let error = chat_error(with(valid_chat(), "messages", json!([])));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages"));
}

#[test]
fn unknown_role_is_invalid_value_at_its_index() {
    let messages = json!([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "critic", "content": "Meh"}
    ]);
    let error = chat_error(with(valid_chat(), "messages", messages));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[2].role"));
    assert!(error.message().contains("'critic'"), "{error}");
    assert!(error.message().contains("'developer'"), "{error}");
}

#[test]
fn role_of_a_wrong_type_is_invalid_value_at_its_path() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": 7, "content": "x"}]),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0].role"));
}

#[test]
fn missing_role_is_missing_field_at_its_path() {
    let messages = json!([{"role": "user", "content": "Hi"}, {"content": "no role"}]);
    let error = chat_error(with(valid_chat(), "messages", messages));
    assert_error(&error, ErrorCode::MissingField, Some("messages[1].role"));
}

#[test]
fn content_is_required_except_for_assistant_tool_calls() {
    let error = chat_error(with(valid_chat(), "messages", json!([{"role": "user"}])));
    assert_error(&error, ErrorCode::MissingField, Some("messages[0].content"));
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": null}]),
    ));
    assert_error(&error, ErrorCode::MissingField, Some("messages[1].content"));
    let ok = with(
        valid_chat(),
        "messages",
        json!([
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"}
        ]),
    );
    parse_json::<ChatCompletionRequest>(ok.to_string().as_bytes()).unwrap();
}

#[test]
fn tool_message_needs_tool_call_id() {
    let messages = json!([{"role": "user", "content": "Hi"}, {"role": "tool", "content": "42"}]);
    let error = chat_error(with(valid_chat(), "messages", messages));
    assert_error(
        &error,
        ErrorCode::MissingField,
        Some("messages[1].tool_call_id"),
    );
}

#[test]
fn function_message_needs_name() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "function", "content": "42"}]),
    ));
    assert_error(&error, ErrorCode::MissingField, Some("messages[0].name"));
}

#[test]
fn content_parts_are_checked_per_role() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": []}]),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0].content"));
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "system", "content": [
            {"type": "text", "text": "Be brief"},
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
        ]}]),
    ));
    assert_error(
        &error,
        ErrorCode::InvalidValue,
        Some("messages[0].content[1].type"),
    );
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": [{"type": "hologram"}]}]),
    ));
    assert_error(
        &error,
        ErrorCode::InvalidValue,
        Some("messages[0].content[0].type"),
    );
}

#[test]
fn a_content_part_missing_its_field_names_the_field() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text"}]}]),
    ));
    assert_error(
        &error,
        ErrorCode::MissingField,
        Some("messages[0].content[1].text"),
    );
}

#[test]
fn temperature_must_be_within_0_and_2() {
    for bad in [json!(-0.1), json!(2.01), json!(3)] {
        let error = chat_error(with(valid_chat(), "temperature", bad));
        assert_error(&error, ErrorCode::InvalidValue, Some("temperature"));
        assert!(error.message().contains("from 0 to 2"), "{error}");
    }
    for good in [json!(0), json!(0.7), json!(2)] {
        let body = with(valid_chat(), "temperature", good).to_string();
        parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap();
    }
    let error = chat_error(with(valid_chat(), "temperature", json!("hot")));
    assert_error(&error, ErrorCode::InvalidValue, Some("temperature"));
}

#[test]
fn top_p_must_be_within_0_and_1() {
    let error = chat_error(with(valid_chat(), "top_p", json!(1.5)));
    assert_error(&error, ErrorCode::InvalidValue, Some("top_p"));
}

#[test]
fn n_must_be_at_least_1() {
    let error = chat_error(with(valid_chat(), "n", json!(0)));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
    let error = chat_error(with(valid_chat(), "n", json!(-1)));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
    let body = with(valid_chat(), "n", json!(2)).to_string();
    parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap();
}

#[test]
fn n_is_at_most_128() {
    for bad in [129, 1_000, u32::MAX] {
        let error = chat_error(with(valid_chat(), "n", json!(bad)));
        assert_error(&error, ErrorCode::InvalidValue, Some("n"));
        assert!(error.message().contains("from 1 to 128"), "{error}");
    }
    let body = with(valid_chat(), "n", json!(128)).to_string();
    parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap();
    let error = ChatCompletionRequest::new("m", vec![ChatMessage::user("Hi")])
        .with_n(129)
        .validate()
        .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
}

#[test]
fn token_limits_must_be_at_least_1() {
    let error = chat_error(with(valid_chat(), "max_tokens", json!(0)));
    assert_error(&error, ErrorCode::InvalidValue, Some("max_tokens"));
    let error = chat_error(with(valid_chat(), "max_completion_tokens", json!(0)));
    assert_error(
        &error,
        ErrorCode::InvalidValue,
        Some("max_completion_tokens"),
    );
}

#[test]
fn stream_options_need_stream() {
    let body = with(
        valid_chat(),
        "stream_options",
        json!({"include_usage": true}),
    );
    let error = chat_error(body.clone());
    assert_error(&error, ErrorCode::InvalidValue, Some("stream_options"));
    let body = with(body, "stream", json!(true)).to_string();
    parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap();
}

#[test]
fn metadata_limits() {
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let error = chat_error(with(valid_chat(), "metadata", Value::Object(many)));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
    let long = "v".repeat(513);
    let error = chat_error(with(valid_chat(), "metadata", json!({"note": long})));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata.note"));
    let error = chat_error(with(valid_chat(), "metadata", json!({"note": 1})));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata.note"));
}

#[test]
fn empty_conversation_id_is_invalid() {
    let error = chat_error(with(valid_chat(), "conversation_id", json!(" ")));
    assert_error(&error, ErrorCode::InvalidValue, Some("conversation_id"));
}

#[test]
fn wrong_types_deep_in_the_body_name_their_path() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": 5}]),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0].content"));
    let error = chat_error(with(
        valid_chat(),
        "stream_options",
        json!({"include_usage": "yes"}),
    ));
    assert_error(
        &error,
        ErrorCode::InvalidValue,
        Some("stream_options.include_usage"),
    );
    let error = chat_error(with(valid_chat(), "stop", json!(["a", 1])));
    assert_error(&error, ErrorCode::InvalidValue, Some("stop[1]"));
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f"}}]}]),
    ));
    assert_error(
        &error,
        ErrorCode::MissingField,
        Some("messages[0].tool_calls[0].function.arguments"),
    );
}

#[test]
fn duplicate_fields_are_invalid_values() {
    let error = parse_json::<ChatCompletionRequest>(br#"{"model":"a","model":"b","messages":[]}"#)
        .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("model"));
}

#[test]
fn bodies_that_are_not_json_are_invalid_json_without_param() {
    for body in [
        &b""[..],
        b"{",
        b"not json",
        b"{\"model\": }",
        b"[]",
        b"42",
        b"null",
        b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} trailing",
        b"\xff\xfe",
    ] {
        let error = parse_json::<ChatCompletionRequest>(body).unwrap_err();
        assert_error(&error, ErrorCode::InvalidJson, None);
    }
    let error = parse_json::<ChatCompletionRequest>(b"{").unwrap_err();
    assert!(error.message().contains("line 1, column 1"), "{error}");
}

#[test]
fn serde_json_error_without_path_names_the_field_but_gives_no_param() {
    // Without the path, `role` could sit at any depth: a bare name is not a
    // JSON path, so `param` stays empty and the message names the field.
    let error: ApiError =
        serde_json::from_str::<ChatCompletionRequest>(r#"{"model":"m","messages":[{}]}"#)
            .unwrap_err()
            .into();
    assert_error(&error, ErrorCode::MissingField, None);
    assert!(error.message().contains("'role'"), "{error}");
    let error: ApiError = serde_json::from_str::<ChatCompletionRequest>(r#"{"messages":[]}"#)
        .unwrap_err()
        .into();
    assert_error(&error, ErrorCode::MissingField, None);
    assert!(error.message().contains("'model'"), "{error}");
    let error: ApiError = serde_json::from_str::<ChatCompletionRequest>(
        r#"{"model":"m","messages":[{"role":"user","role":"user"}]}"#,
    )
    .unwrap_err()
    .into();
    assert_error(&error, ErrorCode::InvalidValue, None);
    let error: ApiError = serde_json::from_str::<ChatCompletionRequest>(
        r#"{"model":"m","messages":[{"role":"user","content":[{"image_url":{},"type":"image_url"}]}]}"#,
    )
    .unwrap_err()
    .into();
    assert_error(&error, ErrorCode::MissingField, None);
}

/// Parses `body` (raw bytes, not necessarily an object) as a chat request.
#[track_caller]
fn raw_chat_error(body: &str) -> ApiError {
    parse_json::<ChatCompletionRequest>(body.as_bytes()).unwrap_err()
}

#[test]
fn quoted_input_cannot_forge_a_missing_or_duplicate_field() {
    let error = chat_error(with(valid_chat(), "n", json!("missing field `evil`")));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
    let error = chat_error(with(valid_chat(), "n", json!("duplicate field `evil`")));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!(["duplicate field `x`"]),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0]"));
    let error = chat_error(with(valid_chat(), "messages", json!(["missing field `x`"])));
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0]"));
    for body in [
        r#""missing field `model`""#,
        r#""duplicate field `model`""#,
        r#""missing field ``""#,
        r#""missing field `""#,
        r#"["missing field `model`"]"#,
        "7",
        "null",
    ] {
        let error = raw_chat_error(body);
        assert_error(&error, ErrorCode::InvalidJson, None);
        assert!(!error.message().contains("`model`"), "{body}: {error}");
    }
}

#[test]
fn real_missing_and_duplicate_fields_keep_their_paths() {
    let error = raw_chat_error(r#"{"model":"m","messages":[{"content":"x"}]}"#);
    assert_error(&error, ErrorCode::MissingField, Some("messages[0].role"));
    let error = raw_chat_error(r#"{"model":"m","model":"n","messages":[]}"#);
    assert_error(&error, ErrorCode::InvalidValue, Some("model"));
}

const KEY: &str = "nova_0123456789abcdef0123456789abcdef0123456789abcdef012ece76dce";

#[test]
fn messages_never_repeat_the_clients_value() {
    for field in [
        "max_tokens",
        "n",
        "temperature",
        "stream",
        "messages",
        "metadata",
    ] {
        let error = chat_error(with(valid_chat(), field, json!(KEY)));
        assert_eq!(error.param(), Some(field), "{error}");
        assert!(!error.message().contains("ece76dce"), "{field}: {error}");
        assert!(error.message().contains("invalid type: string"), "{error}");
    }
    let error = chat_error(with(valid_chat(), "max_tokens", json!(KEY)));
    assert!(
        error
            .message()
            .contains("invalid type: string, expected u32"),
        "{error}"
    );
    // A key as a role, an unknown content part field's type, a number.
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "user", "content": [{"type": "text", "text": KEY.len()}]}]),
    ));
    assert!(!error.message().contains(&KEY.len().to_string()), "{error}");
    let error = chat_error(with(valid_chat(), "max_tokens", json!(-123_456_789)));
    assert!(!error.message().contains("123456789"), "{error}");
    let error = raw_chat_error(&format!("{:?}", KEY));
    assert!(!error.message().contains("ece76dce"), "{error}");
}

/// The hint of [`KEY`]: all an error may show of it.
const KEY_HINT: &str = "nova_0123…6dce";

#[test]
fn unknown_roles_scopes_and_orders_are_named_by_at_most_a_hint() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "critic", "content": "x"}]),
    ));
    assert!(error.message().contains("got 'critic'"), "{error}");
    let huge = "r-".repeat(50_000);
    for role in [KEY, huge.as_str()] {
        let error = chat_error(with(
            valid_chat(),
            "messages",
            json!([{"role": role, "content": "x"}]),
        ));
        assert_error(&error, ErrorCode::InvalidValue, Some("messages[0].role"));
        assert!(error.message().len() < 300, "{}", error.message().len());
        assert!(!error.message().contains("ece76dce"), "{error}");
    }
    let request = CreateKeyRequest {
        scopes: Some(vec![Scope::from_wire(KEY)]),
        ..CreateKeyRequest::new("n", "o")
    };
    let error = request.validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("scopes[0]"));
    assert!(!error.message().contains("ece76dce"), "{error}");
    assert!(error.message().contains(KEY_HINT), "{error}");
    let params = ListParams {
        order: Some(ListOrder::from_wire(KEY)),
        ..ListParams::default()
    };
    let error = params.validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("order"));
    assert!(!error.message().contains("ece76dce"), "{error}");
    assert!(error.message().contains(KEY_HINT), "{error}");
}

#[test]
fn a_hand_built_other_role_spelling_a_known_one_validates() {
    let mut message = ChatMessage::user("Hi");
    message.role = Role::Other("user".into());
    message.validate().unwrap();
    message.role = Role::Other("critic".into());
    let error = message.validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[0].role"));
}

#[test]
fn grace_periods_are_at_most_30_days() {
    assert_eq!(MAX_GRACE_PERIOD_SECONDS, 2_592_000);
    for grace in [None, Some(0), Some(3600), Some(MAX_GRACE_PERIOD_SECONDS)] {
        let request = RotateKeyRequest {
            grace_period_seconds: grace,
        };
        request.validate().unwrap();
    }
    for grace in [MAX_GRACE_PERIOD_SECONDS + 1, u64::MAX] {
        let body = format!(r#"{{"grace_period_seconds":{grace}}}"#);
        let error = parse_json::<RotateKeyRequest>(body.as_bytes()).unwrap_err();
        assert_error(
            &error,
            ErrorCode::InvalidValue,
            Some("grace_period_seconds"),
        );
    }
}

#[test]
fn an_assistant_message_with_empty_tool_calls_needs_content() {
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "assistant", "tool_calls": []}]),
    ));
    assert_error(&error, ErrorCode::MissingField, Some("messages[0].content"));
    let error = chat_error(with(
        valid_chat(),
        "messages",
        json!([{"role": "assistant"}]),
    ));
    assert_error(&error, ErrorCode::MissingField, Some("messages[0].content"));
    let body = with(
        valid_chat(),
        "messages",
        json!([{"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]}]),
    );
    parse_json::<ChatCompletionRequest>(body.to_string().as_bytes()).unwrap();
}

#[test]
fn a_huge_value_gives_a_short_message() {
    let huge = "x".repeat(100_000);
    let error = chat_error(with(valid_chat(), "n", json!(huge)));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
    assert!(error.message().len() < 300, "{}", error.message().len());
    let error = raw_chat_error(&format!("{:?}", huge));
    assert_error(&error, ErrorCode::InvalidJson, None);
    assert!(error.message().len() < 400, "{}", error.message().len());
}

/// A chat body whose one user message has `part` (raw JSON, keys in the
/// order written) as its only content part.
fn part_error(part: &str) -> ApiError {
    raw_chat_error(&format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":[{part}]}}]}}"#
    ))
}

#[test]
fn errors_inside_content_parts_name_the_nested_field() {
    let cases = [
        (
            r#"{"type":"image_url","image_url":{}}"#,
            ErrorCode::MissingField,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"type":"image_url","image_url":{"url":5}}"#,
            ErrorCode::InvalidValue,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"type":5,"text":"x"}"#,
            ErrorCode::InvalidValue,
            "messages[0].content[0].type",
        ),
        (
            r#"{"type":"input_audio","input_audio":{"data":"AA=="}}"#,
            ErrorCode::MissingField,
            "messages[0].content[0].input_audio.format",
        ),
        (
            r#"{"type":"image_url"}"#,
            ErrorCode::MissingField,
            "messages[0].content[0].image_url",
        ),
        (
            r#"{"text":"x"}"#,
            ErrorCode::MissingField,
            "messages[0].content[0].type",
        ),
        (r#""x""#, ErrorCode::InvalidValue, "messages[0].content[0]"),
        // `type` after the payload (as a sorted-keys writer puts it): the
        // payload is buffered, read once the type is known, and its error
        // still names the nested field.
        (
            r#"{"image_url":{},"type":"image_url"}"#,
            ErrorCode::MissingField,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"image_url":{"url":5},"type":"image_url"}"#,
            ErrorCode::InvalidValue,
            "messages[0].content[0].image_url.url",
        ),
        (
            r#"{"text":5,"type":"text"}"#,
            ErrorCode::InvalidValue,
            "messages[0].content[0].text",
        ),
    ];
    for (part, code, param) in cases {
        let error = part_error(part);
        assert_eq!(error.code(), Some(&code), "{part}: {error}");
        assert_eq!(error.param(), Some(param), "{part}: {error}");
    }
    // A client's value that imitates the nested form is just a wrong value.
    let error = chat_error(with(
        valid_chat(),
        "n",
        json!("in field 'x.y': missing field `z`"),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("n"));
}

#[test]
fn duplicate_fields_of_a_content_part_are_refused() {
    let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","type":"text","text":"a"}]}]}"#;
    assert_error(
        &raw_chat_error(body),
        ErrorCode::InvalidValue,
        Some("messages[0].content[0].type"),
    );
    let body = r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","text":"b"}]}]}"#;
    assert_error(
        &raw_chat_error(body),
        ErrorCode::InvalidValue,
        Some("messages[0].content[0].text"),
    );
    // Once before the `type`, once after.
    let body = r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a","type":"text","text":"b"}]}]}"#;
    assert_error(
        &raw_chat_error(body),
        ErrorCode::InvalidValue,
        Some("messages[0].content[0].text"),
    );
}

#[test]
fn from_json_str_does_not_validate() {
    let request: ChatCompletionRequest =
        from_json_str(r#"{"model":"m","messages":[],"temperature":9}"#).unwrap();
    assert_eq!(request.temperature, Some(9.0));
    assert!(request.validate().is_err());
}

#[test]
fn list_limit_must_be_within_1_and_100() {
    for limit in [0, 101, 1000] {
        let error = ListParams {
            limit: Some(limit),
            ..ListParams::default()
        }
        .validate()
        .unwrap_err();
        assert_error(&error, ErrorCode::InvalidValue, Some("limit"));
        assert!(error.message().contains("from 1 to 100"), "{error}");
    }
    for limit in [*LIST_LIMIT_RANGE.start(), 20, *LIST_LIMIT_RANGE.end()] {
        ListParams {
            limit: Some(limit),
            ..ListParams::default()
        }
        .validate()
        .unwrap();
    }
    assert_eq!(ListParams::default().limit_or_default(), 20);
}

#[test]
fn list_order_must_be_asc_or_desc() {
    let params: ListParams = serde_json::from_str(r#"{"order":"random"}"#).unwrap();
    let error = params.validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("order"));
    let params: ListParams = serde_json::from_str(r#"{"order":"desc","limit":5}"#).unwrap();
    params.validate().unwrap();
    assert_eq!(params.order, Some(ListOrder::Desc));
}

#[test]
fn key_limits_must_be_within_their_ranges() {
    let base = CreateKeyRequest::new("ci", "acct_1");
    for rpm in [0, 1001] {
        let error = base.clone().with_limits(rpm, 1000).validate().unwrap_err();
        assert_error(
            &error,
            ErrorCode::InvalidValue,
            Some("rate_limit_per_minute"),
        );
        assert!(error.message().contains("from 1 to 1000"), "{error}");
    }
    for daily in [0, 10_001] {
        let error = base.clone().with_limits(60, daily).validate().unwrap_err();
        assert_error(&error, ErrorCode::InvalidValue, Some("daily_limit"));
        assert!(error.message().contains("from 1 to 10000"), "{error}");
    }
    for (rpm, daily) in [
        (
            *RATE_LIMIT_PER_MINUTE_RANGE.start(),
            *DAILY_LIMIT_RANGE.start(),
        ),
        (*RATE_LIMIT_PER_MINUTE_RANGE.end(), *DAILY_LIMIT_RANGE.end()),
    ] {
        base.clone().with_limits(rpm, daily).validate().unwrap();
        check_rate_limit_per_minute(rpm).unwrap();
        check_daily_limit(daily).unwrap();
    }
    assert!(check_rate_limit_per_minute(1001).is_err());
    assert!(check_daily_limit(0).is_err());
}

#[test]
fn key_request_needs_name_owner_and_known_scopes() {
    let error = parse_json::<CreateKeyRequest>(br#"{"owner":"acct_1"}"#).unwrap_err();
    assert_error(&error, ErrorCode::MissingField, Some("name"));
    let error = CreateKeyRequest::new("", "acct_1").validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("name"));
    let error = CreateKeyRequest::new("ci", "").validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("owner"));
    let error = CreateKeyRequest::new("ci", "acct_1")
        .with_scopes(vec![])
        .validate()
        .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("scopes"));
    let error = parse_json::<CreateKeyRequest>(
        br#"{"name":"ci","owner":"acct_1","scopes":["chat","admin"]}"#,
    )
    .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("scopes[1]"));
    let error = CreateKeyRequest::new("ci", "acct_1")
        .with_expires_at(0)
        .validate()
        .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("expires_at"));
    let error = parse_json::<CreateKeyRequest>(br#"{"name":"ci","owner":"a","daily_limit":-5}"#)
        .unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("daily_limit"));
    let request = CreateKeyRequest::new("ci", "acct_1");
    assert_eq!(request.scopes(), Scope::all());
    assert_eq!(request.rate_limit_per_minute(), 60);
}

#[test]
fn key_expiry_is_at_most_the_end_of_year_9999() {
    // 9999-12-31T23:59:59Z, the latest time a key record holds.
    const LATEST: i64 = 253_402_300_799;
    let base = CreateKeyRequest::new("ci", "acct_1");
    for expires_at in [1, 1_767_225_600, LATEST] {
        base.clone().with_expires_at(expires_at).validate().unwrap();
    }
    for expires_at in [i64::MIN, -1, 0, LATEST + 1, i64::MAX] {
        let error = base
            .clone()
            .with_expires_at(expires_at)
            .validate()
            .unwrap_err();
        assert_error(&error, ErrorCode::InvalidValue, Some("expires_at"));
        assert!(
            error.message().contains(&format!("got {expires_at}")),
            "{error}"
        );
    }
    // Read from a body as a server reads it.
    for expires_at in [LATEST + 1, i64::MAX] {
        let body = format!(r#"{{"name":"ci","owner":"acct_1","expires_at":{expires_at}}}"#);
        let error = parse_json::<CreateKeyRequest>(body.as_bytes()).unwrap_err();
        assert_error(&error, ErrorCode::InvalidValue, Some("expires_at"));
        assert!(error.message().contains("9999-12-31T23:59:59Z"), "{error}");
    }
    let body = format!(r#"{{"name":"ci","owner":"acct_1","expires_at":{LATEST}}}"#);
    parse_json::<CreateKeyRequest>(body.as_bytes()).unwrap();
}

#[test]
fn conversation_requests_check_messages_and_metadata() {
    let request = CreateConversationRequest {
        metadata: None,
        messages: vec![
            ChatMessage::user("Hi"),
            ChatMessage::new(Role::from("bot"), "x"),
        ],
    };
    let error = request.validate().unwrap_err();
    assert_error(&error, ErrorCode::InvalidValue, Some("messages[1].role"));
    CreateConversationRequest::default().validate().unwrap();
    let metadata: Metadata = [("k".repeat(65), "v".to_owned())].into_iter().collect();
    let error = UpdateConversationRequest { metadata }
        .validate()
        .unwrap_err();
    // A key over the limit is not repeated back: `param` is the map.
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
    assert!(!error.message().contains(&"k".repeat(65)), "{error}");
}

#[test]
fn metadata_keys_are_not_repeated_when_long_or_odd() {
    let huge = "k".repeat(100_000);
    for key in [huge.as_str(), KEY, "a b", "x'y"] {
        let error = chat_error(with(valid_chat(), "metadata", json!({ key: 1 })));
        assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
        assert!(error.message().len() < 300, "{}", error.message().len());
        assert!(!error.message().contains("ece76dce"), "{error}");
    }
    let error = chat_error(with(valid_chat(), "metadata", json!({ huge: "v" })));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
    assert!(error.message().len() < 300, "{}", error.message().len());
    let long_value = "v".repeat(513);
    let error = chat_error(with(valid_chat(), "metadata", json!({ KEY: long_value })));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
    assert!(!error.message().contains("ece76dce"), "{error}");
    let error = chat_error(with(
        valid_chat(),
        "metadata",
        json!({ "note": long_value }),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata.note"));
    // A valid key whose path would be too long to show whole.
    let error = chat_error(with(
        valid_chat(),
        "metadata",
        json!({ "k-".repeat(30): long_value }),
    ));
    assert_error(&error, ErrorCode::InvalidValue, Some("metadata"));
}

#[test]
fn a_single_message_validates_on_its_own() {
    ChatMessage::user("Hi").validate().unwrap();
    let mut message = ChatMessage::assistant("x");
    message.content = Some(MessageContent::Parts(vec![ContentPart::Refusal {
        refusal: "no".into(),
        extra: serde_json::Map::new(),
    }]));
    message.validate().unwrap();
    message.role = Role::User;
    let error = message.validate().unwrap_err();
    assert_error(
        &error,
        ErrorCode::InvalidValue,
        Some("messages[0].content[0].type"),
    );
}

#[test]
fn a_key_update_is_checked_like_a_creation_on_the_fields_present() {
    use lumyx_api_types::UpdateKeyRequest;
    let cases = [
        (r#"{"rate_limit_per_minute":0}"#, "rate_limit_per_minute"),
        (r#"{"rate_limit_per_minute":1001}"#, "rate_limit_per_minute"),
        (r#"{"daily_limit":10001}"#, "daily_limit"),
        (r#"{"expires_at":253402300800}"#, "expires_at"),
        (r#"{"scopes":[]}"#, "scopes"),
        (r#"{"scopes":["chat","admin"]}"#, "scopes[1]"),
        (r#"{"name":"  "}"#, "name"),
    ];
    for (body, param) in cases {
        let error = lumyx_api_types::parse_json::<UpdateKeyRequest>(body.as_bytes()).unwrap_err();
        assert_eq!(error.param(), Some(param), "{body}");
        assert_eq!(error.code().unwrap().as_str(), "invalid_value", "{body}");
    }
    for body in [
        "{}",
        r#"{"expires_at":null}"#,
        r#"{"name":"ci","rate_limit_per_minute":1000,"daily_limit":1,"scopes":["models"]}"#,
    ] {
        lumyx_api_types::parse_json::<UpdateKeyRequest>(body.as_bytes()).unwrap();
    }
}

#[test]
fn key_names_and_owners_are_bounded_single_line_text() {
    let forged = "bob\n2026-11-30T00:00:00Z INFO lumyx_server: forged \u{1b}[31mred";
    for (field, value) in [
        ("owner", forged.to_owned()),
        ("name", "tab\there".to_owned()),
        ("name", "x".repeat(lumyx_api_types::MAX_LABEL_CHARS + 1)),
    ] {
        let mut request = lumyx_api_types::CreateKeyRequest::new("ci", "acct_1");
        match field {
            "owner" => request.owner = value,
            _ => request.name = value,
        }
        let error = request.validate().unwrap_err();
        assert_eq!(error.param(), Some(field));
    }
    let longest = lumyx_api_types::CreateKeyRequest::new(
        "é".repeat(lumyx_api_types::MAX_LABEL_CHARS),
        "acct 1 (Zoë)",
    );
    assert!(longest.validate().is_ok());
    let update: lumyx_api_types::UpdateKeyRequest =
        serde_json::from_str(r#"{"name":"a\rb"}"#).unwrap();
    assert_eq!(update.validate().unwrap_err().param(), Some("name"));
}
