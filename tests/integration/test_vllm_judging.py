"""Judges in depth on the real vLLM server: logprob-weighted scores, pairwise in both orders, a panel of two
judge targets (base model and LoRA adapter), and re-judging stored responses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from store_rows import rows

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "prompt_suites" / "examples" / "factual_qa.yaml"


def harness(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *args, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout)
    return out


@pytest.fixture(scope="module")
def panel_run(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    db = tmp_path_factory.mktemp("judging") / "results.db"
    out = harness(
        "run",
        str(SUITE),
        "-t",
        f"base=openai:tiny@{vllm_url}",
        "-t",
        f"ft=openai:ft@{vllm_url}",
        "--judge",
        "base",
        "--judge",
        "ft",
        "--judge-format",
        "regex",
        "--no-canaries",  # the tiny random judge: flow only
        "--judge-samples",
        "2",
        "--concurrency",
        "16",
        "--db",
        str(db),
    )
    return db, out


def test_logprob_weighted_scores_from_vllm(panel_run: tuple[Path, dict[str, Any]]) -> None:
    db, out = panel_run
    judged = rows(
        db, "SELECT score, weighted_score, weighted_note, status FROM judgments WHERE run_id = ?", out["run_id"]
    )
    scored = [j for j in judged if j["status"] == "scored"]
    assert scored
    with_weight = [j for j in scored if j["weighted_score"] is not None]
    # vLLM returns top logprobs; the regex makes the score digit its own token, so nearly all have a weight
    assert len(with_weight) >= 0.9 * len(scored), {j["weighted_note"] for j in scored}
    assert all(1 <= j["weighted_score"] <= 5 for j in with_weight)
    assert any(j["weighted_score"] != j["score"] for j in with_weight)  # a distribution, not the argmax


def test_panel_of_base_and_adapter_reports_agreement_and_noise(panel_run: tuple[Path, dict[str, Any]]) -> None:
    db, out = panel_run
    calls = rows(
        db, "SELECT judge, judge_sample, COUNT(*) AS n FROM judge_calls WHERE run_id = ? GROUP BY 1, 2", out["run_id"]
    )
    assert {(c["judge"], c["judge_sample"]) for c in calls} == {("base", 0), ("base", 1), ("ft", 0), ("ft", 1)}
    assert len({c["n"] for c in calls}) == 1  # every response judged by both judges, twice each
    judging = out["judging"]
    assert judging["judges"] == ["base", "ft"] and judging["samples"] == 2
    for criterion in ("preciseness", "instruction_following"):
        agreement = judging["agreement"][criterion]
        assert agreement["responses_all_scored"] > 0 and "weighted_kappa" in agreement
        noise = judging["noise"][criterion]
        assert noise["samples_per_response"] == 2 and noise["noise_floor_case"] >= 0


def test_pairwise_both_orders_on_vllm(vllm_url: str, tmp_path: Path) -> None:
    db = tmp_path / "pairwise.db"
    out = harness(
        "run",
        str(SUITE),
        "-t",
        f"base=openai:tiny@{vllm_url}",
        "-t",
        f"ft=openai:ft@{vllm_url}",
        "--judge",
        "base",
        "--judge-mode",
        "pairwise",
        "--judge-format",
        "regex",
        "--no-canaries",  # the tiny random judge: flow only
        "--db",
        str(db),
    )
    pairs = rows(db, "SELECT case_id, first, winner, status, template FROM pairwise WHERE run_id = ?", out["run_id"])
    cases = {p["case_id"] for p in pairs}
    assert len(cases) == 14
    assert all({p["first"] for p in pairs if p["case_id"] == c} == {"a", "b"} for c in cases)
    assert all(p["template"] == "pairwise_v1" for p in pairs)
    assert all(p["winner"] in ("a", "b", "tie") for p in pairs if p["status"] == "scored")
    summary = out["judging"]["pairwise"]["base"]
    assert summary["pairs"] == 14 and summary["verdicts"] == 28
    assert 0 <= summary["position_consistency"] <= 1
    assert summary["win_rates"]["base"]["pairs"] == summary["win_rates"]["ft"]["pairs"] == 14


def test_rejudge_stored_responses(panel_run: tuple[Path, dict[str, Any]], vllm_url: str) -> None:
    db, out = panel_run
    again = harness(
        "judge",
        out["run_id"],
        "--judge",
        "ft",
        "--judge-mode",
        "reference",
        "--judge-format",
        "regex",
        "--no-canaries",
        "--db",
        str(db),
    )
    assert again["run_id"] != out["run_id"]
    original = rows(db, "SELECT case_id, target, text FROM responses WHERE run_id = ? ORDER BY 1, 2", out["run_id"])
    copied = rows(db, "SELECT case_id, target, text FROM responses WHERE run_id = ? ORDER BY 1, 2", again["run_id"])
    assert copied == original
    templates = rows(db, "SELECT DISTINCT judge, template FROM judge_calls WHERE run_id = ?", again["run_id"])
    assert templates == [{"judge": "ft", "template": "reference_v1"}]
    config = json.loads(rows(db, "SELECT config FROM runs WHERE run_id = ?", again["run_id"])[0]["config"])
    assert config["rejudge_of"] == out["run_id"]
