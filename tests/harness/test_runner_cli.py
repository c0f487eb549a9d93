"""`harness run` end to end against a loopback OpenAI-compatible server: the plan, judging, the summary,
the report document, per-target concurrency and the call cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from fake_openai_server import Call, FakeOpenAIServer, bad_request
from store_rows import rows

from harness.cli import cli

CRITERIA = ["preciseness", "instruction_following"]


# helpers ------------------------------------------------------------------------------------------
def write_suite(path: Path, name: str, case_ids: list[str], *, version: str = "1.0.0") -> Path:
    lines = [
        f"suite: {name}",
        f"version: {version}",
        "defaults:",
        f"  criteria: {json.dumps(CRITERIA)}",
        "  threshold: 4",
        "cases:",
    ]
    for cid in case_ids:
        lines += [f"  - id: {cid}", f"    prompt: {json.dumps(prompt_of(cid))}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def prompt_of(case_id: str) -> str:
    return f"[{case_id}] What is the answer to question {case_id}?"


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def invoke_json(*args: str) -> Any:
    return json.loads(invoke(*args).stdout)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./harness.yaml


def run_args(suite: Path, db: Path, server: FakeOpenAIServer, *extra: str) -> list[str]:
    return [
        "run",
        str(suite),
        "-t",
        f"a=openai:model-a@{server.url}",
        "-t",
        f"b=openai:model-b@{server.url}",
        "--judge",
        f"judge=openai:judge-model@{server.url}",
        "--no-canaries",
        "--db",
        str(db),
        "--format",
        "json",
        *extra,
    ]


def score_by_model(criterion: str, call: Call) -> int:
    """model-a's replies get 5 everywhere; model-b's get preciseness 3 (below threshold 4), else 4."""
    if "model-a says:" in call.text:
        return 5
    return 3 if criterion == "preciseness" else 4


# happy path ---------------------------------------------------------------------------------------
def test_happy_path_plan_judging_summary_and_report(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.judge_score = score_by_model
    cases = ["c1", "c2", "c3"]
    suite = write_suite(tmp_path / "qa.yaml", "qa", cases)
    db = tmp_path / "results.db"

    out = invoke_json(*run_args(suite, db, fake_openai, "--samples", "2"))

    run_id = out["run_id"]
    assert isinstance(run_id, str) and run_id
    assert out["resumed"] is False
    assert {t["target"] for t in out["summary"].values()} == {"a", "b"}

    # exactly one response row per (case, target, sample), all ok at the first attempt
    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", run_id)
    keys = [(r["case_id"], r["target"], r["sample"]) for r in responses]
    assert sorted(keys) == sorted((c, t, s) for c in cases for t in ("a", "b") for s in (0, 1))
    assert all(r["status"] == "ok" and r["attempts"] == 1 and not r["from_cache"] for r in responses)
    for r in responses:
        model = "model-a" if r["target"] == "a" else "model-b"
        assert r["text"] == f"{model} says: {prompt_of(r['case_id'])}"

    # the server saw one target call per response
    assert fake_openai.count(judge=False, model="model-a") == 6
    assert fake_openai.count(judge=False, model="model-b") == 6

    # every response judged once (a fresh judge call or, for an identical judge request, the cache)
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", run_id)
    assert sorted(c["response_id"] for c in calls) == sorted(r["id"] for r in responses)
    assert all(c["status"] == "scored" for c in calls)
    fresh = [c for c in calls if not c["from_cache"]]
    assert len(fresh) == fake_openai.count(judge=True)
    judgments = rows(db, "SELECT * FROM judgments WHERE run_id = ?", run_id)
    assert len(judgments) == len(responses) * len(CRITERIA)
    assert all(j["status"] == "scored" and 1 <= j["score"] <= 5 for j in judgments)

    # the report document: per-target, per-criterion means, pass rates, error and unscored counts
    doc = invoke_json("report", run_id, "--format", "json", "--db", str(db))
    by_target = {t["target"]: t for t in doc["targets"].values()}
    a, b = by_target["a"], by_target["b"]
    assert a["responses"] == b["responses"] == 6
    assert a["cases"] == b["cases"] == 3
    assert a["criteria"]["preciseness"]["mean"] == 5.0
    assert a["criteria"]["instruction_following"]["mean"] == 5.0
    assert b["criteria"]["preciseness"]["mean"] == 3.0
    assert b["criteria"]["instruction_following"]["mean"] == 4.0
    assert a["criteria"]["preciseness"]["n"] == 6
    assert a["pass_rate"] == 1.0 and a["passed"] == 6
    assert b["pass_rate"] == 0.0 and b["failed"] == 6
    for t in (a, b):
        assert t["errors"] == 0
        assert t["unscored"] == 0
        assert t["judge_unscored"] == 0
    assert doc["run"]["run_id"] == run_id
    assert doc["run"]["status"] == "complete"
    assert doc["run"]["samples"] == 2
    assert len(doc["cases"]) == 12

    # `run --format json` carries the same summary
    assert {t["target"]: t["pass_rate"] for t in out["summary"].values()} == {"a": 1.0, "b": 0.0}

    # `runs` lists it as complete
    listed = invoke_json("runs", "--format", "json", "--db", str(db))
    assert [r["run_id"] for r in listed] == [run_id]
    assert listed[0]["status"] == "complete"
    assert listed[0]["responses"] == 12
    assert listed[0]["judgments"] == 24


def test_table_output_names_the_run_and_targets(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    suite = write_suite(tmp_path / "qa.yaml", "qa", ["c1"])
    db = tmp_path / "results.db"
    args = run_args(suite, db, fake_openai)
    text = invoke(*args[: args.index("--format")]).stdout
    run_id = rows(db, "SELECT run_id FROM runs")[0]["run_id"]
    assert f"run {run_id}" in text
    assert "mean preciseness" in text
    assert "\na " in text and "\nb " in text


def test_per_target_concurrency_is_bounded(tmp_path: Path) -> None:
    cases = [f"c{i}" for i in range(12)]
    suite = write_suite(tmp_path / "qa.yaml", "qa", cases)
    db = tmp_path / "results.db"
    with FakeOpenAIServer(latency=0.03) as server:
        invoke_json(*run_args(suite, db, server, "--concurrency", "2"))
        assert 1 <= server.max_inflight["model-a"] <= 2
        assert 1 <= server.max_inflight["model-b"] <= 2
        assert 1 <= server.max_inflight["judge-model"] <= 2
        assert server.count(judge=False) == 24


# cache --------------------------------------------------------------------------------------------
def test_same_command_twice_is_a_new_run_served_from_the_cache(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    suite = write_suite(tmp_path / "qa.yaml", "qa", ["c1", "c2", "c3"])
    db = tmp_path / "results.db"
    args = run_args(suite, db, fake_openai, "--samples", "2")

    first = invoke_json(*args)
    seen = len(fake_openai.calls())
    second = invoke_json(*args)

    assert second["run_id"] != first["run_id"]
    assert second["resumed"] is False
    assert len(fake_openai.calls()) == seen, "the second run called the server"
    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", second["run_id"])
    assert len(responses) == 12
    assert all(r["status"] == "ok" and r["from_cache"] == 1 for r in responses)
    first_texts = {
        (r["case_id"], r["target"], r["sample"]): r["text"]
        for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", first["run_id"])
    }
    assert {(r["case_id"], r["target"], r["sample"]): r["text"] for r in responses} == first_texts
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", second["run_id"])
    assert len(calls) == 12
    assert all(c["from_cache"] == 1 and c["status"] == "scored" for c in calls)
    assert len(rows(db, "SELECT * FROM judgments WHERE run_id = ?", second["run_id"])) == 24
    doc = invoke_json("report", second["run_id"], "--format", "json", "--db", str(db))
    assert all(t["cache_hits"] == t["responses"] == 6 for t in doc["targets"].values())

    # --no-cache calls the server again for every response and every judgment
    third = invoke_json(*args, "--no-cache")
    assert third["run_id"] not in (first["run_id"], second["run_id"])
    assert fake_openai.count(judge=False) == 24
    responses = rows(db, "SELECT * FROM responses WHERE run_id = ?", third["run_id"])
    assert len(responses) == 12
    assert all(r["from_cache"] == 0 for r in responses)
    calls = rows(db, "SELECT * FROM judge_calls WHERE run_id = ?", third["run_id"])
    assert len(calls) == 12 and all(c["from_cache"] == 0 for c in calls)


def test_errors_are_not_cached(tmp_path: Path, fake_openai: FakeOpenAIServer) -> None:
    fake_openai.script(prompt_of("bad"), bad_request(), bad_request())
    suite = write_suite(tmp_path / "qa.yaml", "qa", ["good", "bad"])
    db = tmp_path / "results.db"
    args = [
        "run",
        str(suite),
        "-t",
        f"a=openai:model-a@{fake_openai.url}",
        "--judge",
        f"judge=openai:judge-model@{fake_openai.url}",
        "--db",
        str(db),
        "--format",
        "json",
    ]
    first = invoke_json(*args)
    second = invoke_json(*args)
    assert second["run_id"] != first["run_id"]
    assert fake_openai.count(prompt=prompt_of("good"), judge=False) == 1
    assert fake_openai.count(prompt=prompt_of("bad"), judge=False) == 2
    by_case = {r["case_id"]: r for r in rows(db, "SELECT * FROM responses WHERE run_id = ?", second["run_id"])}
    assert by_case["good"]["from_cache"] == 1
    assert by_case["bad"]["status"] == "error" and by_case["bad"]["from_cache"] == 0
