"""Retries, bounded attempts, timeouts: every call ends in exactly one recorded outcome, errors never judged."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fake_openai_server import (
    Action,
    FakeOpenAIServer,
    bad_request,
    drop,
    rate_limited,
    reply,
    server_error,
    slow,
    truncated,
    unauthorized,
    unavailable,
)
from store_rows import rows

from harness.cli import cli
from harness.runner import Runner, RunOptions
from harness.runner import endpoint as endpoint_module
from harness.store import Store
from harness.suites import load_suite
from harness.targets.spec import TargetSpec

CRITERIA = ["preciseness", "instruction_following"]


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] Please answer question {case_id}."


def write_suite(path: Path, case_ids: list[str]) -> Path:
    lines = ["suite: retries", "version: 1.0.0", "defaults:", f"  criteria: {json.dumps(CRITERIA)}", "cases:"]
    for cid in case_ids:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_direct(
    tmp_path: Path,
    server: FakeOpenAIServer,
    case_ids: list[str],
    *,
    max_attempts: int = 4,
    timeout: float = 10.0,
    concurrency: int = 4,
) -> tuple[Path, str]:
    """Runner + Store, in-process, one target `a` and a judge, on a fresh store."""
    suite = load_suite(write_suite(tmp_path / "retries.yaml", case_ids))
    target = TargetSpec(
        name="a",
        provider="openai",
        model="model-a",
        base_url=server.url,
        max_attempts=max_attempts,
        timeout=timeout,
        concurrency=concurrency,
    )
    judge = TargetSpec(name="judge", provider="openai", model="judge-model", base_url=server.url)
    db = tmp_path / "results.db"
    store = Store(db)
    try:
        run_id = asyncio.run(Runner(store, [suite], [target], [judge], RunOptions()).run())
    finally:
        store.close()
    return db, run_id


def responses_by_case(db: Path, run_id: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id):
        assert r["case_id"] not in out, f"two outcomes recorded for {r['case_id']}"
        out[r["case_id"]] = r
    return out


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Jittered backoff without a Retry-After hint scaled down; the policy itself is unchanged."""
    monkeypatch.setattr(endpoint_module, "BACKOFF_BASE_S", 0.01)
    monkeypatch.chdir(tmp_path)


# transient failures, then success ------------------------------------------------------------------
TRANSIENT: dict[str, Action] = {
    "429-retry-after": rate_limited("0"),
    "429-retry-after-ms": rate_limited(None, retry_after_ms="0"),
    "500": server_error(500),
    "503": unavailable(),
    "drop": drop(),
    "truncated": truncated(),
}


@pytest.mark.parametrize("failure", list(TRANSIENT))
def test_transient_failure_then_success_is_one_ok_response(
    tmp_path: Path, fake_openai: FakeOpenAIServer, failure: str
) -> None:
    fake_openai.script(prompt_of("x"), TRANSIENT[failure], reply())
    db, run_id = run_direct(tmp_path, fake_openai, ["x"])

    (only,) = responses_by_case(db, run_id).values()
    assert only["status"] == "ok"
    assert only["attempts"] == 2
    assert only["error"] is None
    assert only["text"] == f"model-a says: {prompt_of('x')}"
    assert fake_openai.count(prompt=prompt_of("x"), judge=False) == 2
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ? AND response_id = ?", run_id, only["id"])
    assert [j["status"] for j in judgments] == ["scored", "scored"]


def test_two_429s_with_retry_after_then_success(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("x"), rate_limited("0"), rate_limited(None, retry_after_ms="1"), reply("fine"))
    db, run_id = run_direct(tmp_path, fake_openai, ["x"])
    (only,) = responses_by_case(db, run_id).values()
    assert (only["status"], only["attempts"], only["text"]) == ("ok", 3, "fine")


@pytest.mark.parametrize("retry_after", ["Wed, 21 Oct 2015 07:28:00 GMT", "soon"])
def test_429_with_an_http_date_or_unreadable_retry_after_is_still_retried(
    tmp_path: Path, fake_openai: FakeOpenAIServer, retry_after: str
) -> None:
    """Retry-After may be an HTTP date; a value that is neither seconds nor a date is only a missing hint."""
    fake_openai.script(prompt_of("x"), rate_limited(retry_after), reply("fine"))
    db, run_id = run_direct(tmp_path, fake_openai, ["x"])
    (only,) = responses_by_case(db, run_id).values()
    assert (only["status"], only["attempts"], only["text"]) == ("ok", 2, "fine")


# permanent failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "status"), [(bad_request(), 400), (unauthorized(), 401)])
def test_client_errors_are_recorded_at_once(
    tmp_path: Path, fake_openai: FakeOpenAIServer, action: Action, status: int
) -> None:
    fake_openai.script(prompt_of("x"), action, reply())  # a retry would get the reply: there must be none
    db, run_id = run_direct(tmp_path, fake_openai, ["x"])

    (only,) = responses_by_case(db, run_id).values()
    assert only["status"] == "error"
    assert only["attempts"] == 1
    assert str(status) in only["error"]
    assert only["text"] is None
    assert fake_openai.count(prompt=prompt_of("x"), judge=False) == 1
    assert rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id) == []
    assert rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id) == []
    assert fake_openai.count(judge=True) == 0


def test_persistent_503_is_an_error_after_max_attempts(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("x"), *[unavailable("engine overloaded") for _ in range(10)])
    db, run_id = run_direct(tmp_path, fake_openai, ["x"], max_attempts=3)

    (only,) = responses_by_case(db, run_id).values()
    assert only["status"] == "error"
    assert only["attempts"] == 3
    assert "503" in only["error"] and "engine overloaded" in only["error"]
    assert "3 attempts" in only["error"]
    assert fake_openai.count(prompt=prompt_of("x"), judge=False) == 3
    assert rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id) == []


def test_persistent_dropped_connection_is_reported_as_a_connection_failure(
    tmp_path: Path, fake_openai: FakeOpenAIServer
) -> None:
    """A server that closes the connection at once is not a timeout: the recorded reason must say what happened."""
    fake_openai.script(prompt_of("x"), drop(), drop())
    db, run_id = run_direct(tmp_path, fake_openai, ["x"], max_attempts=2, timeout=30.0)

    (only,) = responses_by_case(db, run_id).values()
    assert only["status"] == "error"
    assert only["attempts"] == 2
    assert fake_openai.count(prompt=prompt_of("x"), judge=False) == 2
    reason = only["error"].lower()
    assert "timeout" not in reason, f"a dropped connection was recorded as {only['error']!r}"
    assert "disconnect" in reason or "connection" in reason


def test_slow_reply_times_out_then_succeeds(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("x"), slow(5.0), reply("in time"))
    db, run_id = run_direct(tmp_path, fake_openai, ["x"], timeout=0.3)
    (only,) = responses_by_case(db, run_id).values()
    assert (only["status"], only["attempts"], only["text"]) == ("ok", 2, "in time")


# one run, many outcomes -----------------------------------------------------------------------------
def test_every_call_ends_in_exactly_one_recorded_outcome(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    plans: dict[str, tuple[list[Action], str, int]] = {
        "ok": ([], "ok", 1),
        "r429": ([rate_limited("0")], "ok", 2),
        "r500": ([server_error(500, retry_after="0")], "ok", 2),
        "r503x2": ([unavailable(retry_after="0"), unavailable(retry_after="0")], "ok", 3),
        "drop": ([drop()], "ok", 2),
        "trunc": ([truncated()], "ok", 2),
        "e400": ([bad_request()], "error", 1),
        "e401": ([unauthorized()], "error", 1),
        "e503": ([unavailable(retry_after="0") for _ in range(5)], "error", 3),
        "slow": ([slow(5.0), slow(5.0), slow(5.0)], "error", 3),
    }
    for cid, (actions, _, _) in plans.items():
        if actions:
            fake_openai.script(prompt_of(cid), *actions, reply())
    db, run_id = run_direct(tmp_path, fake_openai, list(plans), max_attempts=3, timeout=0.3)

    got = responses_by_case(db, run_id)
    assert set(got) == set(plans), "a case was dropped"
    judge_calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)
    judged = [c["response_id"] for c in judge_calls]
    assert len(judged) == len(set(judged)), "a response was judged twice"
    for cid, (_, status, attempts) in plans.items():
        r = got[cid]
        assert (r["status"], r["attempts"]) == (status, attempts), cid
        assert fake_openai.count(prompt=prompt_of(cid), judge=False) == attempts, cid
        if status == "ok":
            assert r["error"] is None and r["text"]
            assert r["id"] in judged, f"{cid} was not judged"
        else:
            assert r["error"] and r["text"] is None
            assert r["id"] not in judged, f"{cid} is an error and was judged"
    assert "timeout" in got["slow"]["error"]
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == len(CRITERIA) * sum(1 for _, s, _ in plans.values() if s == "ok")
    assert rows(db, "SELECT status FROM runs WHERE run_id = ?", run_id) == [{"status": "complete"}]


# the same through the command line flags ------------------------------------------------------------
def cli_run(tmp_path: Path, server: FakeOpenAIServer, case_ids: list[str], *flags: str) -> tuple[Path, str]:
    suite = write_suite(tmp_path / "retries.yaml", case_ids)
    db = tmp_path / "results.db"
    args = ["run", str(suite), "-t", f"a=openai:model-a@{server.url}", "--db", str(db), "--format", "json"]
    args += ["--judge", f"judge=openai:judge-model@{server.url}", *flags]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return db, json.loads(result.stdout)["run_id"]


def test_cli_max_attempts_bounds_retries(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("x"), *[unavailable(retry_after="0") for _ in range(10)])
    db, run_id = cli_run(tmp_path, fake_openai, ["x", "y"], "--max-attempts", "3")
    got = responses_by_case(db, run_id)
    assert (got["x"]["status"], got["x"]["attempts"]) == ("error", 3)
    assert "503" in got["x"]["error"]
    assert (got["y"]["status"], got["y"]["attempts"]) == ("ok", 1)
    assert fake_openai.count(prompt=prompt_of("x"), judge=False) == 3
    doc = CliRunner().invoke(cli, ["report", run_id, "--format", "json", "--db", str(db)], catch_exceptions=False)
    (target,) = json.loads(doc.stdout)["targets"].values()
    assert target["errors"] == 1 and target["responses"] == 2


def test_cli_timeout_records_timeout_error(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("x"), slow(5.0), slow(5.0), reply())
    db, run_id = cli_run(tmp_path, fake_openai, ["x"], "--timeout", "0.3", "--max-attempts", "2")
    (only,) = responses_by_case(db, run_id).values()
    assert only["status"] == "error"
    assert only["attempts"] == 2
    assert "timeout" in only["error"]
    assert rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id) == []


# the backoff policy ---------------------------------------------------------------------------------
def test_backoff_honours_retry_after_and_is_bounded() -> None:
    rng = random.Random(7)
    assert endpoint_module.backoff_delay(1, 0.0, rng) == 0.0
    assert endpoint_module.backoff_delay(3, 2.5, rng) == 2.5
    base, cap = endpoint_module.BACKOFF_BASE_S, endpoint_module.BACKOFF_CAP_S
    for attempt in range(1, 12):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        delays = [endpoint_module.backoff_delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1, "no jitter"
