"""The whole path on a real vLLM server: suites -> base model and LoRA adapter -> judge -> store -> reports."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from harness.store import Store
from harness.suites import discover_suite_files, load_suite
from reports.summary import summarise

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "prompt_suites" / "examples"


def harness(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )


def test_vllm_serves_base_and_adapter(vllm_url: str) -> None:
    with urllib.request.urlopen(f"{vllm_url}/models", timeout=10) as resp:
        ids = {m["id"] for m in json.load(resp)["data"]}
    assert {"tiny", "ft"} <= ids


@pytest.fixture(scope="module")
def demo_run(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("run")
    db = work / "results.db"
    proc = harness(
        "run",
        str(EXAMPLES / "factual_qa.yaml"),
        str(EXAMPLES / "support_triage.yaml"),
        "--target",
        f"base=openai:tiny@{vllm_url}",
        "--target",
        f"ft=openai:ft@{vllm_url}",
        "--judge",
        "base",
        "--judge-format",
        "regex",
        "--no-canaries",  # the tiny random judge: flow only
        "--samples",
        "2",
        "--concurrency",
        "16",
        "--db",
        str(db),
        "--format",
        "json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    return {"db": db, "run_id": out["run_id"], "summary": out["summary"], "work": work}


def test_one_outcome_per_case_target_sample(demo_run: dict[str, Any]) -> None:
    suites = [load_suite(p) for p in (EXAMPLES / "factual_qa.yaml", EXAMPLES / "support_triage.yaml")]
    expected = {(s.name, case.id, t, n) for s in suites for case in _cases(s) for t in ("base", "ft") for n in (0, 1)}
    db = sqlite3.connect(demo_run["db"])
    rows = db.execute(
        "SELECT suite, case_id, target, sample, status, error FROM responses WHERE run_id = ?", (demo_run["run_id"],)
    ).fetchall()
    assert len(rows) == len(expected) == sum(s.case_count for s in suites) * 2 * 2
    assert {(r[0], r[1], r[2], r[3]) for r in rows} == expected
    assert all(r[4] == "ok" for r in rows), [r for r in rows if r[4] != "ok"][:3]


def _cases(suite: Any) -> list[Any]:
    from harness.suites.loader import iter_cases

    return list(iter_cases(suite))


def test_every_response_judged_in_range_or_unscored_with_reason(demo_run: dict[str, Any]) -> None:
    db = sqlite3.connect(demo_run["db"])
    run_id = demo_run["run_id"]
    responses = db.execute("SELECT COUNT(*) FROM responses WHERE run_id = ?", (run_id,)).fetchone()[0]
    calls = db.execute(
        "SELECT response_id, template, prompt, raw FROM judge_calls WHERE run_id = ?", (run_id,)
    ).fetchall()
    assert len({c[0] for c in calls}) == responses == len(calls)
    assert all(c[1] == "rubric_v1" and "<<<RESPONSE" in c[2] for c in calls)
    judgments = db.execute(
        "SELECT criterion, score, status, reason FROM judgments WHERE run_id = ?", (run_id,)
    ).fetchall()
    assert len(judgments) == 2 * responses  # two criteria per case in both suites
    for criterion, score, status, reason in judgments:
        assert criterion in {"preciseness", "instruction_following"}
        if status == "scored":
            assert 1 <= score <= 5
        else:
            assert score is None and reason
    assert sum(1 for j in judgments if j[2] == "scored") > 0.9 * len(judgments)


def test_adapter_changes_the_model(vllm_url: str, demo_run: dict[str, Any]) -> None:
    """The LoRA target is really the adapter: its token log-probabilities differ from the base model's.
    (A random-weight adapter flips only some greedy tokens, so comparing texts alone would be flaky.)"""

    def first_logprobs(model: str) -> list[float]:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "max_tokens": 4,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 5,
        }
        req = urllib.request.Request(
            f"{vllm_url}/chat/completions", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            content = json.load(resp)["choices"][0]["logprobs"]["content"]
        return [round(alt["logprob"], 4) for alt in content[0]["top_logprobs"]]

    assert first_logprobs("tiny") != first_logprobs("ft")
    db = sqlite3.connect(demo_run["db"])
    targets = {
        r[0] for r in db.execute("SELECT DISTINCT target FROM responses WHERE run_id = ?", (demo_run["run_id"],))
    }
    assert targets == {"base", "ft"}


def test_reports_render_and_parse(demo_run: dict[str, Any]) -> None:
    work, db, run_id = demo_run["work"], demo_run["db"], demo_run["run_id"]
    for fmt in ("json", "md", "html"):
        out = work / f"report.{fmt}"
        proc = harness("report", run_id, "--format", fmt, "-o", str(out), "--db", str(db))
        assert proc.returncode == 0, proc.stderr
    doc = json.loads((work / "report.json").read_text())
    assert {t["target"] for t in doc["targets"].values()} == {"base", "ft"}
    for t in doc["targets"].values():
        assert t["errors"] == 0
        assert set(t["criteria"]) == {"preciseness", "instruction_following"}
        for stats in t["criteria"].values():
            assert stats["n"] > 0 and 1 <= stats["mean"] <= 5
        assert t["evaluated"] + t["unscored"] + t["errors"] == t["responses"]
    assert doc == json.loads(json.dumps(summarise(Store(db), run_id), default=str))
    html = (work / "report.html").read_text()
    # offline: plotly.js inline once, nothing fetched (plotly.js only names its CDN for geo charts we never draw)
    assert html.count("<script>") >= 2 and "<script src" not in html and "<link" not in html
    assert html.count("plotly.js v") == 1
    assert "| base |" in (work / "report.md").read_text()


def test_suites_discovered(demo_run: dict[str, Any]) -> None:
    assert len(discover_suite_files([EXAMPLES])) == 3
