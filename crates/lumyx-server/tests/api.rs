//! The whole HTTP API of SPEC §5 against a real server on a loopback port,
//! in memory: every route's happy path, the SPEC §4 errors the server can
//! produce (each body checked for the four envelope keys), the SPEC §3
//! headers, SSE streams, scopes, the key lifecycle and owner isolation.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::{Client, TestServer, eventually, expect_error, key_of, sse_data};
use futures_util::StreamExt;
use lumyx_api_types::{ApiError, FinishReason, Model};
use lumyx_server::{ChatModel, Completion, DemoModel, Piece, Prompt, Server, TextStream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn health_models_and_personas_answer_in_openai_shapes() {
    let server = TestServer::start().await;
    let api = server.client();
    let key = &server.demo_key;

    let health = api.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.status(), StatusCode::OK);
    assert!(health.headers().contains_key("x-request-id"));
    assert!(!health.headers().contains_key("x-ratelimit-limit-requests"));

    let models = api.get("/v1/models", key).await;
    assert_eq!(models.status(), StatusCode::OK);
    assert_eq!(models.headers()["x-ratelimit-limit-requests"], "60");
    let models: Value = models.json().await.unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"nova_1_1"), "{ids:?}");
    for model in models["data"].as_array().unwrap() {
        assert_eq!(model["object"], "model");
        assert!(model["created"].is_i64() && model["owned_by"].is_string());
    }

    let model: Value = api.get_json("/v1/models/nova_1_1", key).await;
    assert_eq!(
        (model["id"].as_str(), model["object"].as_str()),
        (Some("nova_1_1"), Some("model"))
    );
    let missing = expect_error(
        api.get("/v1/models/gpt-9", key).await,
        StatusCode::NOT_FOUND,
        "model_not_found",
    )
    .await;
    assert_eq!(missing["type"], "invalid_request_error");

    let personas: Value = api.get_json("/v1/personas", key).await;
    let tutor = personas["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|persona| persona["id"] == "tutor")
        .expect("the tutor persona")
        .clone();
    for field in ["id", "name", "description", "model", "instructions"] {
        assert!(tutor[field].is_string(), "{field} in {tutor}");
    }
    let shown: Value = api.get_json("/v1/personas/tutor", key).await;
    assert_eq!(shown, tutor);
    expect_error(
        api.get("/v1/personas/nobody", key).await,
        StatusCode::NOT_FOUND,
        "persona_not_found",
    )
    .await;
}

#[tokio::test]
async fn a_chat_completion_answers_with_honest_usage_and_the_limit_headers() {
    let server = TestServer::start().await;
    let api = server.client();
    let response = api.chat(&server.demo_key, "Hello there").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-remaining-requests"], "59");
    assert_eq!(headers["x-ratelimit-remaining-requests-day"], "999");
    assert!(headers.contains_key("ratelimit-policy") && headers.contains_key("ratelimit"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "nova_1_1");
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("Hello there"), "{text}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let usage = &body["usage"];
    let (prompt, completion) = (
        usage["prompt_tokens"].as_u64().unwrap(),
        usage["completion_tokens"].as_u64().unwrap(),
    );
    assert!(prompt > 0 && completion > 0);
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), prompt + completion);
    assert_eq!(
        completion,
        lumyx_server::count_tokens(text) as u64,
        "completion tokens are the reply's tokens"
    );

    // Deterministic: the same request gets the same text.
    let again: Value = api
        .chat(&server.demo_key, "Hello there")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["choices"][0]["message"]["content"], text);
}

/// The chunks of an SSE answer: each parses as an OpenAI chunk, the last
/// data line is `[DONE]`; answers the text and the usage chunk.
async fn read_stream(response: reqwest::Response) -> (String, Option<Value>) {
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert!(
        response
            .headers()
            .contains_key("x-ratelimit-remaining-requests")
    );
    let body = response.text().await.unwrap();
    let data = sse_data(&body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{body}");
    let mut text = String::new();
    let mut usage = None;
    let mut finished = false;
    for chunk in &data[..data.len() - 1] {
        let chunk: Value = serde_json::from_str(chunk).expect("a JSON chunk");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk["id"].as_str().unwrap().starts_with("chatcmpl-"));
        for choice in chunk["choices"].as_array().unwrap() {
            if let Some(piece) = choice["delta"]["content"].as_str() {
                text.push_str(piece);
            }
            if choice["finish_reason"] == "stop" {
                finished = true;
            }
        }
        if !chunk["usage"].is_null() {
            assert!(
                chunk["choices"].as_array().unwrap().is_empty(),
                "usage comes alone"
            );
            usage = Some(chunk["usage"].clone());
        }
    }
    assert!(finished, "a chunk says why the choice finished");
    (text, usage)
}

#[tokio::test]
async fn streams_end_with_done_and_carry_usage_when_asked_also_through_agents() {
    let server = TestServer::start().await;
    let api = server.client();
    let key = &server.demo_key;
    let request = |stream_options: Value| {
        let mut body = json!({
            "model": "nova_1_1",
            "stream": true,
            "messages": [{"role": "user", "content": "Tell me about limits"}],
        });
        if !stream_options.is_null() {
            body["stream_options"] = stream_options;
        }
        body
    };
    let plain: Value = api
        .chat(key, "Tell me about limits")
        .await
        .json()
        .await
        .unwrap();
    let plain_text = plain["choices"][0]["message"]["content"].as_str().unwrap();

    let (text, usage) = read_stream(
        api.post(
            "/v1/chat/completions",
            key,
            request(json!({"include_usage": true})),
        )
        .await,
    )
    .await;
    assert_eq!(text, plain_text, "the stream says what the completion says");
    assert_eq!(usage.expect("usage was asked for"), plain["usage"]);

    let (_, usage) = read_stream(
        api.post("/v1/chat/completions", key, request(Value::Null))
            .await,
    )
    .await;
    assert!(usage.is_none(), "no usage unless asked");

    let agent = api
        .post(
            "/v1/agents/tutor/chat/completions",
            key,
            request(json!({"include_usage": true})),
        )
        .await;
    let (text, usage) = read_stream(agent).await;
    assert!(!text.is_empty());
    let usage = usage.expect("usage through the agents route");
    assert!(
        usage["prompt_tokens"].as_u64().unwrap()
            > plain["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the persona's instructions are part of the prompt"
    );

    expect_error(
        api.post(
            "/v1/agents/nobody/chat/completions",
            key,
            request(Value::Null),
        )
        .await,
        StatusCode::NOT_FOUND,
        "persona_not_found",
    )
    .await;
}

#[tokio::test]
async fn every_authentication_row_answers_in_order_with_its_headers() {
    let server = TestServer::start().await;
    let api = server.client();
    let chat = json!({"model": "nova_1_1", "messages": [{"role": "user", "content": "hi"}]});

    // No header, an empty one, a wrong scheme, a bad key.
    let missing = api.call(Method::GET, "/v1/models", None, None).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert!(!missing.headers().contains_key("x-ratelimit-limit-requests"));
    expect_error(missing, StatusCode::UNAUTHORIZED, "missing_api_key").await;
    let basic = api
        .http
        .get(format!("{}/v1/models", api.base))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    expect_error(
        basic,
        StatusCode::UNAUTHORIZED,
        "invalid_authorization_header",
    )
    .await;
    let unknown = api.get("/v1/models", "nova_not_a_key").await;
    assert_eq!(unknown.headers()["www-authenticate"], "Bearer");
    let unknown = expect_error(unknown, StatusCode::UNAUTHORIZED, "invalid_api_key").await;
    assert!(
        !unknown["message"]
            .as_str()
            .unwrap()
            .contains("nova_not_a_key")
    );

    // A models-only key: 403 on chat with the limit headers, 200 on models.
    let models_only = key_of(
        &api.create_key(
            &server.admin,
            json!({"name": "m", "owner": "acct_m", "scopes": ["models"]}),
        )
        .await,
    );
    let refused = api
        .post("/v1/chat/completions", &models_only, chat.clone())
        .await;
    assert_eq!(
        refused.headers()["x-ratelimit-remaining-requests"],
        "60",
        "nothing consumed"
    );
    let refused = expect_error(refused, StatusCode::FORBIDDEN, "insufficient_scope").await;
    assert_eq!(refused["type"], "permission_error");
    assert_eq!(
        api.get("/v1/models", &models_only).await.status(),
        StatusCode::OK
    );

    // Limits: the minute, then the day (which wins when both are spent).
    let one_a_minute = key_of(
        &api.create_key(
            &server.admin,
            json!({"name": "r", "owner": "acct_r", "rate_limit_per_minute": 1}),
        )
        .await,
    );
    assert_eq!(
        api.get("/v1/models", &one_a_minute).await.status(),
        StatusCode::OK
    );
    let limited = api.get("/v1/models", &one_a_minute).await;
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert!(limited.headers().contains_key("retry-after-ms"));
    assert!(!limited.headers().contains_key("x-should-retry"));
    let limited = expect_error(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_exceeded",
    )
    .await;
    assert_eq!(limited["type"], "rate_limit_error");

    let one_a_day = key_of(
        &api.create_key(
            &server.admin,
            json!({"name": "d", "owner": "acct_d", "rate_limit_per_minute": 1, "daily_limit": 1}),
        )
        .await,
    );
    assert_eq!(
        api.get("/v1/models", &one_a_day).await.status(),
        StatusCode::OK
    );
    let spent = api.get("/v1/models", &one_a_day).await;
    assert_eq!(spent.headers()["x-should-retry"], "false");
    expect_error(spent, StatusCode::TOO_MANY_REQUESTS, "daily_limit_exceeded").await;

    // Revoked, then expired (expiry answers first when both hold).
    let created = api
        .create_key(&server.admin, json!({"name": "v", "owner": "acct_v"}))
        .await;
    let revoked = key_of(&created);
    api.delete(
        &format!("/v1/keys/{}", created["id"].as_str().unwrap()),
        &server.admin,
    )
    .await;
    let refused = api.get("/v1/models", &revoked).await;
    assert!(!refused.headers().contains_key("x-ratelimit-limit-requests"));
    expect_error(refused, StatusCode::FORBIDDEN, "api_key_revoked").await;
}

#[tokio::test]
async fn routing_body_and_media_errors_are_envelopes_before_authentication() {
    let server = TestServer::start().await;
    let api = server.client();
    let key = &server.demo_key;

    // Unknown routes and wrong methods: before authentication.
    expect_error(
        api.call(Method::GET, "/v2/nothing", None, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let wrong = api.call(Method::DELETE, "/v1/models", None, None).await;
    expect_error(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let wrong = api
        .call(Method::PUT, "/v1/chat/completions", Some(key), None)
        .await;
    expect_error(wrong, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let bad_path = api.get("/v1/models/%ff", key).await;
    assert_eq!(bad_path.headers()["x-ratelimit-limit-requests"], "60");
    let bad_path = expect_error(bad_path, StatusCode::BAD_REQUEST, "invalid_value").await;
    assert_eq!(bad_path["param"], "path");
    expect_error(
        api.get("/v1/keys/%ff", &server.admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;

    let post_raw = |body: Vec<u8>, content_type: Option<&str>| {
        let mut request = api
            .http
            .post(format!("{}/v1/chat/completions", api.base))
            .bearer_auth(key)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let json_type = Some("application/json");
    expect_error(
        post_raw(b"{not json".to_vec(), json_type).await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
    expect_error(
        post_raw(
            br#"{"model":"nova_1_1","messages":[{"role":"user","content":"hi"}]}"#.to_vec(),
            Some("text/plain"),
        )
        .await
        .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let mut huge = br#"{"model":"nova_1_1","messages":[{"role":"user","content":""#.to_vec();
    huge.resize(huge.len() + (1 << 20), b'a');
    huge.extend_from_slice(br#""}]}"#);
    expect_error(
        post_raw(huge, json_type).await.unwrap(),
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
    )
    .await;

    let missing = expect_error(
        api.post("/v1/chat/completions", key, json!({"model": "nova_1_1"}))
            .await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert_eq!(missing["param"], "messages");
    let bad_role = expect_error(
        api.post(
            "/v1/chat/completions",
            key,
            json!({"model": "nova_1_1", "messages": [{"role": "boss", "content": "x"}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;
    assert_eq!(bad_role["param"], "messages[0].role");
    for (field, value) in [
        ("temperature", json!(2.5)),
        ("top_p", json!(1.5)),
        ("n", json!(0)),
    ] {
        let mut body = json!({"model": "nova_1_1", "messages": [{"role": "user", "content": "x"}]});
        body[field] = value;
        let error = expect_error(
            api.post("/v1/chat/completions", key, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_value",
        )
        .await;
        assert_eq!(error["param"], field);
    }
    expect_error(
        api.post(
            "/v1/chat/completions",
            key,
            json!({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "model_not_found",
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_echoed_when_well_formed_and_made_otherwise() {
    let server = TestServer::start().await;
    let api = server.client();
    let with_id = |id: &str| {
        api.http
            .get(format!("{}/health", api.base))
            .header("x-request-id", id)
            .send()
    };
    let echoed = with_id("trace-42_abc").await.unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42_abc");
    let replaced = with_id("bad id with spaces").await.unwrap();
    let made = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(made.starts_with("req_") && made.len() == 28, "{made}");
    let first = api.call(Method::GET, "/nope", None, None).await;
    let second = api.call(Method::GET, "/nope", None, None).await;
    assert_ne!(
        first.headers()["x-request-id"],
        second.headers()["x-request-id"]
    );
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token_and_checks_its_input() {
    let server = TestServer::start().await;
    let api = server.client();
    let admin = &server.admin;

    let none = api.call(Method::GET, "/v1/keys", None, None).await;
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    expect_error(none, StatusCode::UNAUTHORIZED, "missing_api_key").await;
    expect_error(
        api.get("/v1/keys", &server.demo_key).await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    expect_error(
        api.get("/metrics", "lumyx_admin_wrong_guess").await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;

    for (field, value) in [
        ("rate_limit_per_minute", json!(0)),
        ("rate_limit_per_minute", json!(1001)),
        ("daily_limit", json!(10_001)),
        ("expires_at", json!(now() - 10)),
        ("expires_at", json!(253_402_300_800_i64)),
        ("scopes", json!(["admin"])),
    ] {
        let mut body = json!({"name": "k", "owner": "acct"});
        body[field] = value.clone();
        let error = expect_error(
            api.post("/v1/keys", admin, body).await,
            StatusCode::BAD_REQUEST,
            "invalid_value",
        )
        .await;
        assert!(
            error["param"].as_str().unwrap().starts_with(field),
            "{field} = {value}: {error}"
        );
    }
    let error = expect_error(
        api.post("/v1/keys", admin, json!({"name": "k"})).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert_eq!(error["param"], "owner");
    for path in [
        "/v1/keys/key_0000000000000000",
        "/v1/keys/nonsense",
        "/v1/keys/key_0000000000000000/usage",
    ] {
        expect_error(
            api.get(path, admin).await,
            StatusCode::NOT_FOUND,
            "key_not_found",
        )
        .await;
    }
    expect_error(
        api.delete("/v1/keys/key_0000000000000000", admin).await,
        StatusCode::NOT_FOUND,
        "key_not_found",
    )
    .await;
    expect_error(
        api.post("/v1/keys/key_0000000000000000/rotate", admin, json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "key_not_found",
    )
    .await;

    assert_eq!(
        api.get("/v1/models", &server.demo_key).await.status(),
        StatusCode::OK
    );
    expect_error(
        api.get("/v1/models", "nova_not_a_key").await,
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    let metrics = api.get("/metrics", admin).await;
    assert_eq!(metrics.status(), StatusCode::OK);
    let text = metrics.text().await.unwrap();
    for name in [
        "lumyx_http_requests_total",
        "lumyx_http_request_duration_seconds",
        "lumyx_keys",
    ] {
        assert!(text.contains(name), "{name} in {text}");
    }
    for outcome in ["admitted", "invalid_api_key"] {
        let line = format!("lumyx_gate_decisions_total{{outcome=\"{outcome}\"}} 1");
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(
        text.contains("route=\"/v1/models\",method=\"GET\",status=\"200\""),
        "{text}"
    );
}

#[tokio::test]
async fn a_key_lives_created_used_updated_rotated_revoked_and_expired() {
    let server = TestServer::start().await;
    let api = server.client();
    let admin = &server.admin;

    let created = api
        .create_key(admin, json!({"name": "ci", "owner": "acct_1", "rate_limit_per_minute": 5, "daily_limit": 100}))
        .await;
    let key = key_of(&created);
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("nova_") && key.len() == 64);
    assert_eq!(created["hint"].as_str().unwrap().chars().count(), 14);
    for _ in 0..2 {
        assert_eq!(api.chat(&key, "hi").await.status(), StatusCode::OK);
    }
    let shown: Value = api.get_json(&format!("/v1/keys/{id}"), admin).await;
    assert!(
        shown.get("key").is_none(),
        "the key is shown once, at creation"
    );
    assert_eq!(shown["rate_limit_per_minute"], 5);

    // Update: the limiter state is kept (2 spent of the new 10).
    let updated = api
        .post(
            &format!("/v1/keys/{id}"),
            admin,
            json!({"name": "ci-2", "rate_limit_per_minute": 10}),
        )
        .await;
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(
        (
            updated["name"].as_str(),
            updated["rate_limit_per_minute"].as_u64()
        ),
        (Some("ci-2"), Some(10))
    );
    let after = api.chat(&key, "hi").await;
    assert_eq!(after.headers()["x-ratelimit-limit-requests"], "10");
    // Kept as time owed: 2 requests at 12 s each are 24 s, 4 requests at the
    // new 6 s; so 10 - 4 - 1 remain (a reset would leave 9).
    assert_eq!(after.headers()["x-ratelimit-remaining-requests"], "5");
    let bad = api
        .post(&format!("/v1/keys/{id}"), admin, json!({"daily_limit": 0}))
        .await;
    assert_eq!(
        expect_error(bad, StatusCode::BAD_REQUEST, "invalid_value").await["param"],
        "daily_limit"
    );
    let narrowed = api
        .post(
            &format!("/v1/keys/{id}"),
            admin,
            json!({"scopes": ["models"]}),
        )
        .await;
    assert_eq!(narrowed.status(), StatusCode::OK);
    expect_error(
        api.chat(&key, "hi").await,
        StatusCode::FORBIDDEN,
        "insufficient_scope",
    )
    .await;
    api.post(
        &format!("/v1/keys/{id}"),
        admin,
        json!({"scopes": ["models", "chat"]}),
    )
    .await;

    // Usage: 4 admitted chats, 1 refused for its scope, 31 days.
    let usage: Value = api.get_json(&format!("/v1/keys/{id}/usage"), admin).await;
    assert_eq!(usage["today"]["admitted"], 3);
    assert_eq!(usage["today"]["denied"], 1);
    assert_eq!(usage["today"]["denied_by_reason"]["insufficient_scope"], 1);
    assert_eq!(usage["total"]["admitted"], 3);
    assert!(usage["last_used_at"].as_i64().unwrap() >= now() - 60);
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 31);
    assert_eq!(
        days[30]["date"],
        chrono::Utc::now().date_naive().to_string()
    );
    assert_eq!(days[30]["admitted"], 3);
    assert_eq!(usage["limits"]["minute"]["limit"], 10);
    assert_eq!(usage["limits"]["minute"]["remaining"], 5);
    assert_eq!(usage["limits"]["day"]["remaining"], 97);

    // Rotate with a grace period: both work, then the old one is revoked.
    let rotated = api
        .post(
            &format!("/v1/keys/{id}/rotate"),
            admin,
            json!({"grace_period_seconds": 1}),
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    let new_key = key_of(&rotated);
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(
        (
            rotated["name"].as_str(),
            rotated["rate_limit_per_minute"].as_u64()
        ),
        (Some("ci-2"), Some(10))
    );
    let old_in_grace = api.get("/v1/models", &key).await;
    assert_eq!(old_in_grace.status(), StatusCode::OK);
    assert!(
        old_in_grace
            .headers()
            .contains_key("x-lumyx-key-expires-at"),
        "the grace period's end is announced"
    );
    assert_eq!(
        api.get("/v1/models", &new_key).await.status(),
        StatusCode::OK
    );
    assert!(
        eventually(Duration::from_secs(3), || async {
            api.get("/v1/models", &key).await.status() == StatusCode::FORBIDDEN
        })
        .await,
        "the old key stops working after its grace period"
    );
    expect_error(
        api.get("/v1/models", &key).await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;
    let rotate_again = api
        .post(&format!("/v1/keys/{id}/rotate"), admin, json!({}))
        .await;
    expect_error(rotate_again, StatusCode::BAD_REQUEST, "invalid_value").await;

    // Revoke the new one: 403 at once.
    let revoked = api.delete(&format!("/v1/keys/{new_id}"), admin).await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revoked_at"].as_i64().is_some());
    expect_error(
        api.get("/v1/models", &new_key).await,
        StatusCode::FORBIDDEN,
        "api_key_revoked",
    )
    .await;

    // Expiry: a key that expires in a second works, then is expired.
    let expiring = api
        .create_key(
            admin,
            json!({"name": "short", "owner": "acct_1", "expires_at": now() + 2}),
        )
        .await;
    let expiring_key = key_of(&expiring);
    let soon = api.get("/v1/models", &expiring_key).await;
    assert_eq!(soon.status(), StatusCode::OK);
    assert!(soon.headers().contains_key("x-lumyx-key-expires-at"));
    assert!(
        eventually(Duration::from_secs(4), || async {
            api.get("/v1/models", &expiring_key).await.status() == StatusCode::FORBIDDEN
        })
        .await
    );
    expect_error(
        api.get("/v1/models", &expiring_key).await,
        StatusCode::FORBIDDEN,
        "api_key_expired",
    )
    .await;

    // The list: filtered by owner, paginated.
    let page: Value = api
        .get_json("/v1/keys?owner=acct_1&limit=2&order=asc", admin)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["first_id"], id.as_str());
    let rest: Value = api
        .get_json(
            &format!(
                "/v1/keys?owner=acct_1&limit=2&order=asc&after={}",
                page["last_id"].as_str().unwrap()
            ),
            admin,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["has_more"], false);
    assert!(
        rest["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|key| key["owner"] == "acct_1" && key.get("key").is_none())
    );
    expect_error(
        api.get("/v1/keys?limit=0", admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;
    expect_error(
        api.get("/v1/keys?after=key_0000000000000000", admin).await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;
}

/// A key of its own owner.
async fn key_of_owner(api: &Client, admin: &str, owner: &str) -> String {
    key_of(
        &api.create_key(
            admin,
            json!({"name": owner, "owner": owner, "rate_limit_per_minute": 1000}),
        )
        .await,
    )
}

#[tokio::test]
async fn conversations_are_their_owners_alone_and_paginate() {
    let server = TestServer::start().await;
    let api = server.client();
    let alice = key_of_owner(&api, &server.admin, "alice").await;
    let alice_2 = key_of_owner(&api, &server.admin, "alice").await;
    let mallory = key_of_owner(&api, &server.admin, "mallory").await;

    let created = api
        .post(
            "/v1/conversations",
            &alice,
            json!({"metadata": {"topic": "limits"}, "messages": [{"role": "user", "content": "first"}]}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::OK);
    let conversation: Value = created.json().await.unwrap();
    let id = conversation["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("conv_"));
    assert_eq!(conversation["object"], "conversation");
    assert_eq!(conversation["metadata"]["topic"], "limits");

    // The same owner's other key sees it; another owner does not.
    let shown: Value = api
        .get_json(&format!("/v1/conversations/{id}"), &alice_2)
        .await;
    assert_eq!(shown, conversation);
    let path = format!("/v1/conversations/{id}");
    expect_error(
        api.get(&path, &mallory).await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    expect_error(
        api.get(&format!("{path}/messages"), &mallory).await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    expect_error(
        api.post(&path, &mallory, json!({"metadata": {"x": "y"}}))
            .await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    expect_error(
        api.delete(&path, &mallory).await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
    let listed: Value = api.get_json("/v1/conversations", &mallory).await;
    assert_eq!(listed["data"], json!([]));
    assert_eq!(listed["first_id"], Value::Null);

    // A chat with conversation_id replays it and adds the exchange.
    let reply: Value = api
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"model": "nova_1_1", "conversation_id": id, "messages": [{"role": "user", "content": "second"}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        text.contains("2 messages"),
        "the history was replayed: {text}"
    );
    let messages: Value = api
        .get_json(&format!("{path}/messages?order=asc"), &alice)
        .await;
    let contents: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["first", "second", text]);
    expect_error(
        api.post(
            "/v1/chat/completions",
            &mallory,
            json!({"model": "nova_1_1", "conversation_id": id, "messages": [{"role": "user", "content": "peek"}]}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;

    // Through an agent, the persona's instructions lead the prompt but are
    // not stored.
    let agent_reply = api
        .post(
            "/v1/agents/tutor/chat/completions",
            &alice,
            json!({"model": "nova_1_1", "conversation_id": id, "messages": [{"role": "user", "content": "third"}]}),
        )
        .await;
    assert_eq!(agent_reply.status(), StatusCode::OK);
    let messages: Value = api
        .get_json(&format!("{path}/messages?order=asc"), &alice)
        .await;
    let roles: Vec<&str> = messages["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "user", "assistant", "user", "assistant"]);

    // A full conversation takes no more messages.
    let many: Vec<Value> = (0..lumyx_server::MAX_MESSAGES_PER_CONVERSATION)
        .map(|i| json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let full: Value = api
        .post("/v1/conversations", &alice, json!({"messages": many}))
        .await
        .json()
        .await
        .unwrap();
    let full_id = full["id"].as_str().unwrap();
    let refused = api
        .post(
            "/v1/chat/completions",
            &alice,
            json!({"model": "nova_1_1", "conversation_id": full_id, "messages": [{"role": "user", "content": "one more"}]}),
        )
        .await;
    let refused = expect_error(refused, StatusCode::BAD_REQUEST, "invalid_value").await;
    assert_eq!(refused["param"], "messages");
    api.delete(&format!("/v1/conversations/{full_id}"), &alice)
        .await;

    // Update, pagination, delete.
    let updated: Value = api
        .post(&path, &alice, json!({"metadata": {"topic": "keys"}}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(updated["metadata"]["topic"], "keys");
    for _ in 0..3 {
        assert_eq!(
            api.post("/v1/conversations", &alice, json!({}))
                .await
                .status(),
            StatusCode::OK
        );
    }
    let page: Value = api.get_json("/v1/conversations?limit=3", &alice).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["has_more"], true);
    let last: Value = api
        .get_json(
            &format!(
                "/v1/conversations?limit=3&after={}",
                page["last_id"].as_str().unwrap()
            ),
            &alice,
        )
        .await;
    assert_eq!(last["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        last["data"][0]["id"],
        id.as_str(),
        "the oldest comes last, newest first"
    );
    assert_eq!(last["has_more"], false);
    expect_error(
        api.get("/v1/conversations?limit=101", &alice).await,
        StatusCode::BAD_REQUEST,
        "invalid_value",
    )
    .await;

    let deleted: Value = api.delete(&path, &alice).await.json().await.unwrap();
    assert_eq!(
        deleted,
        json!({"id": id, "object": "conversation.deleted", "deleted": true})
    );
    expect_error(
        api.get(&path, &alice).await,
        StatusCode::NOT_FOUND,
        "conversation_not_found",
    )
    .await;
}

/// A server of `config` answering with `model`: the running server, its
/// demo key and a client.
async fn start_with_model(
    config: lumyx_server::Config,
    model: impl ChatModel,
) -> (lumyx_server::RunningServer, String, Client) {
    let running = Server::new(config).with_model(model).start().await.unwrap();
    let key = running
        .started()
        .demo_key
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned();
    let api = Client::new(format!("http://{}", running.local_addr()));
    (running, key, api)
}

/// A model whose streams say one word, then wait for the test to release
/// them: a request that stays in flight as long as the test wants.
struct HeldModel {
    release: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl ChatModel for HeldModel {
    fn models(&self) -> Vec<Model> {
        DemoModel.models()
    }

    async fn complete(&self, prompt: &Prompt) -> Result<Completion, ApiError> {
        DemoModel.complete(prompt).await
    }

    async fn stream(&self, _prompt: Prompt) -> Result<TextStream, ApiError> {
        let release = Arc::clone(&self.release);
        let first = futures_util::stream::iter([Ok(Piece::Text("held ".to_owned()))]);
        let rest = futures_util::stream::once(async move {
            release.notified().await;
            Ok(Piece::Text("released".to_owned()))
        });
        let end = futures_util::stream::iter([Ok(Piece::Finished(FinishReason::Stop))]);
        Ok(Box::pin(first.chain(rest).chain(end)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_lets_a_stream_in_flight_finish_and_takes_no_new_request() {
    let release = Arc::new(tokio::sync::Notify::new());
    let (running, key, api) = start_with_model(
        common::test_config(),
        HeldModel {
            release: Arc::clone(&release),
        },
    )
    .await;
    let body = json!({"model": "nova_1_1", "stream": true, "messages": [{"role": "user", "content": "hold on"}]});
    let mut response = api.post("/v1/chat/completions", &key, body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let first = response.chunk().await.unwrap().expect("the first chunk");
    assert!(String::from_utf8_lossy(&first).contains("data: "));

    let shutting_down = tokio::spawn(running.shutdown());
    let probe = api.clone();
    assert!(
        eventually(Duration::from_secs(5), || {
            let probe = probe.clone();
            async move {
                probe
                    .http
                    .get(format!("{}/health", probe.base))
                    .send()
                    .await
                    .is_err()
            }
        })
        .await,
        "a server shutting down takes no new connection"
    );
    assert!(
        !shutting_down.is_finished(),
        "the stream in flight holds the shutdown"
    );
    release.notify_one();
    let mut rest = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = sse_data(&rest);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(rest.contains("released"), "{rest}");
    tokio::time::timeout(Duration::from_secs(5), shutting_down)
        .await
        .expect("the shutdown ends once the stream has")
        .unwrap()
        .expect("a clean shutdown");
}

/// A model that never answers.
struct StuckModel;

#[async_trait]
impl ChatModel for StuckModel {
    fn models(&self) -> Vec<Model> {
        DemoModel.models()
    }

    async fn complete(&self, _prompt: &Prompt) -> Result<Completion, ApiError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_503_envelope() {
    let config = lumyx_server::Config {
        request_timeout: Duration::from_millis(200),
        ..common::test_config()
    };
    let (_running, key, api) = start_with_model(config, StuckModel).await;
    let late = api.chat(&key, "anyone there?").await;
    assert_eq!(
        late.headers()["x-ratelimit-remaining-requests"],
        "59",
        "a late answer still carries the key's headers"
    );
    let error = expect_error(late, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert_eq!(error["type"], "server_error");
    assert_eq!(
        api.get("/v1/models", &key).await.status(),
        StatusCode::OK,
        "the server still serves"
    );
}

/// A model that panics.
struct PanickingModel;

#[async_trait]
impl ChatModel for PanickingModel {
    fn models(&self) -> Vec<Model> {
        DemoModel.models()
    }

    async fn complete(&self, _prompt: &Prompt) -> Result<Completion, ApiError> {
        panic!("the model broke")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_a_500_envelope_and_a_broken_stream_says_so() {
    let (_running, key, api) = start_with_model(common::test_config(), PanickingModel).await;
    expect_error(
        api.chat(&key, "hi").await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
    )
    .await;

    let body = json!({"model": "nova_1_1", "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let streamed = api
        .post("/v1/chat/completions", &key, body)
        .await
        .text()
        .await
        .unwrap();
    let data = sse_data(&streamed);
    assert_ne!(
        data.last().map(String::as_str),
        Some("[DONE]"),
        "{streamed}"
    );
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "internal_error", "{streamed}");
    assert_eq!(
        api.get("/v1/models", &key).await.status(),
        StatusCode::OK,
        "the server still serves"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = lumyx_server::Config {
        header_read_timeout: Duration::from_millis(300),
        ..common::test_config()
    };
    let running = Server::new(config).start().await.unwrap();
    let mut slow = tokio::net::TcpStream::connect(running.local_addr())
        .await
        .unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    assert!(
        closed.is_ok(),
        "the server closes a connection whose head never ends"
    );
    let api = Client::new(format!("http://{}", running.local_addr()));
    assert_eq!(
        api.call(Method::GET, "/health", None, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_waits_for_streams_no_longer_than_its_grace() {
    let config = lumyx_server::Config {
        shutdown_grace: Duration::from_millis(300),
        ..common::test_config()
    };
    let never = Arc::new(tokio::sync::Notify::new());
    let (running, key, api) = start_with_model(
        config,
        HeldModel {
            release: Arc::clone(&never),
        },
    )
    .await;
    let body = json!({"model": "nova_1_1", "stream": true, "messages": [{"role": "user", "content": "hold"}]});
    let mut response = api.post("/v1/chat/completions", &key, body).await;
    assert!(response.chunk().await.unwrap().is_some());
    tokio::time::timeout(Duration::from_secs(5), running.shutdown())
        .await
        .expect("the shutdown gives up on the stream after its grace")
        .expect("a clean shutdown");
}
