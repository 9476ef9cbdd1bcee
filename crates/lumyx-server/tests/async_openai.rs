//! The `async-openai` crate, unmodified, against a real server in this
//! process: with its API base at `{base}/v1` (or an agent's
//! `{base}/v1/agents/{persona}`) it completes chats, streams them with the
//! usage chunk, lists and retrieves models, and surfaces the server's errors
//! as `OpenAIError::ApiError` with SPEC §4's status and code.
//!
//! async-openai 0.43 retries a 429 up to three times on its own, sleeping
//! for the response's `retry-after` (it cannot be turned off without its
//! `middleware` feature), so the 429 is shown in two halves: the client's
//! retry obeys the server's `retry-after` and is then admitted, and the 429
//! body is the error the client parses (`WrappedError`) when it gives up.

mod common;

use std::time::{Duration, Instant};

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, ChatCompletionStreamOptions, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use common::{TestServer, key_of};
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROMPT: &str = "Explain token buckets in one sentence.";

/// An async-openai client of `api_base` with `key`.
fn openai(api_base: String, key: &str) -> Client<OpenAIConfig> {
    Client::with_config(
        OpenAIConfig::new()
            .with_api_base(api_base)
            .with_api_key(key),
    )
}

/// A request of one user message to `model`.
fn request(model: &str, text: &str) -> CreateChatCompletionRequest {
    CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(text)
            .build()
            .expect("a user message")
            .into()])
        .build()
        .expect("a chat request")
}

/// The text of the first choice of a non-streamed completion.
async fn reply(client: &Client<OpenAIConfig>, text: &str) -> String {
    let response = client
        .chat()
        .create(request("nova_1_1", text))
        .await
        .expect("a completion");
    response.choices[0]
        .message
        .content
        .clone()
        .expect("content")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completion() {
    let server = TestServer::start().await;
    let client = openai(format!("{}/v1", server.base), &server.demo_key);

    let response = client
        .chat()
        .create(request("nova_1_1", PROMPT))
        .await
        .expect("a completion");

    assert_eq!(response.model, "nova_1_1");
    assert_eq!(response.object, "chat.completion");
    assert!(response.id.starts_with("chatcmpl-"), "{}", response.id);
    assert_eq!(response.choices.len(), 1);
    let content = response.choices[0].message.content.as_deref();
    assert!(!content.unwrap_or_default().is_empty(), "{response:?}");
    assert!(response.choices[0].finish_reason.is_some());
    let usage = response.usage.expect("usage");
    assert!(
        usage.prompt_tokens > 0 && usage.completion_tokens > 0,
        "{usage:?}"
    );
    assert_eq!(
        usage.total_tokens,
        usage.prompt_tokens + usage.completion_tokens
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_chat_matches_the_whole_reply() {
    let server = TestServer::start().await;
    let client = openai(format!("{}/v1", server.base), &server.demo_key);
    let whole = client
        .chat()
        .create(request("nova_1_1", PROMPT))
        .await
        .expect("a completion");

    let mut streamed = request("nova_1_1", PROMPT);
    streamed.stream_options = Some(ChatCompletionStreamOptions {
        include_usage: Some(true),
        include_obfuscation: None,
    });
    let mut stream = client
        .chat()
        .create_stream(streamed)
        .await
        .expect("a stream");
    let mut chunks = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunks.push(chunk.expect("a chunk"));
    }

    let (usage_chunk, deltas) = chunks.split_last().expect("chunks");
    let text: String = deltas
        .iter()
        .flat_map(|chunk| &chunk.choices)
        .filter_map(|choice| choice.delta.content.as_deref())
        .collect();
    assert_eq!(
        Some(text.as_str()),
        whole.choices[0].message.content.as_deref()
    );
    assert!(deltas.iter().all(|chunk| chunk.usage.is_none()));
    assert!(deltas.iter().all(|chunk| chunk.id == usage_chunk.id));
    assert!(
        deltas
            .iter()
            .flat_map(|chunk| &chunk.choices)
            .any(|choice| choice.finish_reason.is_some()),
        "a finish reason"
    );
    assert!(usage_chunk.choices.is_empty(), "{usage_chunk:?}");
    assert_eq!(
        usage_chunk.usage, whole.usage,
        "the same prompt, the same count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_list_and_retrieve() {
    let server = TestServer::start().await;
    let client = openai(format!("{}/v1", server.base), &server.demo_key);

    let list = client.models().list().await.expect("the model list");
    assert_eq!(list.object, "list");
    let ids: Vec<&str> = list.data.iter().map(|model| model.id.as_str()).collect();
    assert!(ids.contains(&"nova_1_1"), "{ids:?}");
    assert!(ids.contains(&"nova_1_1_mini"), "{ids:?}");

    let model = client
        .models()
        .retrieve("nova_1_1_mini")
        .await
        .expect("a model");
    assert_eq!(model.id, "nova_1_1_mini");
    assert_eq!(model.object, "model");

    let missing = client.models().retrieve("nova_9").await;
    let error = api_error(missing, StatusCode::NOT_FOUND);
    assert_eq!(error.code.as_deref(), Some("model_not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_base_url_works_unchanged() {
    let server = TestServer::start().await;
    let agent = openai(format!("{}/v1/agents/tutor", server.base), &server.demo_key);
    let response = agent
        .chat()
        .create(request("nova_1_1", PROMPT))
        .await
        .expect("an agent completion");
    let content = response.choices[0].message.content.as_deref();
    assert!(!content.unwrap_or_default().is_empty(), "{response:?}");
    assert!(response.usage.expect("usage").total_tokens > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_an_api_error_401() {
    let server = TestServer::start().await;
    // Well formed, with a valid checksum, but made by another server.
    let other = TestServer::start().await;
    let client = openai(format!("{}/v1", server.base), &other.demo_key);

    let error = api_error(
        client.chat().create(request("nova_1_1", PROMPT)).await,
        StatusCode::UNAUTHORIZED,
    );
    assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
    assert_eq!(error.r#type.as_deref(), Some("invalid_request_error"));
    assert!(
        !error.message.contains(&other.demo_key),
        "{}",
        error.message
    );

    let error = api_error(client.models().list().await, StatusCode::UNAUTHORIZED);
    assert_eq!(error.code.as_deref(), Some("invalid_api_key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_key_and_missing_scope_are_api_errors_403() {
    let server = TestServer::start().await;
    let admin = server.client();
    let revoked = admin
        .create_key(&server.admin, json!({"name": "revoked", "owner": "acme"}))
        .await;
    let id = revoked["id"].as_str().expect("an id");
    let response = admin.delete(&format!("/v1/keys/{id}"), &server.admin).await;
    assert!(response.status().is_success(), "{}", response.status());
    let models_only = admin
        .create_key(
            &server.admin,
            json!({"name": "models", "owner": "acme", "scopes": ["models"]}),
        )
        .await;

    let client = openai(format!("{}/v1", server.base), &key_of(&revoked));
    let error = api_error(
        client.chat().create(request("nova_1_1", PROMPT)).await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(error.code.as_deref(), Some("api_key_revoked"));

    let client = openai(format!("{}/v1", server.base), &key_of(&models_only));
    client.models().list().await.expect("its scope works");
    let error = api_error(
        client.chat().create(request("nova_1_1", PROMPT)).await,
        StatusCode::FORBIDDEN,
    );
    assert_eq!(error.code.as_deref(), Some("insufficient_scope"));
    assert_eq!(error.r#type.as_deref(), Some("permission_error"));
}

/// async-openai's own retry of a 429 waits for `retry-after` and is then
/// admitted: the server counts exactly one refusal for the client's call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_of_a_429_obeys_retry_after() {
    let server = TestServer::start().await;
    let admin = server.client();
    let created = admin
        .create_key(
            &server.admin,
            json!({"name": "sixty", "owner": "acme", "rate_limit_per_minute": 60}),
        )
        .await;
    let key = key_of(&created);
    let usage_path = format!("/v1/keys/{}/usage", created["id"].as_str().unwrap());

    // Spend the bucket until a refusal says the next request regenerates no
    // sooner than 300 ms from now, so the client's first attempt is refused.
    let mut spent = 0;
    loop {
        spent += 1;
        assert!(spent < 500, "no 429 after {spent} requests");
        let response = admin.get("/v1/models", &key).await;
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.status(), StatusCode::OK);
            continue;
        }
        let wait_ms: u64 = header(&response, "retry-after-ms").parse().unwrap();
        if wait_ms >= 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(wait_ms + 10)).await;
    }
    let refused_before = refusals(&admin, &usage_path, &server.admin).await;

    let client = openai(format!("{}/v1", server.base), &key);
    let started = Instant::now();
    let content = reply(&client, PROMPT).await;
    let elapsed = started.elapsed();

    assert!(!content.is_empty());
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "retried after {elapsed:?}"
    );
    let refused_after = refusals(&admin, &usage_path, &server.admin).await;
    assert_eq!(refused_after, refused_before + 1, "one refused attempt");
}

/// A 429 is async-openai's `ApiError` with code `rate_limit_exceeded`,
/// through a client without its retry layer (the `middleware` feature's
/// plain reqwest service): what a caller that handles 429s itself sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_an_api_error_rate_limit_exceeded() {
    let server = TestServer::start().await;
    let admin = server.client();
    let key = key_of(
        &admin
            .create_key(
                &server.admin,
                json!({"name": "one", "owner": "acme", "rate_limit_per_minute": 1}),
            )
            .await,
    );
    let client = openai(format!("{}/v1", server.base), &key)
        .with_http_service(ReqwestService::new(reqwest::Client::new()));
    reply(&client, PROMPT).await;

    let refused = client.chat().create(request("nova_1_1", PROMPT)).await;
    let error = api_error(refused, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error.code.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(error.r#type.as_deref(), Some("rate_limit_error"));
    assert!(!error.message.is_empty());
}

/// The `ApiError` of `result`, checked to carry `status`.
fn api_error<T: std::fmt::Debug>(
    result: Result<T, OpenAIError>,
    status: StatusCode,
) -> async_openai::error::ApiError {
    match result {
        Err(OpenAIError::ApiError(response)) => {
            assert_eq!(response.status_code.as_u16(), status.as_u16(), "{response}");
            response.api_error
        }
        other => panic!("expected an ApiError {status}, got {other:?}"),
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers()[name].to_str().unwrap().to_owned()
}

/// Today's refusals for the minute limit, from the key usage at `path`.
async fn refusals(admin: &common::Client, path: &str, token: &str) -> u64 {
    let usage: Value = admin.get(path, token).await.json().await.expect("usage");
    usage["today"]["denied_by_reason"]["rate_limit_exceeded"]
        .as_u64()
        .unwrap_or(0)
}
