"""The `vllm` provider on a real vLLM server (CPU build): `harness run` with targets that start and stop their
own server, and `harness serve vllm` whose printed specs a run uses, then Ctrl-C. Two server starts in all.

Every harness process started here carries a marker in its environment, inherited by vLLM and its engine core,
so "no process left behind" is checked on exactly the processes these tests started: not on the session
fixture's server, nor on anyone else's.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.smoke.vllm_server import build_smoke_model, default_python

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "prompt_suites" / "examples" / "factual_qa.yaml"


def vllm_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "vllm.entrypoints"], capture_output=True, text=True, check=False).stdout
    return {int(p) for p in out.split()}


def marked_pids(mark: str) -> set[int]:
    """Live processes whose environment carries the marker (vLLM's api server, its engine core, the harness)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"VLLM_TEST_MARK={mark}".encode() in environ and state != "Z":
            found.add(int(entry.name))
    return found


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    python = default_python()
    if not os.access(python, os.X_OK):
        pytest.fail(f"no vLLM interpreter at {python}: run `make install-vllm` (or set HARNESS_VLLM_PYTHON)")
    return build_smoke_model(tmp_path_factory.mktemp("managed") / "model", python=python)


@pytest.fixture
def mark() -> Iterator[str]:
    """The environment marker for this test's processes; whatever still carries it afterwards is killed (by pid)
    and fails the test."""
    value = f"managed-{uuid.uuid4().hex}"
    before = vllm_pids()
    yield value
    deadline = time.monotonic() + 30  # a server being stopped may take a moment to reap its children
    while marked_pids(value) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = marked_pids(value)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    assert not left, f"processes left behind: {left}"
    assert not (vllm_pids() - before) & left


def harness_env(mark: str) -> dict[str, str]:
    return dict(os.environ, VLLM_TEST_MARK=mark)


def harness(*args: str, cwd: Path, mark: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=harness_env(mark),
        timeout=600,
        check=False,
    )


def responses(db: Path) -> list[tuple[str, str, str | None]]:
    return sqlite3.connect(db).execute("SELECT target, status, error FROM responses").fetchall()


def test_run_starts_one_server_for_base_and_adapter_and_stops_it(
    smoke_model: tuple[Path, Path], tmp_path: Path, mark: str
) -> None:
    base, lora = smoke_model
    before = vllm_pids()
    proc = harness(
        "run",
        str(SUITE),
        "-t",
        f"base=vllm:{base}",
        "-t",
        f"ft=vllm:{base}+lora=ft:{lora}",
        "--judge",
        "base",
        "--judge-format",
        "regex",
        "--no-canaries",  # the tiny random judge: flow only
        "--db",
        str(tmp_path / "results.db"),
        "--format",
        "json",
        cwd=tmp_path,
        mark=mark,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("vllm: starting vLLM") == 1, proc.stderr[-3000:]  # one server for both targets
    rows = responses(tmp_path / "results.db")
    assert {r[0] for r in rows} == {"base", "ft"}
    assert len(rows) == 2 * 14 and all(r[1] == "ok" for r in rows), [r for r in rows if r[1] != "ok"][:3]
    summary = {t["target"]: t for t in json.loads(proc.stdout)["summary"].values()}
    assert summary["base"]["evaluated"] + summary["ft"]["evaluated"] > 0  # the judge (base) answered too
    logs = list((tmp_path / ".harness" / "logs").glob("vllm-base-*.log"))
    assert len(logs) == 1 and f"--lora-modules ft={lora}" in logs[0].read_text()
    assert not list((tmp_path / ".harness" / "vllm").glob("*.json"))
    assert not marked_pids(mark)
    assert not (vllm_pids() - before) & marked_pids(mark)


def _lines(stream: object, into: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put(line.rstrip("\n"))


def test_serve_prints_specs_a_run_uses_and_stops_on_ctrl_c(
    smoke_model: tuple[Path, Path], tmp_path: Path, mark: str
) -> None:
    base, lora = smoke_model
    serve = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "vllm", str(base), "--lora", f"ft={lora}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env=harness_env(mark),
    )
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(serve.stdout, lines), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + 300
        while not seen or seen[-1] != "serving until Ctrl-C":
            assert serve.poll() is None, seen
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
            assert time.monotonic() < deadline, seen
        specs = [line.strip().removeprefix("--target ").strip("'") for line in seen if "=openai:" in line]
        assert len(specs) == 2 and specs[0].startswith("base=openai:base@http://127.0.0.1:"), seen
        assert specs[1].startswith("ft=openai:ft@http://127.0.0.1:"), seen
        server = marked_pids(mark) - {serve.pid}
        assert server, "no vLLM process carries the marker"

        proc = harness(
            "run",
            str(SUITE),
            "-t",
            specs[0],
            "-t",
            specs[1],
            "--judge",
            "base",
            "--judge-format",
            "regex",
            "--no-canaries",  # the tiny random judge: flow only
            "--db",
            str(tmp_path / "a.db"),
            cwd=tmp_path,
            mark=mark,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        rows = responses(tmp_path / "a.db")
        assert {r[0] for r in rows} == {"base", "ft"} and all(r[1] == "ok" for r in rows)

        # vllm: targets run from the same folder find the served server and use it without owning it
        proc = harness(
            "run",
            str(SUITE),
            "-t",
            f"base=vllm:{base}",
            "-t",
            f"ft=vllm:{base}+lora=ft:{lora}",
            "--db",
            str(tmp_path / "b.db"),
            cwd=tmp_path,
            mark=mark,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "reusing the vLLM server" in proc.stderr and "starting vLLM" not in proc.stderr, proc.stderr[-2000:]
        assert all(r[1] == "ok" for r in responses(tmp_path / "b.db"))
        assert marked_pids(mark) - {serve.pid} == server  # still running, nothing new started

        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=90)
        assert serve.returncode == 0
        rest = []
        with contextlib.suppress(queue.Empty):
            while True:
                rest.append(lines.get(timeout=2))
        assert rest and rest[-1] == "stopped", rest
        assert not marked_pids(mark)
        assert not list((tmp_path / ".harness" / "vllm").glob("*.json"))
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                serve.wait(timeout=60)
