"""`harness failover` on a real run against vLLM: the base model and its LoRA adapter, judged by the base model with
vLLM structured outputs (regex); the adapter is ranked as the base's fallback, with its flags and a fallback config."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reports.failover import RULE

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "prompt_suites" / "examples" / "factual_qa.yaml"


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=600, check=False
    )


def test_failover_ranks_the_adapter_against_the_base(vllm_url: str, tmp_path: Path) -> None:
    db = tmp_path / "results.db"
    proc = harness(
        "run", str(SUITE), "--target", f"base=openai:tiny@{vllm_url}", "--target", f"ft=openai:ft@{vllm_url}",
        "--judge", "base", "--judge-format", "regex", "--no-canaries", "--gpu-hour", "base=1.5", "--concurrency", "8",
        "--db", str(db), "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads(proc.stdout)["run_id"]

    config_file = tmp_path / "fallbacks.yaml"
    proc = harness(
        "failover", run_id, "--primary", "base", "--db", str(db), "--format", "json", "--emit-config", str(config_file)
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)

    (ft,) = doc["ranking"]
    assert ft["target"] == "ft" and ft["rank"] == 1 and ft["tie_group"] == 1
    assert isinstance(ft["flags"], list) and all({"code", "message"} <= set(f) for f in ft["flags"])
    cases = 14
    assert ft["paired_responses"] == cases and 0 < ft["scored_pairs"] <= cases
    assert ft["mean_delta"] is not None and -4 <= ft["mean_delta"] <= 4
    if ft["scored_pairs"] > 1:
        low, high = ft["ci95"]
        assert low <= ft["mean_delta"] <= high
    assert ft["quality_retained"] is not None and ft["quality_retained"] > 0
    assert ft["availability"] == 1.0 and ft["error_rate"] == 0.0
    assert ft["latency_ms_p50"] > 0 and ft["latency_ms_p95"] >= ft["latency_ms_p50"]
    for crit in ("preciseness", "instruction_following"):
        c = ft["criteria"][crit]
        assert c["n"] > 0 and c["wasserstein"] is not None and 0 <= c["ks_statistic"] <= 1
    assert doc["rule"] == RULE and set(doc["flags"]) == {"base", "ft"}

    base_cost, ft_cost = doc["cost"]
    assert base_cost["target"] == "base" and base_cost["basis"] == "gpu_hour" and base_cost["usd_per_gpu_hour"] == 1.5
    assert base_cost["usd_per_1000_cases"] > 0 and base_cost["usd_per_1m_output_tokens"] > 0
    assert ft_cost["basis"] is None and ft_cost["tokens_out"] > 0

    cfg = doc["fallback_config"]
    assert cfg["json"] == {
        "primary": "base",
        "fallbacks": ["ft"],
        "rule": RULE,
        "flagged": {"ft": [f["code"] for f in ft["flags"]]} if ft["flags"] else {},
        "excluded": [],
    }
    litellm = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    assert litellm["router_settings"]["fallbacks"] == [{"base": ["ft"]}]
    assert [m["litellm_params"] for m in litellm["model_list"]] == [
        {"model": "openai/tiny", "api_base": vllm_url},
        {"model": "openai/ft", "api_base": vllm_url},
    ]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no harness.yaml of the checkout's
