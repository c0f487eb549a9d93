"""The gemini provider, through the official google-genai SDK, against a loopback server that speaks the
Gemini Developer API's generateContent wire format: the request it sends, the Reply it reads, blocked
outcomes, error mapping, and `harness run` end to end with a Gemini target judged by a Gemini judge."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_gemini_server import (
    Action,
    FakeGeminiServer,
    answer_blocked,
    bad_request,
    drop,
    error,
    forbidden,
    no_candidates,
    not_found,
    prompt_blocked,
    rate_limited,
    raw_body,
    reply,
    server_error,
    slow,
    truncated,
    unauthenticated,
    unavailable,
)
from store_rows import rows

from harness.cli import cli
from harness.errors import UserError
from harness.runner import endpoint as endpoint_module
from harness.store import Reply
from harness.targets import create_target, parse_target_spec
from harness.targets.base import TargetError
from harness.targets.gemini import GeminiTarget, openai_logprobs, retry_info_delay, split_base_url
from harness.targets.spec import TargetSpec
from judges.rubric import RubricJudge

pytest.importorskip("google.genai")
pytestmark = pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")

MODEL = "gemini-2.0-flash"
SECRET = "AIzaSy-test-SECRET-0123456789"
CRITERIA = ["preciseness", "instruction_following"]
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Name a colour."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one?"},
]


@pytest.fixture
def server() -> Iterator[FakeGeminiServer]:
    with FakeGeminiServer() as s:
        yield s


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(endpoint_module, "BACKOFF_BASE_S", 0.01)
    monkeypatch.chdir(tmp_path)


def spec_for(server: FakeGeminiServer, **kw: Any) -> TargetSpec:
    return TargetSpec(name="g", provider="gemini", model=MODEL, base_url=server.url, **kw)


def complete(
    server: FakeGeminiServer,
    messages: list[dict[str, str]] | None = None,
    params: dict[str, Any] | None = None,
    *,
    calls: int = 1,
    **spec_kw: Any,
) -> list[Reply | TargetError]:
    """`calls` calls of one GeminiTarget (from the registry), each a Reply or the TargetError it raised."""

    async def go() -> list[Reply | TargetError]:
        target = create_target(spec_for(server, **spec_kw))
        out: list[Reply | TargetError] = []
        try:
            for _ in range(calls):
                try:
                    out.append(await target.complete(messages or CHAT, params or {}))
                except TargetError as exc:
                    out.append(exc)
        finally:
            await target.aclose()
        return out

    return asyncio.run(go())


def one_reply(server: FakeGeminiServer, *args: Any, **kw: Any) -> Reply:
    (result,) = complete(server, *args, **kw)
    assert isinstance(result, Reply), result
    return result


def one_error(server: FakeGeminiServer, *args: Any, **kw: Any) -> TargetError:
    (result,) = complete(server, *args, **kw)
    assert isinstance(result, TargetError), result
    return result


# the request on the wire ------------------------------------------------------------------------------
def test_request_path_key_header_roles_and_system_instruction(
    server: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    got = one_reply(server)

    (call,) = server.calls()
    assert (call.version, call.model, call.method) == ("v1beta", MODEL, "generateContent")
    assert call.api_key == SECRET
    assert call.body["systemInstruction"]["parts"] == [{"text": "You are terse."}]
    assert [(c["role"], c["parts"]) for c in call.contents] == [
        ("user", [{"text": "Name a colour."}]),
        ("model", [{"text": "Blue."}]),
        ("user", [{"text": "Another one?"}]),
    ]
    assert call.config == {}  # no parameters given, none sent
    assert got.text == f"{MODEL} says: Another one?"
    assert got.finish_reason == "STOP"
    assert got.tokens_in == len(call.text.split())
    assert got.tokens_out == len(got.text.split())
    assert got.logprobs is None


def test_generation_parameters_map_to_generation_config(server: FakeGeminiServer) -> None:
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "seed": 7,
        "extra_body": {"structured_outputs": {"regex": "x"}},  # vLLM's: ignored
    }
    one_reply(server, CHAT, params)
    (call,) = server.calls()
    assert call.config == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 64, "stopSequences": ["END"], "seed": 7}
    assert "structured_outputs" not in json.dumps(call.body)


def test_a_single_stop_string_and_max_output_tokens(server: FakeGeminiServer) -> None:
    one_reply(server, CHAT, {"stop": "END", "max_output_tokens": 9, "max_tokens": 64})
    assert server.calls()[0].config == {"stopSequences": ["END"], "maxOutputTokens": 9}


def test_the_judges_json_schema_is_sent_as_response_json_schema(server: FakeGeminiServer) -> None:
    judge = RubricJudge("rubric_v1", "json_schema")
    schema = judge.schema(CRITERIA)
    got = one_reply(server, CHAT, {"temperature": 0, **judge.request_params(CRITERIA)})

    (call,) = server.calls()
    assert call.config["responseMimeType"] == "application/json"
    assert call.config["responseJsonSchema"] == schema  # a plain JSON Schema, additionalProperties included
    assert "responseSchema" not in call.config
    assert judge.parse(got.text, CRITERIA).scores["preciseness"].score == 4


def test_json_object_asks_for_json_without_a_schema(server: FakeGeminiServer) -> None:
    one_reply(server, CHAT, {"response_format": {"type": "json_object"}})
    config = server.calls()[0].config
    assert config == {"responseMimeType": "application/json"}


def test_api_version_in_the_base_url_is_used_as_the_version(server: FakeGeminiServer) -> None:
    async def go() -> None:
        target = GeminiTarget(TargetSpec(name="g", provider="gemini", model=MODEL, base_url=server.url + "/v1alpha"))
        try:
            await target.complete(CHAT, {})
        finally:
            await target.aclose()

    asyncio.run(go())
    assert server.calls()[0].version == "v1alpha"
    assert split_base_url("https://example.test/gemini/v1beta/") == ("https://example.test/gemini", "v1beta")
    assert split_base_url("http://127.0.0.1:8080") == ("http://127.0.0.1:8080", "v1beta")
    assert split_base_url(None) == (None, "v1beta")


# logprobs ---------------------------------------------------------------------------------------------
def test_logprobs_are_requested_and_returned_in_openai_shape(server: FakeGeminiServer) -> None:
    server.logprobs = "on"
    server.score_logprobs = {4: 0.6, 5: 0.3, 3: 0.1}
    judge = RubricJudge("rubric_v1", "json_schema")
    got = one_reply(server, CHAT, {"logprobs": True, "top_logprobs": 3, **judge.request_params(CRITERIA)})

    config = server.calls()[0].config
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 3)
    assert got.logprobs is not None
    assert "".join(t["token"] for t in got.logprobs) == got.text
    assert got.logprobs[0] == {"token": "{", "logprob": 0.0, "top_logprobs": [{"token": "{", "logprob": 0.0}]}
    digit = next(t for t in got.logprobs if t["token"] == "4")
    assert [a["token"] for a in digit["top_logprobs"]] == ["4", "5", "3"]
    assert digit["top_logprobs"][1]["logprob"] == pytest.approx(-1.2039728)

    from judges.logprobs import weighted_scores

    weighted = weighted_scores(got.text, got.logprobs, CRITERIA, 1, 5)
    assert weighted["preciseness"][0] == pytest.approx(4.2)


def test_a_model_without_logprobs_is_asked_again_without_them_once_per_target(server: FakeGeminiServer) -> None:
    server.logprobs = "refuse"
    results = complete(server, CHAT, {"logprobs": True, "top_logprobs": 5}, calls=2)

    assert all(isinstance(r, Reply) and r.logprobs is None for r in results)
    asked = [c.config.get("responseLogprobs", False) for c in server.calls()]
    assert asked == [True, False, False]  # refused once, then never asked again


def test_openai_logprobs_conversion_edge_cases() -> None:
    assert openai_logprobs(None) is None


# blocked outcomes -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (prompt_blocked("SAFETY"), ["prompt blocked", "SAFETY", "HARM_CATEGORY_DANGEROUS_CONTENT: HIGH"]),
        (prompt_blocked("PROHIBITED_CONTENT"), ["prompt blocked", "PROHIBITED_CONTENT"]),
        (answer_blocked("SAFETY"), ["response blocked", "SAFETY", "HARM_CATEGORY_HARASSMENT: HIGH"]),
        (answer_blocked("RECITATION"), ["response blocked", "RECITATION"]),
        (answer_blocked("BLOCKLIST"), ["BLOCKLIST"]),
        (answer_blocked("SPII"), ["SPII"]),
        (answer_blocked("OTHER"), ["empty candidate", "OTHER"]),
        (no_candidates(), ["no candidates"]),
    ],
)
def test_blocks_and_empty_candidates_are_blocked_outcomes(
    server: FakeGeminiServer, action: Action, expected: list[str]
) -> None:
    server.queue(action)
    err = one_error(server)
    assert err.kind == "blocked"
    assert err.retryable is False
    for part in expected:
        assert part in err.reason, err.reason


def test_max_tokens_with_text_is_a_reply_not_a_block(server: FakeGeminiServer) -> None:
    server.queue(reply("Blu", finish_reason="MAX_TOKENS"))
    got = one_reply(server)
    assert (got.text, got.finish_reason) == ("Blu", "MAX_TOKENS")


# errors -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "code", "status", "retryable"),
    [
        (bad_request(), 400, "INVALID_ARGUMENT", False),
        (unauthenticated(), 401, "UNAUTHENTICATED", False),
        (forbidden(), 403, "PERMISSION_DENIED", False),
        (not_found(), 404, "NOT_FOUND", False),
        (rate_limited(None), 429, "RESOURCE_EXHAUSTED", True),
        (server_error(), 500, "INTERNAL", True),
        (unavailable(), 503, "UNAVAILABLE", True),
    ],
)
def test_http_errors_keep_code_status_and_message(
    server: FakeGeminiServer, action: Action, code: int, status: str, retryable: bool
) -> None:
    server.queue(action)
    err = one_error(server)
    assert err.kind == "error"
    assert err.retryable is retryable
    assert err.reason.startswith(f"HTTP {code} {status}: ")
    assert (action.message or "") in err.reason
    assert err.status == code
    assert len(server.calls()) == 1, "the SDK retried on its own"


def test_429_retry_after_header_is_honoured(server: FakeGeminiServer) -> None:
    server.queue(rate_limited("7", retry_delay="30s"))
    err = one_error(server)
    assert (err.retryable, err.retry_after) == (True, 7.0)


def test_a_zero_retry_after_header_wins_over_retry_info(server: FakeGeminiServer) -> None:
    server.queue(rate_limited("0", retry_delay="30s"), rate_limited("Wed, 21 Oct 2015 07:28:00 GMT"))
    results = complete(server, calls=2)
    assert [r.retry_after for r in results if isinstance(r, TargetError)] == [0.0, 0.0]


def test_429_retry_info_delay_is_honoured_without_a_header(server: FakeGeminiServer) -> None:
    server.queue(rate_limited(None, retry_delay="1.5s"))
    err = one_error(server)
    assert (err.retryable, err.retry_after) == (True, 1.5)
    assert retry_info_delay({"error": {"details": [{"@type": "x/google.rpc.RetryInfo", "retryDelay": "17s"}]}}) == 17
    assert retry_info_delay({"error": {"details": "nonsense"}}) is None


@pytest.mark.parametrize(
    ("action", "words"),
    [
        (truncated(), ["malformed"]),
        (raw_body("<html>Bad gateway</html>", status=502, content_type="text/html"), ["HTTP 502", "Bad gateway"]),
        (raw_body('{"error": {"code": 5', status=500), ["malformed"]),
        (raw_body("[1, 2]"), ["malformed"]),
        (raw_body("{}"), ["malformed"]),
        (drop(), ["connection"]),
    ],
)
def test_broken_answers_are_retryable_errors(server: FakeGeminiServer, action: Action, words: list[str]) -> None:
    server.queue(action)
    err = one_error(server)
    assert (err.kind, err.retryable) == ("error", True)
    for word in words:
        assert word in err.reason, err.reason
    assert len(server.calls()) == 1, "the SDK retried on its own"


def test_timeout_is_retryable(server: FakeGeminiServer) -> None:
    server.queue(slow(5.0))
    err = one_error(server, timeout=0.3)
    assert err.retryable and "timeout" in err.reason


def test_invalid_parameters_are_not_retried(server: FakeGeminiServer) -> None:
    err = one_error(server, CHAT, {"temperature": "warm"})
    assert not err.retryable and "temperature" in err.reason
    assert server.calls() == []


def test_the_key_never_appears_in_a_reason(server: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    server.queue(error(400, f"API key {SECRET} not valid."), raw_body(f'{{"candidates": [{{"x": "{SECRET}"'))
    results = complete(server, calls=2)
    assert all(isinstance(r, TargetError) for r in results)
    for r in results:
        assert isinstance(r, TargetError)
        assert SECRET not in r.reason and "***" in r.reason


# keys and set-up --------------------------------------------------------------------------------------
def test_a_missing_key_is_a_user_error_off_loopback() -> None:
    with pytest.raises(UserError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        GeminiTarget(TargetSpec(name="g", provider="gemini", model=MODEL))
    with pytest.raises(UserError, match="MY_KEY"):
        GeminiTarget(TargetSpec(name="g", provider="gemini", model=MODEL, api_key_env="MY_KEY"))


def test_key_from_google_api_key_or_a_named_variable(server: FakeGeminiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    monkeypatch.setenv("MY_KEY", "my-key")
    one_reply(server)
    one_reply(server, api_key_env="MY_KEY")
    assert [c.api_key for c in server.calls()] == ["google-key", "my-key"]


def test_the_spec_parser_takes_a_base_url_for_gemini() -> None:
    spec = parse_target_spec(f"g=gemini:{MODEL}@http://127.0.0.1:9")
    assert (spec.name, spec.provider, spec.model, spec.base_url) == ("g", "gemini", MODEL, "http://127.0.0.1:9")


def test_the_cli_does_not_import_the_sdk_at_start_up() -> None:
    code = "import sys, harness.cli, harness.targets; sys.exit('google.genai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# end to end through the CLI -----------------------------------------------------------------------------
def write_suite(path: Path, prompts: dict[str, str]) -> Path:
    lines = ["suite: gem", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid, prompt in prompts.items():
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_cli(tmp_path: Path, server: FakeGeminiServer, prompts: dict[str, str], *extra: str) -> tuple[Path, str]:
    suite = write_suite(tmp_path / "gem.yaml", prompts)
    db = tmp_path / "results.db"
    target = f"g=gemini:{MODEL}@{server.url}"
    args = ["run", str(suite), "-t", target, "--judge", "g", "--no-canaries", "--db", str(db), "--format", "json"]
    args += extra
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    return db, json.loads(result.stdout)["run_id"]


def test_run_end_to_end_with_a_gemini_target_and_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    prompts = {c: f"[{c}] Please answer question {c}." for c in ("ok", "blocked", "refused", "r429", "unauth")}
    with FakeGeminiServer(api_key=SECRET) as server:
        server.script(prompts["blocked"], prompt_blocked("SAFETY"))
        server.script(prompts["refused"], answer_blocked("SAFETY"))
        server.script(prompts["r429"], rate_limited("0"), reply("fine"))
        server.script(prompts["unauth"], unauthenticated(), reply("never"))
        db, run_id = run_cli(tmp_path, server, prompts)
        judge_calls = server.calls(judge=True)
        target_calls = server.calls(judge=False)

    responses = {r["case_id"]: r for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)}
    ok = responses["ok"]
    assert (ok["status"], ok["attempts"], ok["finish_reason"]) == ("ok", 1, "STOP")
    assert ok["text"] == f"{MODEL} says: {prompts['ok']}"
    assert ok["tokens_in"] > 0 and ok["tokens_out"] > 0
    for cid in ("blocked", "refused"):
        r = responses[cid]
        assert (r["status"], r["attempts"], r["text"]) == ("blocked", 1, None)
        assert "SAFETY" in r["error"]
    assert "prompt blocked" in responses["blocked"]["error"]
    assert "response blocked" in responses["refused"]["error"]
    assert (responses["r429"]["status"], responses["r429"]["attempts"], responses["r429"]["text"]) == ("ok", 2, "fine")
    unauth = responses["unauth"]
    assert (unauth["status"], unauth["attempts"], unauth["text"]) == ("error", 1, None)
    assert "401" in unauth["error"] and "UNAUTHENTICATED" in unauth["error"]
    assert sum(1 for c in target_calls if prompts["unauth"] in c.text) == 1

    # only the ok responses were judged, by the Gemini judge, with the verdict's JSON schema
    judged = {r["response_id"] for r in rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)}
    assert judged == {responses["ok"]["id"], responses["r429"]["id"]}
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == 2 * len(CRITERIA)
    assert all(j["status"] == "scored" and j["score"] == 4 for j in judgments)
    assert all(j["weighted_note"] == "the judge endpoint returned no logprobs" for j in judgments)
    assert len(judge_calls) == 2
    for call in judge_calls:
        assert call.config["responseMimeType"] == "application/json"
        assert call.config["responseJsonSchema"] == RubricJudge("rubric_v1", "json_schema").schema(CRITERIA)
        assert call.config["responseLogprobs"] is True and call.config["logprobs"] == 5
        assert call.config["temperature"] == 0 and call.config["maxOutputTokens"] == 512
        assert call.system and "<<<RESPONSE" in call.prompt

    # the key went to the server in its header, and nowhere into the store
    assert all(c.api_key == SECRET for c in target_calls + judge_calls)
    for name in ("results.db", "results.db-wal"):
        path = tmp_path / name
        assert not path.exists() or SECRET.encode() not in path.read_bytes(), name


@pytest.mark.parametrize("mode", ["on", "refuse"])
def test_run_end_to_end_judge_logprobs(tmp_path: Path, mode: str) -> None:
    """A Gemini judge that returns logprobs gets the weighted (G-Eval) score; one that refuses them is asked
    again without, and its verdicts are still scored."""
    with FakeGeminiServer(logprobs=mode) as server:
        server.score_logprobs = {4: 0.5, 5: 0.5}
        db, run_id = run_cli(tmp_path, server, {"a": "Say a.", "b": "Say b."}, "--concurrency", "1")
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == 2 * len(CRITERIA)
    assert all(j["status"] == "scored" and j["score"] == 4 for j in judgments)
    if mode == "on":
        assert all(j["weighted_score"] == pytest.approx(4.5) for j in judgments)
    else:
        assert all(j["weighted_score"] is None for j in judgments)
