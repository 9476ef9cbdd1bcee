//! Values and fields this version does not know are kept; optional fields
//! may be missing on read; required keys are always written.

use lumyx_api_types::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ContentPart,
    CreateKeyRequest, ErrorCode, FinishReason, KeyRecord, MessageContent, Role, Scope, ToolType,
    Usage,
};
use serde_json::{Value, json};

#[test]
fn unknown_finish_reason_survives_a_response_round_trip() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "…", "refusal": null},
            "logprobs": null,
            "finish_reason": "thinking_budget_exhausted"
        }]
    });
    let response: ChatCompletionResponse = serde_json::from_value(body.clone()).unwrap();
    let reason = response.choices[0].finish_reason.as_ref().unwrap();
    assert_eq!(
        reason,
        &FinishReason::Other("thinking_budget_exhausted".into())
    );
    assert!(!reason.is_known());
    assert_eq!(serde_json::to_value(&response).unwrap(), body);
}

#[test]
fn unknown_finish_reason_and_role_survive_a_chunk_round_trip() {
    let body = json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "narrator", "content": "x"},
                     "logprobs": null, "finish_reason": "paused"}]
    });
    let chunk: ChatCompletionChunk = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(chunk.choices[0].delta.role, Some(Role::from("narrator")));
    assert_eq!(
        chunk.choices[0].finish_reason.as_ref().unwrap().as_str(),
        "paused"
    );
    assert_eq!(serde_json::to_value(&chunk).unwrap(), body);
}

#[test]
fn unknown_role_survives_a_request_round_trip() {
    let body = json!({
        "model": "m",
        "messages": [{"role": "critic", "content": "too long", "mood": "grumpy"}],
    });
    let request: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    let message = &request.messages[0];
    assert_eq!(message.role, Role::Other("critic".into()));
    assert_eq!(message.extra["mood"], "grumpy");
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
}

#[test]
fn unknown_response_role_survives() {
    let body = json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "oracle", "content": "x", "refusal": null},
                     "logprobs": null, "finish_reason": "stop"}]
    });
    let response: ChatCompletionResponse = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(response.choices[0].message.role.as_str(), "oracle");
    assert_eq!(serde_json::to_value(&response).unwrap(), body);
}

#[test]
fn unknown_content_part_and_tool_type_survive() {
    let body = json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": [
                {"type": "input_video", "input_video": {"url": "https://x/v.mp4"}},
                {"type": "text", "text": "describe"}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "custom", "custom": {"name": "sql", "input": "select 1"}},
                {"id": "call_2", "type": "mcp"}
            ]}
        ]
    });
    let request: ChatCompletionRequest = serde_json::from_value(body.clone()).unwrap();
    let Some(MessageContent::Parts(parts)) = &request.messages[0].content else {
        panic!("expected parts");
    };
    assert!(
        matches!(&parts[0], ContentPart::Other(value) if value["input_video"]["url"] == "https://x/v.mp4")
    );
    let calls = request.messages[1].tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].kind, ToolType::Custom);
    assert_eq!(calls[1].kind, ToolType::Other("mcp".into()));
    assert_eq!(serde_json::to_value(&request).unwrap(), body);
}

#[test]
fn unknown_scope_and_error_code_survive() {
    let request: CreateKeyRequest = serde_json::from_value(json!({
        "name": "n", "owner": "o", "scopes": ["chat", "images"]
    }))
    .unwrap();
    assert_eq!(
        request.scopes.as_ref().unwrap()[1],
        Scope::Other("images".into())
    );
    assert_eq!(
        serde_json::to_value(&request).unwrap()["scopes"],
        json!(["chat", "images"])
    );
    let code: ErrorCode = serde_json::from_value(json!("quota_exhausted")).unwrap();
    assert_eq!(serde_json::to_value(&code).unwrap(), "quota_exhausted");
}

#[test]
fn responses_read_with_optional_fields_missing() {
    let response: ChatCompletionResponse = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant"}}],
        "brand_new_field": {"x": 1}
    }))
    .unwrap();
    let choice = &response.choices[0];
    assert_eq!(choice.finish_reason, None);
    assert_eq!(choice.logprobs, None);
    assert_eq!(choice.message.content, None);
    assert_eq!(response.usage, None);

    let chunk: ChatCompletionChunk = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {}}]
    }))
    .unwrap();
    assert_eq!(chunk.choices[0].finish_reason, None);

    let usage: Usage = serde_json::from_value(
        json!({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    )
    .unwrap();
    assert_eq!(usage, Usage::new(1, 2));

    let record: KeyRecord = serde_json::from_value(json!({
        "id": "key_0", "hint": "h", "name": "n", "owner": "o", "created_at": 0,
        "rate_limit_per_minute": 60, "daily_limit": 1000, "scopes": []
    }))
    .unwrap();
    assert_eq!((record.expires_at, record.revoked_at), (None, None));
}

#[test]
fn writes_emit_required_keys_with_nulls() {
    let response: ChatCompletionResponse = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant"}}]
    }))
    .unwrap();
    let written = serde_json::to_value(&response).unwrap();
    assert_eq!(
        written["choices"][0],
        json!({
            "index": 0,
            "message": {"role": "assistant", "content": null, "refusal": null},
            "logprobs": null,
            "finish_reason": null
        })
    );
    for key in ["id", "object", "created", "model", "choices"] {
        assert!(written.get(key).is_some(), "{key}");
    }

    let chunk: ChatCompletionChunk = serde_json::from_value(json!({
        "id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {}}]
    }))
    .unwrap();
    let written = serde_json::to_value(&chunk).unwrap();
    assert_eq!(written["choices"][0]["finish_reason"], Value::Null);
    assert!(
        written["choices"][0]
            .as_object()
            .unwrap()
            .contains_key("finish_reason")
    );

    let record = KeyRecord {
        id: "key_0".into(),
        hint: "h".into(),
        name: "n".into(),
        owner: "o".into(),
        created_at: 0,
        expires_at: None,
        revoked_at: None,
        rate_limit_per_minute: 60,
        daily_limit: 1000,
        scopes: Scope::all(),
    };
    let written = serde_json::to_value(&record).unwrap();
    assert!(written.as_object().unwrap().contains_key("expires_at"));
    assert!(written.as_object().unwrap().contains_key("revoked_at"));
}
