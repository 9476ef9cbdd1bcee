"""The official `openai` Python client against a Lumyx server.

Run by tests/openai_python.rs, which starts the server, makes the keys and
passes them in environment variables. Exits non-zero, naming the failed
check, on the first one that fails.
"""

import os
import sys

import openai
from openai import OpenAI

BASE = os.environ["LUMYX_BASE"]
KEY = os.environ["LUMYX_KEY"]
PROMPT = "Explain token buckets in one sentence."
MESSAGES = [{"role": "user", "content": PROMPT}]


def check(condition, what):
    if not condition:
        sys.exit(f"FAILED: {what}")


def client(key, base_url=f"{BASE}/v1"):
    # No retries: a 429 must reach the caller, not be retried.
    return OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)


def expect_error(what, error_class, status, error_type, code, call):
    """`call()` raises `error_class` with SPEC section 4's status, type, code."""
    try:
        call()
    except error_class as err:
        check(err.status_code == status, f"{what}: status {err.status_code} != {status}")
        check(err.code == code, f"{what}: err.code {err.code!r} != {code!r}")
        check(isinstance(err.body, dict), f"{what}: err.body {err.body!r} is not an object")
        check(err.body.get("code") == code, f"{what}: body code in {err.body!r}")
        check(err.body.get("type") == error_type, f"{what}: body type in {err.body!r}")
        check(err.body.get("message"), f"{what}: no message in {err.body!r}")
        print(f"ok: {what}: {type(err).__name__} {status} {code}")
        return err
    except openai.APIError as err:
        sys.exit(f"FAILED: {what}: {type(err).__name__} ({err!r}), not {error_class.__name__}")
    sys.exit(f"FAILED: {what}: no error, expected {error_class.__name__}")


def chat(c):
    return c.chat.completions.create(model="nova_1_1", messages=MESSAGES)


def main():
    print(f"openai {openai.__version__}")
    nova = client(KEY)

    # A whole reply.
    whole = chat(nova)
    text = whole.choices[0].message.content
    check(text, f"content of {whole!r}")
    check(whole.model == "nova_1_1", f"model {whole.model!r}")
    check(whole.object == "chat.completion", f"object {whole.object!r}")
    usage = whole.usage
    check(usage.prompt_tokens > 0 and usage.completion_tokens > 0, f"usage {usage!r}")
    check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, f"total {usage!r}")
    print(f"ok: chat: {len(text)} characters, {usage.total_tokens} tokens")

    # The same prompt streamed: the same text, then the usage chunk.
    chunks = list(
        nova.chat.completions.create(
            model="nova_1_1",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    check(len(chunks) >= 3, f"{len(chunks)} chunks")
    *deltas, last = chunks
    streamed = "".join(c.delta.content or "" for chunk in deltas for c in chunk.choices)
    check(streamed == text, f"streamed {streamed!r} != whole {text!r}")
    check(all(chunk.usage is None for chunk in deltas), "usage before the last chunk")
    check(any(c.finish_reason for chunk in deltas for c in chunk.choices), "no finish_reason")
    check(last.choices == [], f"choices of the usage chunk: {last.choices!r}")
    check(last.usage is not None, "no usage chunk")
    check(
        (last.usage.prompt_tokens, last.usage.completion_tokens)
        == (usage.prompt_tokens, usage.completion_tokens),
        f"streamed usage {last.usage!r} != {usage!r}",
    )
    print(f"ok: stream: {len(chunks)} chunks, usage {last.usage.total_tokens}")

    # Models.
    ids = [model.id for model in nova.models.list()]
    check("nova_1_1" in ids, f"nova_1_1 not in {ids}")
    model = nova.models.retrieve("nova_1_1")
    check(model.id == "nova_1_1" and model.object == "model", f"model {model!r}")
    expect_error(
        "unknown model",
        openai.NotFoundError,
        404,
        "invalid_request_error",
        "model_not_found",
        lambda: nova.models.retrieve("nova_9"),
    )
    print(f"ok: models: {ids}")

    # An agent, with nothing but its base URL changed.
    tutor = client(KEY, base_url=f"{BASE}/v1/agents/tutor")
    answer = chat(tutor)
    check(answer.choices[0].message.content, f"agent content of {answer!r}")
    check(answer.usage.total_tokens > 0, f"agent usage {answer.usage!r}")
    print("ok: agent tutor")

    # Errors, as the client's exception classes.
    expect_error(
        "unknown key",
        openai.AuthenticationError,
        401,
        "invalid_request_error",
        "invalid_api_key",
        lambda: chat(client(os.environ["LUMYX_UNKNOWN_KEY"])),
    )
    expect_error(
        "revoked key",
        openai.PermissionDeniedError,
        403,
        "permission_error",
        "api_key_revoked",
        lambda: chat(client(os.environ["LUMYX_REVOKED_KEY"])),
    )
    models_only = client(os.environ["LUMYX_MODELS_ONLY_KEY"])
    models_only.models.list()
    expect_error(
        "models-only key on chat",
        openai.PermissionDeniedError,
        403,
        "permission_error",
        "insufficient_scope",
        lambda: chat(models_only),
    )
    one_a_minute = client(os.environ["LUMYX_RPM1_KEY"])
    chat(one_a_minute)
    err = expect_error(
        "second request of a 1-a-minute key",
        openai.RateLimitError,
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
        lambda: chat(one_a_minute),
    )
    retry_after = err.response.headers.get("retry-after")
    check(retry_after and 1 <= int(retry_after) <= 60, f"retry-after {retry_after!r}")
    print("all checks passed")


if __name__ == "__main__":
    main()
