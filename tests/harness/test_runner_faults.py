"""Faults and outages: with 20% of calls failing at random every call still ends in exactly one outcome; a
server that dies mid-run is declared down within seconds and its remaining calls are recorded unavailable."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

from fake_openai_server import (
    Action,
    Call,
    FakeOpenAIServer,
    drop,
    rate_limited,
    server_error,
    slow,
    truncated,
    unavailable,
)
from store_rows import rows

CASES = [f"c{i:03d}" for i in range(60)]


def write_suite(path: Path, cases: list[str]) -> Path:
    lines = ["suite: faults", "version: 1.0.0", "defaults:", "  criteria: [preciseness]", "cases:"]
    for cid in cases:
        lines += [f"  - id: {cid}", f'    prompt: "[{cid}] What is the capital of France?"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_twenty_percent_faults_lose_and_double_nothing(tmp_path: Path) -> None:
    rng = random.Random(20)
    lock = threading.Lock()
    faults = [
        lambda: rate_limited("0"),
        lambda: server_error(500),
        lambda: unavailable(),
        lambda: drop(),
        lambda: slow(2.0),
        lambda: truncated(),
    ]
    injected: list[str] = []

    def policy(call: Call) -> Action | None:
        with lock:
            if rng.random() >= 0.2:
                return None
            fault = rng.choice(faults)()
            injected.append(fault.kind)
            return fault

    suite = write_suite(tmp_path / "faults.yaml", CASES)
    db = tmp_path / "r.db"
    with FakeOpenAIServer(latency=0.01, policy=policy) as server:
        proc = harness(
            "run",
            str(suite),
            "-t",
            f"a=openai:model-a@{server.url}",
            "--judge",
            f"j=openai:judge@{server.url}",
            "--concurrency",
            "8",
            "--timeout",
            "0.5",
            "--max-attempts",
            "12",
            "--breaker-failures",
            "1000",
            "--db",
            str(db),
            "--format",
            "json",
        )
        calls = server.calls()
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_id = json.loads(proc.stdout)["run_id"]
    assert len(injected) >= 0.1 * len(calls)  # faults really happened (20% of calls, retries included)
    responses = rows(db, "SELECT case_id, status, attempts FROM responses WHERE run_id = ?", run_id)
    assert sorted(r["case_id"] for r in responses) == CASES  # one outcome per call, none doubled
    assert all(r["status"] == "ok" for r in responses)  # every retryable call eventually answered
    assert any(r["attempts"] > 1 for r in responses)
    judge_calls = rows(db, "SELECT response_id, status FROM judge_calls WHERE run_id = ?", run_id)
    assert len(judge_calls) == len({c["response_id"] for c in judge_calls}) == len(CASES)
    assert all(c["status"] == "scored" for c in judge_calls)


def test_server_dies_mid_run_circuit_opens_rest_unavailable(tmp_path: Path) -> None:
    cases = [f"d{i:03d}" for i in range(300)]
    suite = write_suite(tmp_path / "outage.yaml", cases)
    db = tmp_path / "r.db"
    server = FakeOpenAIServer(latency=0.05).start()
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "run",
        str(suite),
        "-t",
        f"a=openai:model-a@{server.url}",
        "--judge",
        f"j=openai:judge@{server.url}",
        "--concurrency",
        "4",
        "--db",
        str(db),
        "--format",
        "json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while len(_responses(db)) < 20:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
    finally:
        server.stop()
    stopped = time.time()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    run_id = json.loads(out)["run_id"]
    responses = rows(db, "SELECT case_id, status, error, created_at FROM responses WHERE run_id = ?", run_id)
    assert sorted(r["case_id"] for r in responses) == cases  # every call has its one outcome
    unavailable_rows = [r for r in responses if r["status"] == "unavailable"]
    assert unavailable_rows, {r["status"] for r in responses}
    first_down = min(r["created_at"] for r in unavailable_rows)
    assert first_down - stopped < 10.0  # declared down within 10 s of the server dying
    assert all("target down" in r["error"] for r in unavailable_rows)
    report = json.loads(harness("report", run_id, "--format", "json", "--db", str(db)).stdout)
    (target,) = report["targets"].values()
    assert target["unavailable"] == len(unavailable_rows)
    assert target["availability"] is not None and target["availability"] < 1.0


def _responses(db: Path) -> list[dict[str, object]]:
    if not db.exists():
        return []
    try:
        return rows(db, "SELECT id FROM responses")
    except Exception:  # the store may not have its tables yet
        return []
