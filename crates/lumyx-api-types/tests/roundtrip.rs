//! Property: writing a value and reading it back gives the same value.

use std::fmt::Debug;
use std::time::Duration;

use lumyx_api_types::{
    ApiError, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChatMessage,
    Choice, ChunkChoice, CompletionTokensDetails, ContentPart, Conversation, ConversationMessage,
    CreateKeyRequest, CreatedKey, DayUsage, Delta, ErrorCode, FileRef, FinishReason, FunctionCall,
    FunctionCallChunk, ImageUrl, InputAudio, KeyRecord, KeyUsage, LimitState, ListPage,
    MessageContent, Metadata, Model, Persona, PromptTokensDetails, ResponseMessage, Role, Scope,
    Stop, StreamOptions, ToolCall, ToolCallChunk, ToolType, Usage, UsageCounts, UsageLimits,
};
use proptest::collection::{btree_map, vec};
use proptest::option;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,16}"
}

fn id() -> impl Strategy<Value = String> {
    "[a-z]{2,6}_[A-Za-z0-9]{1,12}"
}

/// JSON without floats (a float's text form is not guaranteed to read back
/// bit-exact without serde_json's `float_roundtrip`).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn non_null_json() -> impl Strategy<Value = Value> {
    json_value().prop_filter("not null", |value| !value.is_null())
}

fn extra() -> impl Strategy<Value = Map<String, Value>> {
    btree_map("x_[a-z]{1,6}", json_value(), 0..3).prop_map(|map| map.into_iter().collect())
}

fn metadata() -> impl Strategy<Value = Metadata> {
    btree_map("[a-z]{1,8}", text(), 0..4)
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![
        proptest::sample::select(Role::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(Role::from),
    ]
}

fn finish_reason() -> impl Strategy<Value = FinishReason> {
    prop_oneof![
        proptest::sample::select(FinishReason::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(FinishReason::from),
    ]
}

fn tool_type() -> impl Strategy<Value = ToolType> {
    prop_oneof![
        proptest::sample::select(ToolType::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(ToolType::from),
    ]
}

/// Fields of a known part this crate does not model, such as `cache_control`.
fn part_extra() -> impl Strategy<Value = serde_json::Map<String, serde_json::Value>> {
    btree_map("x_[a-z]{1,8}", json_value(), 0..3).prop_map(|map| map.into_iter().collect())
}

fn content_part() -> impl Strategy<Value = ContentPart> {
    prop_oneof![
        (text(), part_extra()).prop_map(|(text, extra)| ContentPart::Text { text, extra }),
        (text(), option::of("low|high|auto"), part_extra()).prop_map(|(url, detail, extra)| {
            ContentPart::ImageUrl {
                image_url: ImageUrl { url, detail },
                extra,
            }
        }),
        (text(), "wav|mp3", part_extra()).prop_map(|(data, format, extra)| {
            ContentPart::InputAudio {
                input_audio: InputAudio { data, format },
                extra,
            }
        }),
        (
            option::of(id()),
            option::of(text()),
            option::of(text()),
            part_extra()
        )
            .prop_map(|(file_id, file_data, filename, extra)| ContentPart::File {
                file: FileRef {
                    file_id,
                    file_data,
                    filename
                },
                extra,
            }),
        (text(), part_extra()).prop_map(|(refusal, extra)| ContentPart::Refusal { refusal, extra }),
        ("x_[a-z]{1,8}", json_value())
            .prop_map(|(kind, data)| ContentPart::Other(json!({"type": kind, "data": data}))),
    ]
}

fn message_content() -> impl Strategy<Value = MessageContent> {
    prop_oneof![
        text().prop_map(MessageContent::Text),
        vec(content_part(), 0..4).prop_map(MessageContent::Parts),
    ]
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    (
        id(),
        tool_type(),
        option::of((text(), text()).prop_map(|(name, arguments)| FunctionCall { name, arguments })),
        option::of(non_null_json()),
    )
        .prop_map(|(id, kind, function, custom)| ToolCall {
            id,
            kind,
            function,
            custom,
        })
}

fn chat_message() -> impl Strategy<Value = ChatMessage> {
    (
        role(),
        option::of(message_content()),
        option::of(text()),
        option::of(vec(tool_call(), 0..3)),
        option::of(id()),
        option::of(text()),
        extra(),
    )
        .prop_map(
            |(role, content, name, tool_calls, tool_call_id, refusal, extra)| ChatMessage {
                role,
                content,
                name,
                tool_calls,
                tool_call_id,
                refusal,
                extra,
            },
        )
}

fn tenths(max: u32) -> impl Strategy<Value = f64> {
    (0..=max).prop_map(|tenths| f64::from(tenths) / 10.0)
}

fn chat_request() -> impl Strategy<Value = ChatCompletionRequest> {
    let head = (
        text(),
        vec(chat_message(), 0..4),
        option::of(tenths(20)),
        option::of(tenths(10)),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(any::<u32>()),
        option::of(prop_oneof![
            text().prop_map(Stop::One),
            vec(text(), 0..4).prop_map(Stop::Many)
        ]),
    );
    let tail = (
        option::of(any::<bool>()),
        option::of(
            (option::of(any::<bool>()), option::of(any::<bool>())).prop_map(
                |(include_usage, include_obfuscation)| StreamOptions {
                    include_usage,
                    include_obfuscation,
                },
            ),
        ),
        option::of(text()),
        option::of(metadata()),
        option::of(vec(json_value(), 0..3)),
        option::of(non_null_json()),
        option::of(id()),
        extra(),
    );
    (head, tail).prop_map(
        |(
            (model, messages, temperature, top_p, max_tokens, max_completion_tokens, n, stop),
            (stream, stream_options, user, metadata, tools, tool_choice, conversation_id, extra),
        )| {
            let mut request = ChatCompletionRequest::new(model, messages);
            request.temperature = temperature;
            request.top_p = top_p;
            request.max_tokens = max_tokens;
            request.max_completion_tokens = max_completion_tokens;
            request.n = n;
            request.stop = stop;
            request.stream = stream;
            request.stream_options = stream_options;
            request.user = user;
            request.metadata = metadata;
            request.tools = tools;
            request.tool_choice = tool_choice;
            request.conversation_id = conversation_id;
            request.extra = extra;
            request
        },
    )
}

fn usage() -> impl Strategy<Value = Usage> {
    (
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        option::of(
            (option::of(any::<u32>()), option::of(any::<u32>())).prop_map(
                |(cached_tokens, audio_tokens)| PromptTokensDetails {
                    cached_tokens,
                    audio_tokens,
                },
            ),
        ),
        option::of(
            (
                option::of(any::<u32>()),
                option::of(any::<u32>()),
                option::of(any::<u32>()),
                option::of(any::<u32>()),
            )
                .prop_map(|(reasoning, audio, accepted, rejected)| {
                    CompletionTokensDetails {
                        reasoning_tokens: reasoning,
                        audio_tokens: audio,
                        accepted_prediction_tokens: accepted,
                        rejected_prediction_tokens: rejected,
                    }
                }),
        ),
    )
        .prop_map(
            |(prompt, completion, total, prompt_details, completion_details)| Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                total_tokens: total,
                prompt_tokens_details: prompt_details,
                completion_tokens_details: completion_details,
            },
        )
}

fn response_message() -> impl Strategy<Value = ResponseMessage> {
    (
        role(),
        option::of(text()),
        option::of(text()),
        option::of(vec(tool_call(), 0..3)),
        option::of(vec(json_value(), 0..2)),
        option::of(non_null_json()),
    )
        .prop_map(
            |(role, content, refusal, tool_calls, annotations, audio)| ResponseMessage {
                role,
                content,
                refusal,
                tool_calls,
                annotations,
                audio,
            },
        )
}

fn chat_response() -> impl Strategy<Value = ChatCompletionResponse> {
    let choice = (
        any::<u32>(),
        response_message(),
        option::of(non_null_json()),
        option::of(finish_reason()),
    )
        .prop_map(|(index, message, logprobs, finish_reason)| Choice {
            index,
            message,
            logprobs,
            finish_reason,
        });
    (
        id(),
        text(),
        any::<i64>(),
        text(),
        vec(choice, 0..3),
        option::of(usage()),
        option::of(text()),
        option::of(text()),
    )
        .prop_map(
            |(id, object, created, model, choices, usage, service_tier, system_fingerprint)| {
                ChatCompletionResponse {
                    id,
                    object,
                    created,
                    model,
                    choices,
                    usage,
                    service_tier,
                    system_fingerprint,
                }
            },
        )
}

fn chat_chunk() -> impl Strategy<Value = ChatCompletionChunk> {
    let tool_call_chunk = (
        any::<u32>(),
        option::of(id()),
        option::of(tool_type()),
        option::of(
            (option::of(text()), option::of(text()))
                .prop_map(|(name, arguments)| FunctionCallChunk { name, arguments }),
        ),
    )
        .prop_map(|(index, id, kind, function)| ToolCallChunk {
            index,
            id,
            kind,
            function,
        });
    let delta = (
        option::of(role()),
        option::of(text()),
        option::of(text()),
        option::of(vec(tool_call_chunk, 0..2)),
    )
        .prop_map(|(role, content, refusal, tool_calls)| Delta {
            role,
            content,
            refusal,
            tool_calls,
        });
    let choice = (
        any::<u32>(),
        delta,
        option::of(non_null_json()),
        option::of(finish_reason()),
    )
        .prop_map(|(index, delta, logprobs, finish_reason)| ChunkChoice {
            index,
            delta,
            logprobs,
            finish_reason,
        });
    (
        id(),
        any::<i64>(),
        text(),
        option::of(text()),
        option::of(text()),
        vec(choice, 0..3),
        option::of(option::of(usage())),
        option::of(text()),
    )
        .prop_map(
            |(
                id,
                created,
                model,
                service_tier,
                system_fingerprint,
                choices,
                usage,
                obfuscation,
            )| {
                ChatCompletionChunk {
                    id,
                    object: ChatCompletionChunk::OBJECT.to_owned(),
                    created,
                    model,
                    service_tier,
                    system_fingerprint,
                    choices,
                    usage,
                    obfuscation,
                }
            },
        )
}

fn api_error() -> impl Strategy<Value = ApiError> {
    let base = prop_oneof![
        Just(ApiError::missing_api_key()),
        Just(ApiError::invalid_authorization_header()),
        Just(ApiError::invalid_api_key()),
        text().prop_map(|hint| ApiError::api_key_expired(&hint)),
        text().prop_map(|hint| ApiError::api_key_revoked(&hint)),
        text().prop_map(|scope| ApiError::insufficient_scope(&scope)),
        (any::<u32>(), any::<u64>()).prop_map(|(limit, ms)| ApiError::rate_limit_exceeded(
            limit,
            Duration::from_millis(ms)
        )),
        (any::<u32>(), any::<u64>())
            .prop_map(|(limit, s)| ApiError::daily_limit_exceeded(limit, Duration::from_secs(s))),
        text().prop_map(ApiError::invalid_json),
        (text(), text()).prop_map(|(param, problem)| ApiError::invalid_value(param, problem)),
        text().prop_map(ApiError::missing_field),
        text().prop_map(|id| ApiError::model_not_found(&id)),
        text().prop_map(|id| ApiError::persona_not_found(&id)),
        text().prop_map(|id| ApiError::conversation_not_found(&id)),
        text().prop_map(|id| ApiError::key_not_found(&id)),
        (text(), text()).prop_map(|(method, path)| ApiError::not_found(&method, &path)),
        (text(), text()).prop_map(|(method, path)| ApiError::method_not_allowed(&method, &path)),
        any::<u64>().prop_map(ApiError::request_too_large),
        option::of(text()).prop_map(|ct| ApiError::unsupported_media_type(ct.as_deref())),
        Just(ApiError::service_unavailable()),
        Just(ApiError::internal_error()),
        ("[a-z_]{1,12}", text())
            .prop_map(|(code, message)| { ApiError::from_code(ErrorCode::from(code), message) }),
    ];
    (base, option::of(text())).prop_map(|(error, param)| match param {
        Some(param) => error.with_param(param),
        None => error,
    })
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        proptest::sample::select(Scope::KNOWN.to_vec()),
        "[a-z_]{1,12}".prop_map(Scope::from),
    ]
}

fn key_record() -> impl Strategy<Value = KeyRecord> {
    (
        id(),
        text(),
        text(),
        text(),
        any::<i64>(),
        option::of(any::<i64>()),
        option::of(any::<i64>()),
        any::<u32>(),
        any::<u32>(),
        vec(scope(), 0..6),
    )
        .prop_map(
            |(id, hint, name, owner, created_at, expires_at, revoked_at, rpm, daily, scopes)| {
                KeyRecord {
                    id,
                    hint,
                    name,
                    owner,
                    created_at,
                    expires_at,
                    revoked_at,
                    rate_limit_per_minute: rpm,
                    daily_limit: daily,
                    scopes,
                }
            },
        )
}

fn usage_counts() -> impl Strategy<Value = UsageCounts> {
    (
        any::<u64>(),
        any::<u64>(),
        btree_map("[a-z_]{1,12}".prop_map(ErrorCode::from), any::<u64>(), 0..4),
    )
        .prop_map(|(admitted, denied, denied_by_reason)| UsageCounts {
            admitted,
            denied,
            denied_by_reason,
        })
}

#[track_caller]
fn assert_round_trip<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let text = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(&back, value, "{text}");
}

proptest! {
    #[test]
    fn chat_request_round_trips(request in chat_request()) {
        assert_round_trip(&request);
    }

    #[test]
    fn chat_response_round_trips(response in chat_response()) {
        assert_round_trip(&response);
    }

    #[test]
    fn chat_chunk_round_trips(chunk in chat_chunk()) {
        assert_round_trip(&chunk);
    }

    #[test]
    fn api_error_round_trips_with_its_status(error in api_error()) {
        assert_round_trip(&error);
    }

    #[test]
    fn key_types_round_trip(
        record in key_record(),
        key in "nova_[0-9a-f]{59}",
        create in (text(), text(), option::of(any::<u32>()), option::of(any::<u32>()),
                   option::of(any::<i64>()), option::of(vec(scope(), 0..6))),
        today in usage_counts(),
        total in usage_counts(),
        last_used_at in option::of(any::<i64>()),
    ) {
        assert_round_trip(&record);
        assert_round_trip(&CreatedKey::new(key, record.clone()));
        let (name, owner, rpm, daily, expires_at, scopes) = create;
        assert_round_trip(&CreateKeyRequest {
            name, owner, rate_limit_per_minute: rpm, daily_limit: daily, expires_at, scopes,
        });
        let days = vec![DayUsage { date: "2026-11-30".into(), counts: today.clone() }];
        let limits = Some(UsageLimits {
            minute: LimitState { limit: 60, remaining: 59, reset: 1 },
            day: LimitState { limit: 1000, remaining: 2, reset: 41_000 },
        });
        assert_round_trip(&KeyUsage { id: record.id.clone(), today, total, last_used_at, days, limits });
        assert_round_trip(&ListPage::new(vec![record], true, |r: &KeyRecord| &r.id));
    }

    #[test]
    fn catalogue_and_conversation_types_round_trip(
        model in (id(), any::<i64>(), text()),
        persona in (id(), text(), text(), text(), text()),
        conversation in (id(), any::<i64>(), option::of(metadata())),
        messages in vec((id(), any::<i64>(), role(), text()), 0..4),
        has_more in any::<bool>(),
    ) {
        assert_round_trip(&Model::new(model.0, model.1, model.2));
        let (id, name, description, model, instructions) = persona;
        assert_round_trip(&Persona::new(id, name, description, model, instructions));
        assert_round_trip(&Conversation::new(conversation.0, conversation.1, conversation.2));
        let data: Vec<_> = messages
            .into_iter()
            .map(|(id, created_at, role, content)| ConversationMessage::new(id, created_at, role, content))
            .collect();
        assert_round_trip(&ListPage::new(data, has_more, |m: &ConversationMessage| &m.id));
    }
}

#[test]
fn list_page_ids_follow_the_data() {
    let page = ListPage::new(vec!["a", "b", "c"], true, |s: &&str| s);
    assert_eq!(page.first_id.as_deref(), Some("a"));
    assert_eq!(page.last_id.as_deref(), Some("c"));
    let empty = ListPage::new(Vec::<&str>::new(), false, |s: &&str| s);
    assert_eq!(
        serde_json::to_value(&empty).unwrap(),
        json!({
            "object": "list", "data": [], "first_id": null, "last_id": null, "has_more": false
        })
    );
}
