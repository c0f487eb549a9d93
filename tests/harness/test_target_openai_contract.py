"""The `openai` provider against OpenAI's documented chat-completions wire format.

The official SDK (AsyncOpenAI over aiohttp, as the target builds it) talks to a loopback server that answers
with the bodies and headers the OpenAI API sends: chat.completion objects (usage present or absent, logprobs,
a refusal, `finish_reason: "content_filter"`, `choices: []`) and error bodies `{"error": {"message", "type",
"param", "code"}}` for 400, 401, 403, 404, 429 (Retry-After, retry-after-ms, x-ratelimit-*), 500 and 503. The
tests check the request the server received (path, auth, SDK headers, the JSON body, reasoning-model parameter
mapping) and what the harness makes of each answer: a Reply, or a TargetError with its reason, retryability
and outcome kind, and through the Endpoint and the CLI, the recorded status, reason and attempts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner
from fake_openai_server import (
    Action,
    Call,
    FakeOpenAIServer,
    content_filtered,
    error,
    invalid_api_key,
    no_choices,
    openai_param_rules,
    raw_body,
    refusal,
    reply,
    truncated,
    unavailable,
    without_usage,
)
from store_rows import rows

from harness.cli import cli
from harness.errors import UserError
from harness.runner import endpoint as endpoint_module
from harness.runner.endpoint import CallResult, Endpoint
from harness.store import Reply
from harness.targets.base import TargetError
from harness.targets.openai_chat import (
    OpenAIChatTarget,
    duration_seconds,
    is_reasoning_model,
    parse_chat_body,
    request_body,
)
from harness.targets.spec import TargetSpec

KEY_ENV = "CONTRACT_TEST_KEY"
KEY = "sk-proj-contractTEST0123456789abcdefWXYZ"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name the capital of France."}]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr(endpoint_module, "BACKOFF_BASE_S", 0.01)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as s:
        yield s


def spec_for(server: FakeOpenAIServer, model: str = "gpt-4o-mini", **fields: Any) -> TargetSpec:
    values: dict[str, Any] = {"name": "t", "provider": "openai", "model": model, "base_url": server.url}
    values["api_key_env"] = KEY_ENV
    values.update(fields)
    return TargetSpec(**values)


def complete(spec: TargetSpec, params: dict[str, Any] | None = None, messages: Any = None) -> Reply:
    """One call through OpenAIChatTarget; the client is closed after it."""

    async def go() -> Reply:
        target = OpenAIChatTarget(spec)
        try:
            return await target.complete(messages or MESSAGES, params or {})
        finally:
            await target.aclose()

    return asyncio.run(go())


def failure(spec: TargetSpec, params: dict[str, Any] | None = None) -> TargetError:
    with pytest.raises(TargetError) as caught:
        complete(spec, params)
    return caught.value


def via_endpoint(spec: TargetSpec, params: dict[str, Any] | None = None) -> CallResult:
    async def go() -> CallResult:
        ep = Endpoint(spec)
        try:
            return await ep.call(MESSAGES, params or {})
        finally:
            await ep.aclose()

    return asyncio.run(go())


def only_call(server: FakeOpenAIServer) -> Call:
    (call,) = server.calls()  # exactly one request: the SDK's own retries are off
    return call


# --- reasoning-model parameter mapping (the rule, without a server) ---------------------------------------------
@pytest.mark.parametrize(
    "model",
    ["o1", "o1-mini", "o1-2024-12-17", "o3", "o3-mini", "o3-mini-2025-01-31", "o3-pro", "o4-mini", "gpt-5",
     "gpt-5-mini", "gpt-5-nano", "gpt-5.1", "gpt-5-2025-08-07", "ft:o4-mini-2025-04-16:acme::abc123", "O3-MINI"],
)  # fmt: skip
def test_reasoning_model_ids_are_recognised(model: str) -> None:
    assert is_reasoning_model(model)


@pytest.mark.parametrize(
    "model",
    ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4-turbo", "gpt-3.5-turbo", "gpt-50", "o", "omni-moderation-latest",
     "openai/o3", "tiny", "Qwen/Qwen3-0.6B", "llama-o1", "ft:gpt-4o-mini-2024-07-18:acme::x"],
)  # fmt: skip
def test_other_model_ids_are_not_reasoning_models(model: str) -> None:
    assert not is_reasoning_model(model)


ALL_SAMPLING = {
    "max_tokens": 300,
    "temperature": 0,
    "top_p": 0.9,
    "logprobs": True,
    "top_logprobs": 5,
    "reasoning_effort": "low",
    "seed": 7,
    "response_format": {"type": "json_object"},
}


def test_reasoning_model_on_openai_maps_parameters() -> None:
    body = request_body("o3-mini", MESSAGES, ALL_SAMPLING, openai_host=True)
    assert body == {
        "model": "o3-mini",
        "messages": MESSAGES,
        "max_completion_tokens": 300,
        "reasoning_effort": "low",
        "seed": 7,
        "response_format": {"type": "json_object"},
    }


def test_explicit_max_completion_tokens_wins_over_max_tokens() -> None:
    body = request_body("gpt-5", MESSAGES, {"max_tokens": 10, "max_completion_tokens": 999}, openai_host=True)
    assert body["max_completion_tokens"] == 999 and "max_tokens" not in body


def test_chat_model_on_openai_keeps_parameters_and_max_completion_tokens_passes_through() -> None:
    params = {**ALL_SAMPLING, "max_completion_tokens": 50}
    body = request_body("gpt-4o", MESSAGES, params, openai_host=True)
    assert body == {"model": "gpt-4o", "messages": MESSAGES, **params}


def test_openai_compatible_server_keeps_max_tokens_even_for_a_reasoning_like_id() -> None:
    """vLLM may serve a model under any name: off OpenAI's host only `reasoning: true` maps."""
    body = request_body("o3-mini", MESSAGES, ALL_SAMPLING, openai_host=False)
    assert body == {"model": "o3-mini", "messages": MESSAGES, **ALL_SAMPLING}


@pytest.mark.parametrize("openai_host", [True, False])
def test_reasoning_switch_forces_the_mapping_and_is_never_sent(openai_host: bool) -> None:
    on = request_body("my-reasoner", MESSAGES, {**ALL_SAMPLING, "reasoning": True}, openai_host=openai_host)
    assert "reasoning" not in on and "max_tokens" not in on and "temperature" not in on
    assert on["max_completion_tokens"] == 300 and on["reasoning_effort"] == "low"
    off = request_body("o3", MESSAGES, {**ALL_SAMPLING, "reasoning": False}, openai_host=openai_host)
    assert off == {"model": "o3", "messages": MESSAGES, **ALL_SAMPLING}


def test_extra_body_is_merged_at_the_top_level_as_given_never_mapped() -> None:
    params = {"max_tokens": 5, "extra_body": {"max_tokens": 9, "top_k": 20}, "reasoning": True}
    body = request_body("o3-mini", MESSAGES, params, openai_host=True)
    assert body == {"model": "o3-mini", "messages": MESSAGES, "max_completion_tokens": 5, "max_tokens": 9, "top_k": 20}


@pytest.mark.parametrize(
    ("base_url", "openai_host"),
    [
        (None, True),
        ("https://api.openai.com/v1", True),
        ("https://eu.api.openai.com/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("https://openai.example.com/v1", False),
    ],
)
def test_openai_host_is_read_from_the_url_the_sdk_uses(
    monkeypatch: pytest.MonkeyPatch, base_url: str | None, openai_host: bool
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    target = OpenAIChatTarget(TargetSpec(name="t", provider="openai", model="o3-mini", base_url=base_url))
    try:
        assert target.openai_host is openai_host
        body = target.body(MESSAGES, {"max_tokens": 100, "temperature": 0})
        expected = {"max_completion_tokens": 100} if openai_host else {"max_tokens": 100, "temperature": 0}
        assert body == {"model": "o3-mini", "messages": MESSAGES, **expected}
    finally:
        asyncio.run(target.aclose())


def test_openai_base_url_env_pointing_elsewhere_is_not_openai(
    monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer
) -> None:
    """base_url unset falls back to OPENAI_BASE_URL in the SDK: the mapping follows where requests really go."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    complete(TargetSpec(name="t", provider="openai", model="o3-mini"), {"max_tokens": 100, "temperature": 0})
    call = only_call(server)
    assert call.path == "/v1/chat/completions"
    assert call.body == {"model": "o3-mini", "messages": MESSAGES, "max_tokens": 100, "temperature": 0}


def test_a_reasoning_switch_that_is_not_a_boolean_is_a_usage_error(server: FakeOpenAIServer) -> None:
    with pytest.raises(UserError, match="must be true or false"):
        OpenAIChatTarget(spec_for(server, params={"reasoning": {"effort": "high"}}))
    err = failure(spec_for(server), {"reasoning": "yes"})  # from a case's params: recorded, not retried
    assert not err.retryable and "must be true or false" in err.reason
    assert server.calls() == []


# --- the request on the wire --------------------------------------------------------------------------------------
def test_request_path_auth_sdk_headers_and_body(server: FakeOpenAIServer) -> None:
    spec = spec_for(server, timeout=12.5)
    got = complete(spec, {"temperature": 0, "max_tokens": 64})
    call = only_call(server)
    assert (call.method, call.path) == ("POST", "/v1/chat/completions")
    headers = {k.lower(): v for k, v in call.headers.items()}
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["content-type"] == "application/json"
    assert call.body == {"model": "gpt-4o-mini", "messages": MESSAGES, "temperature": 0, "max_tokens": 64}
    # the SDK's own headers: platform facts only, no secret, our timeout, and no SDK retry counted
    stainless = {k: v for k, v in headers.items() if k.startswith("x-stainless-")}
    assert stainless["x-stainless-lang"] == "python"
    assert stainless["x-stainless-package-version"] == openai.__version__
    assert stainless["x-stainless-async"].startswith("async:")
    assert stainless["x-stainless-retry-count"] == "0"
    assert float(stainless["x-stainless-read-timeout"]) == 12.5
    assert headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert all(KEY not in v for k, v in headers.items() if k != "authorization")
    assert got == Reply(
        text=f"gpt-4o-mini says: {MESSAGES[-1]['content']}",
        finish_reason="stop",
        tokens_in=len(" ".join(m["content"] for m in MESSAGES).split()),
        tokens_out=len(f"gpt-4o-mini says: {MESSAGES[-1]['content']}".split()),
        latency_ms=0.0,
    )


def test_a_local_server_without_a_key_gets_the_placeholder_key(server: FakeOpenAIServer) -> None:
    complete(spec_for(server, api_key_env=None))
    assert only_call(server).headers["Authorization"] == "Bearer EMPTY"


def test_extra_body_keys_arrive_at_the_top_level(server: FakeOpenAIServer) -> None:
    params = {"temperature": 0.2, "extra_body": {"top_k": 20, "chat_template_kwargs": {"enable_thinking": False}}}
    complete(spec_for(server, model="tiny"), params)
    assert only_call(server).body == {
        "model": "tiny",
        "messages": MESSAGES,
        "temperature": 0.2,
        "top_k": 20,
        "chat_template_kwargs": {"enable_thinking": False},
    }


def test_reasoning_model_marked_by_the_switch_is_accepted_by_openai_rules(server: FakeOpenAIServer) -> None:
    server.policy = openai_param_rules(("o3-mini",))
    params = {**ALL_SAMPLING, "reasoning": True}
    got = complete(spec_for(server, model="o3-mini"), params)
    assert (got.text, got.finish_reason) == ("{}", "stop")  # a json_object request: the server's JSON reply
    assert only_call(server).body == {
        "model": "o3-mini",
        "messages": MESSAGES,
        "max_completion_tokens": 300,
        "reasoning_effort": "low",
        "seed": 7,
        "response_format": {"type": "json_object"},
    }


def test_without_the_switch_a_loopback_o3_mini_gets_max_tokens_and_openai_says_so(server: FakeOpenAIServer) -> None:
    """The control for the test above: the rules are live, and the 400 they send reads well in the reason."""
    server.policy = openai_param_rules(("o3-mini",))
    err = failure(spec_for(server, model="o3-mini"), {"max_tokens": 300})
    assert only_call(server).body["max_tokens"] == 300
    assert not err.retryable and err.kind == "error" and err.status == 400
    assert err.reason.startswith("HTTP 400 unsupported_parameter: Unsupported parameter: 'max_tokens'")
    assert "max_completion_tokens" in err.reason and "(param: max_tokens)" in err.reason


def test_chat_model_keeps_sampling_and_logprobs_and_the_switch_is_not_sent(server: FakeOpenAIServer) -> None:
    server.policy = openai_param_rules(("o3-mini",))  # also refuses any unrecognized argument, e.g. `reasoning`
    params = {"temperature": 0.3, "top_p": 0.5, "max_tokens": 40, "logprobs": True, "top_logprobs": 2}
    complete(spec_for(server, model="gpt-4o-mini"), {**params, "reasoning": False})
    assert only_call(server).body == {"model": "gpt-4o-mini", "messages": MESSAGES, **params}


# --- 200 answers ----------------------------------------------------------------------------------------------------
def test_logprobs_content_is_parsed_into_the_reply(server: FakeOpenAIServer) -> None:
    tokens = [
        {"token": "Par", "logprob": -0.01, "bytes": [80, 97, 114], "top_logprobs": [{"token": "Par", "logprob": -0.01,
         "bytes": [80, 97, 114]}, {"token": "Lyon", "logprob": -4.6, "bytes": [76, 121, 111, 110]}]},
        {"token": "is", "logprob": -0.2, "bytes": [105, 115], "top_logprobs": []},
    ]  # fmt: skip
    server.queue(reply("Paris", logprobs=tokens))
    got = complete(spec_for(server), {"logprobs": True, "top_logprobs": 2})
    assert got.logprobs == tokens and got.text == "Paris"
    assert only_call(server).body["top_logprobs"] == 2


def test_logprobs_null_is_none(server: FakeOpenAIServer) -> None:
    assert complete(spec_for(server), {"logprobs": True}).logprobs is None  # a server that ignores it: null


def test_usage_absent_gives_unknown_token_counts(server: FakeOpenAIServer) -> None:
    server.queue(without_usage(reply("fine")))
    got = complete(spec_for(server))
    assert (got.text, got.tokens_in, got.tokens_out, got.finish_reason) == ("fine", None, None, "stop")


def test_finish_reason_length_is_an_ok_reply(server: FakeOpenAIServer) -> None:
    server.queue(reply("cut sho", finish_reason="length"))
    assert complete(spec_for(server)).finish_reason == "length"


def test_refusal_is_a_blocked_outcome(server: FakeOpenAIServer) -> None:
    server.queue(refusal("I'm sorry, I can't assist with that."))
    err = failure(spec_for(server))
    assert err.kind == "blocked" and not err.retryable
    assert err.reason == "refused: I'm sorry, I can't assist with that."


@pytest.mark.parametrize("partial", [None, "The first half of an answer"])
def test_content_filter_finish_reason_is_a_blocked_outcome(server: FakeOpenAIServer, partial: str | None) -> None:
    server.queue(content_filtered(partial))
    err = failure(spec_for(server))
    assert err.kind == "blocked" and not err.retryable
    assert "content_filter" in err.reason
    if partial is not None:
        assert partial not in err.reason, "partial output is not kept"


def test_empty_choices_is_an_error_not_retried(server: FakeOpenAIServer) -> None:
    server.queue(no_choices())
    err = failure(spec_for(server))
    assert (err.kind, err.retryable) == ("error", False)
    assert "no choices" in err.reason


def test_empty_choices_with_a_flagged_prompt_is_blocked() -> None:
    """Azure OpenAI (an OpenAI-compatible URL) flags a prompt in `prompt_filter_results`."""
    flagged = {"prompt_index": 0, "content_filter_results": {"violence": {"filtered": True, "severity": "high"}}}
    body = {"id": "x", "object": "chat.completion", "choices": [], "prompt_filter_results": [flagged]}
    with pytest.raises(TargetError) as caught:
        parse_chat_body(json.dumps(body).encode())
    assert caught.value.kind == "blocked" and "content filter" in caught.value.reason


NOT_COMPLETIONS = [b"", b"[]", b'{"object": "chat.completion"}', b'{"choices": {}}', b'{"choices": [7]}']


@pytest.mark.parametrize("body", [*NOT_COMPLETIONS, b'{"choices": [{"message": 1}]}'])
def test_bodies_that_are_not_a_chat_completion_are_retryable_errors(body: bytes) -> None:
    with pytest.raises(TargetError) as caught:
        parse_chat_body(body)
    assert caught.value.retryable and "malformed response body" in caught.value.reason


def test_truncated_body_is_a_retryable_error(server: FakeOpenAIServer) -> None:
    server.queue(truncated())
    err = failure(spec_for(server))
    assert (err.kind, err.retryable) == ("error", True)
    assert "malformed response body" in err.reason


# --- error answers --------------------------------------------------------------------------------------------------
RATE_MSG = (
    "Rate limit reached for gpt-4o-mini in organization org-abc on requests per min (RPM): Limit 3, Used 3, "
    "Requested 1. Please try again in 20s. Visit https://platform.openai.com/account/rate-limits to learn more."
)
RATE_HEADERS = {
    "x-ratelimit-limit-requests": "3",
    "x-ratelimit-limit-tokens": "40000",
    "x-ratelimit-remaining-requests": "0",
    "x-ratelimit-remaining-tokens": "39500",
    "x-ratelimit-reset-requests": "1m30.5s",
    "x-ratelimit-reset-tokens": "750ms",
}


def rate(headers: dict[str, str]) -> Action:
    return error(429, RATE_MSG, err_type="requests", code="rate_limit_exceeded", headers=headers)


# name -> (action, retryable, retry_after, kind, text the reason starts with, more texts it contains)
ERRORS: dict[str, tuple[Action, bool, float | None, str, str, list[str]]] = {
    "429 Retry-After": (
        rate({"Retry-After": "7", **RATE_HEADERS}), True, 7.0, "error", "HTTP 429 rate_limit_exceeded: Rate limit",
        ["Please try again in 20s"],
    ),
    "429 retry-after-ms": (
        rate({"retry-after-ms": "1500", "Retry-After": "2", **RATE_HEADERS}), True, 1.5, "error", "HTTP 429", [],
    ),
    "429 x-ratelimit requests exhausted": (rate(RATE_HEADERS), True, 90.5, "error", "HTTP 429", []),
    "429 x-ratelimit tokens exhausted": (
        rate({**RATE_HEADERS, "x-ratelimit-remaining-requests": "2", "x-ratelimit-remaining-tokens": "0"}),
        True, 0.75, "error", "HTTP 429", [],
    ),
    "429 no hint": (rate({}), True, None, "error", "HTTP 429", []),
    "429 insufficient_quota": (
        error(429, "You exceeded your current quota, please check your plan and billing details.",
              err_type="insufficient_quota", code="insufficient_quota"),
        False, None, "error", "HTTP 429 insufficient_quota: You exceeded your current quota", [],
    ),
    "400 invalid_request_error": (
        error(400, "Invalid value for 'messages': expected an array.", err_type="invalid_request_error",
              code="invalid_value", param="messages"),
        False, None, "error", "HTTP 400 invalid_value: Invalid value for 'messages'", ["(param: messages)"],
    ),
    "400 no code": (
        error(400, "We could not parse the JSON body of your request.", err_type="invalid_request_error", code=None),
        False, None, "error", "HTTP 400 invalid_request_error: We could not parse", [],
    ),
    "400 invalid_prompt": (
        error(400, "Invalid prompt: your prompt was flagged as potentially violating our usage policy.",
              err_type="invalid_request_error", code="invalid_prompt"),
        False, None, "blocked", "blocked: HTTP 400 invalid_prompt: Invalid prompt", [],
    ),
    "403": (
        error(403, "Country, region, or territory not supported", err_type="request_forbidden",
              code="unsupported_country_region_territory"),
        False, None, "error", "HTTP 403 unsupported_country_region_territory: Country, region", [],
    ),
    "404 model_not_found": (
        error(404, "The model `gpt-9` does not exist or you do not have access to it.",
              err_type="invalid_request_error", code="model_not_found"),
        False, None, "error", "HTTP 404 model_not_found: The model `gpt-9` does not exist", [],
    ),
    "500": (
        error(500, "The server had an error while processing your request. Sorry about that!",
              err_type="server_error", headers={"x-request-id": "req_0123abcd"}),
        True, None, "error", "HTTP 500 server_error: The server had an error", ["[request req_0123abcd]"],
    ),
    "503": (
        unavailable("The engine is currently overloaded, please try again later.", retry_after="3"),
        True, 3.0, "error", "HTTP 503 server_error: The engine is currently overloaded", [],
    ),
    "502 html page": (
        raw_body("<html><body><h1>502 Bad Gateway</h1></body></html>", status=502, content_type="text/html"),
        True, None, "error", "HTTP 502: <html><body><h1>502 Bad Gateway", [],
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_answers_become_target_errors(server: FakeOpenAIServer, name: str) -> None:
    action, retryable, retry_after, kind, starts, contains = ERRORS[name]
    server.queue(action, reply("a retry would get this"))
    err = failure(spec_for(server))
    only_call(server)  # one request: the SDK did not retry
    assert err.reason.startswith(starts), err.reason
    assert all(text in err.reason for text in contains), err.reason
    assert (err.retryable, err.kind) == (retryable, kind)
    assert err.retry_after == pytest.approx(retry_after) if retry_after is not None else err.retry_after is None
    assert err.status == int(name[:3]) and not err.connection
    assert "Error code:" not in err.reason, "the SDK's own prefix repeats the status"


def test_401_echoing_the_masked_key_keeps_no_part_of_it(server: FakeOpenAIServer) -> None:
    server.queue(invalid_api_key(KEY))
    err = failure(spec_for(server))
    assert err.reason.startswith("HTTP 401 invalid_api_key: Incorrect API key provided: sk-***.")
    masked = KEY[:8] + "*" * (len(KEY) - 12) + KEY[-4:]  # what the server echoed
    assert masked not in err.reason and "proj-" not in err.reason and KEY[-4:] not in err.reason
    assert "****" not in err.reason
    assert (err.retryable, err.status) == (False, 401)


@pytest.mark.parametrize("status", [429, 500])
def test_sdk_retries_are_off_even_when_the_server_says_retry(server: FakeOpenAIServer, status: int) -> None:
    server.queue(error(status, "try again", headers={"x-should-retry": "true", "retry-after-ms": "0"}), reply())
    failure(spec_for(server))
    assert only_call(server).headers["x-stainless-retry-count"] == "0"


# --- what the runner's Endpoint records ---------------------------------------------------------------------------
def test_each_attempt_is_one_request(server: FakeOpenAIServer) -> None:
    server.queue(
        rate({"retry-after-ms": "0"}), rate({**RATE_HEADERS, "x-ratelimit-reset-requests": "0s"}), reply("done")
    )
    result = via_endpoint(spec_for(server))
    assert (result.status, result.attempts, result.error) == ("ok", 3, None)
    assert result.reply is not None and result.reply.text == "done"
    calls = server.calls()
    assert len(calls) == 3 and [c.headers["x-stainless-retry-count"] for c in calls] == ["0", "0", "0"]
    assert len({c.key for c in calls}) == 1, "every attempt sends the same body"


@pytest.mark.parametrize(
    ("action", "status", "reason"),
    [
        (refusal("No."), "blocked", "refused: No."),
        (content_filtered(), "blocked", "content_filter"),
        (error(404, "The model `x` does not exist", code="model_not_found"), "error", "HTTP 404 model_not_found"),
        (invalid_api_key(KEY), "error", "HTTP 401 invalid_api_key"),
        (no_choices(), "error", "no choices"),
    ],
)
def test_final_answers_are_recorded_after_one_attempt(
    server: FakeOpenAIServer, action: Action, status: str, reason: str
) -> None:
    server.queue(action, reply("a retry would get this"))
    result = via_endpoint(spec_for(server))
    assert (result.status, result.attempts, result.reply) == (status, 1, None)
    assert result.error is not None and reason in result.error
    assert len(server.calls()) == 1


def test_persistent_503_is_bounded_by_max_attempts(server: FakeOpenAIServer) -> None:
    server.queue(*[unavailable(retry_after="0") for _ in range(5)])
    result = via_endpoint(spec_for(server, max_attempts=3))
    assert (result.status, result.attempts) == ("error", 3)
    assert result.error is not None and result.error.startswith("HTTP 503 server_error")
    assert "3 attempts" in result.error
    assert len(server.calls()) == 3


def test_duration_headers() -> None:
    assert duration_seconds("1s") == 1.0
    assert duration_seconds("6m0s") == 360.0
    assert duration_seconds("20ms") == pytest.approx(0.02)
    assert duration_seconds("1m30.5s") == 90.5
    assert duration_seconds("1h2m3s") == 3723.0
    assert duration_seconds("2.5") == 2.5
    for bad in ("", "soon", "5 s", "1s2", "m"):
        assert duration_seconds(bad) is None, bad


# --- the same through `harness run` ---------------------------------------------------------------------------------
CASES = {
    "plain": "Name the capital of France.",
    "throttled": "Name the capital of Spain.",
    "refused": "Explain how to pick a lock.",
    "filtered": "Write something the filter stops.",
    "denied": "A request the API rejects.",
    "missing": "A request to a model that is gone.",
}


def write_cli_files(tmp_path: Path, server: FakeOpenAIServer) -> tuple[Path, Path]:
    suite = tmp_path / "contract.yaml"
    lines = ["suite: contract", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for cid, prompt in CASES.items():
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt)}"]
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "harness.yaml"
    config.write_text(
        f"""targets:
  reasoner:
    provider: openai
    model: o3-mini
    base_url: {server.url}
    api_key_env: {KEY_ENV}
    max_attempts: 3
    params: {{reasoning: true, max_tokens: 300, temperature: 0, reasoning_effort: low}}
  local:
    provider: openai
    model: tiny
    base_url: {server.url}
    params: {{max_tokens: 64, temperature: 0.2, extra_body: {{top_k: 20}}}}
  judge:
    provider: openai
    model: o3-mini
    base_url: {server.url}
    api_key_env: {KEY_ENV}
    params: {{reasoning: true}}
judge: judge
db: results.db
""",
        encoding="utf-8",
    )
    return suite, config


def test_cli_run_records_each_openai_answer_and_sends_reasoning_parameters(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    rules = openai_param_rules(("o3-mini",))
    server.policy = lambda call: rules(call) if call.model == "o3-mini" else None  # `tiny` is a vLLM: top_k is fine

    def target_call(cid: str) -> Any:
        return lambda call: call.model == "o3-mini" and not call.is_judge and CASES[cid] in call.text

    server.script(target_call("throttled"), rate({**RATE_HEADERS, "x-ratelimit-reset-requests": "10ms"}), reply())
    server.script(target_call("refused"), refusal("I can't help with that."))
    server.script(target_call("filtered"), content_filtered("Partial"))
    server.script(
        target_call("denied"),
        error(400, "Invalid 'messages[1].content': string too long.", code="string_above_max_length", param="messages"),
    )
    server.script(
        target_call("missing"),
        error(404, "The model `o3-mini` does not exist or you do not have access to it.", code="model_not_found"),
    )
    suite, config = write_cli_files(tmp_path, server)
    args = ["run", str(suite), "-t", "reasoner", "-t", "local", "--config", str(config), "--no-canaries"]
    result = CliRunner().invoke(cli, [*args, "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run_id = json.loads(result.stdout)["run_id"]
    assert KEY not in result.output

    db = tmp_path / "results.db"
    got = {(r["target"], r["case_id"]): r for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)}
    assert len(got) == 2 * len(CASES)
    expected = {
        "plain": ("ok", 1, None),
        "throttled": ("ok", 2, None),
        "refused": ("blocked", 1, "refused: I can't help with that."),
        "filtered": ("blocked", 1, "content_filter"),
        "denied": ("error", 1, "HTTP 400 string_above_max_length: Invalid 'messages[1].content'"),
        "missing": ("error", 1, "HTTP 404 model_not_found"),
    }
    for cid, (status, attempts, reason) in expected.items():
        r = got[("reasoner", cid)]
        assert (r["status"], r["attempts"]) == (status, attempts), (cid, r["error"])
        if reason is None:
            assert r["error"] is None and r["text"] == f"o3-mini says: {CASES[cid]}"
        else:
            assert reason in r["error"] and r["text"] is None, (cid, r["error"])
        assert server.count(prompt=CASES[cid], judge=False, model="o3-mini") == attempts
        local = got[("local", cid)]
        assert (local["status"], local["attempts"]) == ("ok", 1)
    assert "Partial" not in got[("reasoner", "filtered")]["error"]

    # what was sent: the reasoning target and judge mapped, the local (vLLM) target as given
    target_calls = [c for c in server.calls(judge=False)]
    for call in target_calls:
        assert call.path == "/v1/chat/completions"
        if call.model == "o3-mini":
            assert call.headers["Authorization"] == f"Bearer {KEY}"
            assert {k: v for k, v in call.body.items() if k != "messages"} == {
                "model": "o3-mini",
                "max_completion_tokens": 300,
                "reasoning_effort": "low",
            }
        else:
            assert call.headers["Authorization"] == "Bearer EMPTY"
            assert {k: v for k, v in call.body.items() if k != "messages"} == {
                "model": "tiny",
                "max_tokens": 64,
                "temperature": 0.2,
                "top_k": 20,
            }
    judge_calls = server.calls(judge=True)
    ok_responses = [r for r in got.values() if r["status"] == "ok"]
    assert len(judge_calls) == len(ok_responses) == len(CASES) + 2, "only ok responses are judged, once each"
    for call in judge_calls:
        assert call.model == "o3-mini" and call.status == 200
        fmt = call.body["response_format"]
        assert fmt["type"] == "json_schema"
        assert set(fmt["json_schema"]["schema"]["properties"]) == {"preciseness"}
        assert call.body["max_completion_tokens"] == 512
        for rejected in ("max_tokens", "temperature", "top_p", "logprobs", "top_logprobs", "reasoning"):
            assert rejected not in call.body, rejected

    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == len(ok_responses)
    for j in judgments:
        assert j["status"] == "scored" and j["score"] == 4.0
        assert j["weighted_score"] is None and j["weighted_note"] == "the judge endpoint returned no logprobs"
    blocked_ids = {r["id"] for r in got.values() if r["status"] != "ok"}
    assert not blocked_ids & {j["response_id"] for j in judgments}

    report = CliRunner().invoke(
        cli, ["report", run_id, "--format", "json", "--config", str(config)], catch_exceptions=False
    )
    assert report.exit_code == 0, report.output
    assert KEY not in report.output
    doc = json.loads(report.stdout)
    (reasoner,) = [t for t in doc["targets"].values() if t.get("target", t.get("name")) == "reasoner"]
    assert reasoner["blocked"] == 2, reasoner
