//! Calls the Lumyx API with your key: `cargo run --example client`.
//!
//! ```text
//! NOVA_AI_API_KEY=nova_... cargo run --example client -- [PROMPT]
//! ```
//!
//! Reads the key from `NOVA_AI_API_KEY` (as the API docs advise) and the API
//! from `LUMYX_BASE_URL` (default `http://127.0.0.1:8080/v1`, where
//! `cargo run --example server` listens), sends one chat completion built
//! from the workspace's own types, and prints the reply and the rate-limit
//! headers, or the API's error: its status, code and message.

use std::process::ExitCode;

use lumyx_api_types::{ApiError, ChatCompletionRequest, ChatCompletionResponse, ChatMessage};

const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080/v1";

/// The response headers worth showing: the limits and the request's id.
const SHOWN_HEADERS: [&str; 9] = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-requests-day",
    "x-ratelimit-remaining-requests-day",
    "x-ratelimit-reset-requests-day",
    "x-lumyx-key-expires-at",
    "retry-after",
    "x-request-id",
];

fn main() -> ExitCode {
    let Ok(key) = std::env::var("NOVA_AI_API_KEY") else {
        eprintln!(
            "client: set NOVA_AI_API_KEY to your nova_ key (the server prints a demo key when it starts)"
        );
        return ExitCode::from(2);
    };
    let base_url = std::env::var("LUMYX_BASE_URL").unwrap_or_else(|_| DEFAULT_BASE_URL.to_owned());
    let prompt = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let prompt = if prompt.is_empty() {
        "Say hello to a new Lumyx developer.".to_owned()
    } else {
        prompt
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("client: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(chat(&base_url, key.trim(), prompt))
}

/// Sends the chat completion and prints what came back.
async fn chat(base_url: &str, key: &str, prompt: String) -> ExitCode {
    let request = ChatCompletionRequest::new("nova_1_1", vec![ChatMessage::user(prompt)]);
    let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
    let response = match reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .json(&request)
        .send()
        .await
    {
        Ok(response) => response,
        Err(err) => {
            eprintln!(
                "client: cannot reach {url}: {err} (is `cargo run --example server` running?)"
            );
            return ExitCode::FAILURE;
        }
    };
    let status = response.status();
    for name in SHOWN_HEADERS {
        if let Some(value) = response.headers().get(name) {
            println!("{name}: {}", value.to_str().unwrap_or("(not text)"));
        }
    }
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(err) => {
            eprintln!("client: the response broke off: {err}");
            return ExitCode::FAILURE;
        }
    };
    if !status.is_success() {
        return match serde_json::from_slice::<ApiError>(&body) {
            Ok(error) => {
                let code = error.code().map_or("none", |code| code.as_str());
                eprintln!(
                    "API error: status {status}, code {code}: {}",
                    error.message()
                );
                ExitCode::FAILURE
            }
            Err(_) => {
                eprintln!(
                    "API error: status {status}: {}",
                    String::from_utf8_lossy(&body)
                );
                ExitCode::FAILURE
            }
        };
    }
    match serde_json::from_slice::<ChatCompletionResponse>(&body) {
        Ok(completion) => {
            for choice in &completion.choices {
                println!("\n{}", choice.message.content.as_deref().unwrap_or(""));
            }
            if let Some(usage) = &completion.usage {
                println!(
                    "\ntokens: {} in, {} out",
                    usage.prompt_tokens, usage.completion_tokens
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("client: the reply is not a chat completion: {err}");
            ExitCode::FAILURE
        }
    }
}
