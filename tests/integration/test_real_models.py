"""Quality claims on real models: SmolLM2-135M-Instruct (`base`) and the LoRA fine-tune trained here (`ft`), served
by the real vLLM CPU server, run through `harness run` like a user would. What is asserted is what is true of
these models: base answers short factual questions; base fails most triage JSON checks and ft passes most, by a
margin McNemar's test calls significant; a 135M-parameter judge's canary accuracy is measured with its interval,
and a judge below the bar makes a judge-based gate exit 3 while a check-based gate still decides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.store import Store
from judges.canaries import DEFAULT_CANARIES
from reports.compare import compare_runs

EXAMPLES = Path(__file__).resolve().parents[2] / "prompt_suites" / "examples"
# The first test also pays for converting the model, training the adapter (about 5 minutes on 2 cores), starting two
# servers and two runs on a CPU that prefills about 250 tokens/s: far over the suite's per-test 900 s.
pytestmark = pytest.mark.timeout(3000)


def harness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(real_servers: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two runs on the real server: factual-qa and support-triage against base and ft with no judge (checks only);
    support-triage again with base as the judge (canaries scored)."""
    work = tmp_path_factory.mktemp("real-runs")
    db = work / "results.db"
    targets = [
        "--target",
        f"base=openai:base@{real_servers.base_url}",
        "--target",
        f"ft=openai:ft@{real_servers.ft_url}",
    ]
    # a 2-core CPU server answers slowly under load: slow is not down
    common = ["--concurrency", "8", "--timeout", "900", "--db", db, "--format", "json"]
    checks = harness(
        "run",
        EXAMPLES / "factual_qa.yaml",
        EXAMPLES / "support_triage.yaml",
        *targets,
        "--name",
        "checks",
        *common,
    )
    assert checks.returncode == 0, checks.stderr[-3000:]
    # a third of the shipped canaries (a 2-core CPU prefills judge prompts at about 250 tokens/s)
    shipped = yaml.safe_load(DEFAULT_CANARIES.read_text(encoding="utf-8"))
    canaries = work / "some.canaries.yaml"
    canaries.write_text(yaml.safe_dump({**shipped, "items": shipped["items"][:20]}), encoding="utf-8")
    judged = harness(
        "run",
        EXAMPLES / "support_triage.yaml",
        *targets,
        "--canaries",
        canaries,
        "--judge",
        "base",
        "--judge-format",
        "regex",
        "--name",
        "judged",
        *common,
    )
    assert judged.returncode == 0, judged.stderr[-3000:]
    return {"db": db, "checks": json.loads(checks.stdout), "judged": json.loads(judged.stdout)}


def _coverage(summary: dict[str, Any], suite: str, target: str) -> dict[str, Any]:
    return next(c for c in summary["coverage"] if c["suite"] == suite and c["target"] == target)


def test_base_answers_factual_questions(runs: dict[str, Any]) -> None:
    checks = _coverage(runs["checks"], "factual-qa", "base")["checks"]
    assert checks["evaluated"] == 14
    assert checks["pass_rate"] >= 0.5, checks  # a real instruction-tuned model, not random weights


def _json_check_rate(store: Store, run: str, target: str) -> float:
    """Share of the target's support-triage responses that pass the `json` check (the whole reply is JSON)."""
    rows = [
        r for r in store.responses(store.run(run)["run_id"]) if r["target"] == target and r["suite"] == "support-triage"
    ]
    passed = [c["passed"] for r in rows for c in r["checks"] if c["check"] == "json"]
    assert len(passed) == 24
    return sum(passed) / len(passed)


def test_the_fine_tune_passes_triage_checks_the_base_model_fails(runs: dict[str, Any]) -> None:
    store = Store(runs["db"])
    # the JSON-only instruction: base writes paragraphs, the fine-tune answers with the bare JSON object
    assert _json_check_rate(store, "checks", "base") <= 0.25
    assert _json_check_rate(store, "checks", "ft") >= 0.9
    base = _coverage(runs["checks"], "support-triage", "base")["checks"]
    ft = _coverage(runs["checks"], "support-triage", "ft")["checks"]
    assert base["evaluated"] == ft["evaluated"] == 24
    assert base["pass_rate"] <= 0.1, base  # JSON and the right category: the base model almost never
    assert ft["pass_rate"] >= 0.3, ft  # the category too: a 135M model learns it only in part in minutes of CPU
    block = compare_runs(store, "checks", "checks", baseline_target="base", candidate_target="ft")["targets"][0]
    triage = block["checks"]["by_suite"]["support-triage"]
    assert triage["pairs"] == 24
    assert triage["fail_to_pass"] > triage["pass_to_fail"]
    assert triage["p_mcnemar"] < 0.01, triage
    assert triage["ci95"][0] > 0, triage  # the paired pass-rate gain's interval excludes zero


def test_canary_accuracy_is_measured_with_its_interval(runs: dict[str, Any]) -> None:
    canaries = runs["judged"]["judging"]["canaries"]
    store = Store(runs["db"])
    rows = store.canary_judgments(store.run("judged")["run_id"])
    assert len({(r["canary_id"], r["side"]) for r in rows}) == 2 * canaries["set"]["items"]
    block = canaries["judges"]["base"]
    assert set(block["criteria"]) == {"preciseness", "instruction_following"}
    for criterion in block["criteria"].values():
        assert criterion["n"] > 0
        low, high = criterion["ci95"]
        assert 0 <= low <= criterion["accuracy"] <= high <= 1
    # a 135M-parameter model cannot judge: not above chance on some criterion, so the run's judge is untrusted
    assert canaries["trusted"] is False, block
    assert runs["judged"]["judging"]["trusted"] is False


def test_an_untrusted_judge_makes_a_judge_based_gate_exit_3(runs: dict[str, Any]) -> None:
    db = runs["db"]
    judged = harness("gate", "judged", "--target", "ft", "--min-mean", "instruction_following=1", "--db", db)
    assert judged.returncode == 3, judged.stdout + judged.stderr
    assert "judge base" in judged.stdout and "canaries failed" in judged.stdout
    # the floor alone also refuses it (no 135M-parameter judge is perfect on 20 canaries)
    floor = harness(
        "gate", "judged", "--target", "ft", "--min-pass-rate", "0", "--min-canary-accuracy", "0.99", "--db", db
    )
    assert floor.returncode == 3, floor.stdout + floor.stderr
    # the deterministic checks still gate normally, with the judge's failure as a note: ft passes the triage checks
    # on 30-60% of the tickets (10 of 24 when measured), base on none
    checks = harness(
        "gate", "judged", "--target", "ft", "--min-check-pass-rate-suite", "support-triage=0.25", "--db", db
    )
    assert checks.returncode == 0, checks.stdout + checks.stderr
    assert "judge_canaries" in checks.stdout
    strict = harness(
        "gate", "judged", "--target", "base", "--min-check-pass-rate-suite", "support-triage=0.25", "--db", db
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr  # quality failed, not "untrustworthy"
