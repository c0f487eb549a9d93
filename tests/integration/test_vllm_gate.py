"""`harness gate` exit codes on real runs of the tiny vLLM server: 0 when the conditions hold, 1 when a quality
condition fails, 3 when a target is down (its server stopped), 2 on a bad flag; and a committed-baseline gate that
needs no database from the night before (the baseline file alone)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Judge-only cases, plus one case with a check the random tiny model cannot pass (a word it never writes).
SUITE = """suite: gate-check
version: 1.0.0
defaults:
  params: {temperature: 0, max_tokens: 16}
  criteria: [preciseness]
  threshold: 1
cases:
  - {id: colour, prompt: "Name a colour."}
  - {id: hello, prompt: "Say hello."}
  - {id: fruit, prompt: "Name a fruit."}
  - {id: planet, prompt: "Name a planet."}
  - id: impossible
    prompt: "Reply with the word zyxquv."
    checks: [{contains: "zyxquv-never"}]
"""


def harness(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def closed_port() -> int:
    """A loopback port nothing listens on: bound, then released (the stopped server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def gate_runs(vllm_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("gate")
    suite = work / "gate.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    db = work / "results.db"
    common = [
        "--judge",
        f"judge=openai:tiny@{vllm_url}",
        "--judge-format",
        "regex",
        "--no-canaries",
        "--db",
        db,
        "--format",
        "json",
    ]
    up = harness("run", suite, "--target", f"base=openai:tiny@{vllm_url}", "--name", "up", *common)
    assert up.returncode == 0, up.stderr[-3000:]
    stopped = f"http://127.0.0.1:{closed_port()}/v1"
    down = harness(
        "run", suite, "--target", f"base=openai:tiny@{vllm_url}", "--target", f"gone=openai:tiny@{stopped}",
        "--max-attempts", "2", "--name", "down", *common,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr[-3000:]
    return {"db": db, "work": work, "up": json.loads(up.stdout)["run_id"], "down": json.loads(down.stdout)["run_id"]}


def gate(runs: dict[str, Any], run: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return harness("gate", runs[run], "--db", runs["db"], "--format", "json", *args)


def test_passing_gate_exits_0(gate_runs: dict[str, Any]) -> None:
    proc = gate(gate_runs, "up", "--min-mean", "preciseness=1", "--min-pass-rate", "0.5")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == []
    (rate,) = [c for c in doc["conditions"] if c["name"] == "min_pass_rate"]
    assert rate["actual"] == pytest.approx(0.8)  # four judge-only cases pass at threshold 1; the impossible one fails


def test_failing_quality_gate_exits_1(gate_runs: dict[str, Any]) -> None:
    proc = gate(gate_runs, "up", "--min-pass-rate", "0.9")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (failed,) = json.loads(proc.stdout)["failed"]
    assert failed["name"] == "min_pass_rate" and failed["actual"] == pytest.approx(0.8)
    assert "10.0 points short" in failed["message"]


def test_target_stopped_exits_3(gate_runs: dict[str, Any]) -> None:
    proc = gate(gate_runs, "down", "--min-pass-rate", "0.5")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    failed = {(c["name"], c["target"]) for c in doc["failed"]}
    assert ("min_availability", "gone") in failed
    assert all(c["ok"] for c in doc["conditions"] if c["target"] == "base")
    # the same run gated on the healthy target alone is trustworthy
    assert gate(gate_runs, "down", "--target", "base", "--min-pass-rate", "0.5").returncode == 0


def test_bad_flag_exits_2(gate_runs: dict[str, Any]) -> None:
    proc = gate(gate_runs, "up", "--min-pass-rate", "2")
    assert proc.returncode == 2 and "error:" in proc.stderr


def test_committed_baseline_file_gates_without_the_old_store(vllm_url: str, gate_runs: dict[str, Any]) -> None:
    baseline = gate_runs["work"] / "baselines" / "nightly.json"
    export = harness("baseline", "export", gate_runs["up"], "-o", baseline, "--db", gate_runs["db"])
    assert export.returncode == 0, export.stderr
    # the next night in CI: a fresh store holding only the new run, and the committed baseline file
    fresh = gate_runs["work"] / "fresh.db"
    run = harness(
        "run", gate_runs["work"] / "gate.yaml", "--target", f"base=openai:tiny@{vllm_url}", "--judge",
        f"judge=openai:tiny@{vllm_url}", "--judge-format", "regex", "--no-canaries", "--db", fresh, "--format", "json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    run_id = json.loads(run.stdout)["run_id"]
    proc = harness(
        "gate", run_id, "--db", fresh, "--baseline", baseline, "--max-regression", "0.5", "--max-pass-rate-drop",
        "0.2", "--format", "json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    (regression,) = [c for c in doc["conditions"] if c["name"] == "max_regression"]
    # the same model again: any delta (vLLM on the CPU is not bit-for-bit repeatable across batches) is not a
    # significant drop, and all five cases were paired against the file
    assert regression["ok"] and "; n 5)" in regression["message"], regression
    assert doc["baseline"].startswith(tuple("0123456789"))  # the baseline file became a run of a private copy
